"""Sinch webhook signatures: sign (the simulator) and verify (the webhook).

signature = base64(HMAC-SHA256(secret, raw_body + "." + nonce + "." + timestamp))
with the timestamp in Unix seconds (spec §6). Always over the raw bytes as
received: re-serialised JSON would not match.
"""

import base64
import hashlib
import hmac
import secrets as random_secrets
import time
from collections.abc import Iterable, Mapping
from enum import StrEnum

from sinch import wire

DEFAULT_TOLERANCE_S = 300


class Verdict(StrEnum):
    VALID = "valid"
    NO_SECRET = "no_secret"
    MISSING_HEADERS = "missing_headers"
    BAD_TIMESTAMP = "bad_timestamp"
    STALE = "stale"
    MISMATCH = "mismatch"

    @property
    def ok(self) -> bool:
        return self is Verdict.VALID


def compute_signature(secret: str, raw_body: bytes, nonce: str, timestamp: str) -> str:
    signed = b".".join((raw_body, nonce.encode(), timestamp.encode()))
    digest = hmac.new(secret.encode(), signed, hashlib.sha256).digest()
    return base64.b64encode(digest).decode("ascii")


def sign(
    raw_body: bytes,
    secret: str,
    *,
    nonce: str | None = None,
    timestamp: int | None = None,
) -> dict[str, str]:
    """The headers Sinch sends with a signed callback."""
    nonce = nonce or random_secrets.token_hex(13)
    stamp = str(int(time.time()) if timestamp is None else timestamp)
    return {
        wire.SIGNATURE_HEADER: compute_signature(secret, raw_body, nonce, stamp),
        wire.NONCE_HEADER: nonce,
        wire.TIMESTAMP_HEADER: stamp,
        wire.ALGORITHM_HEADER: wire.SIGNATURE_ALGORITHM,
    }


def verify(
    headers: Mapping[str, str],
    raw_body: bytes,
    secrets: Iterable[str],
    *,
    tolerance_s: int = DEFAULT_TOLERANCE_S,
    now: float | None = None,
) -> Verdict:
    """Check a callback's signature against every accepted secret.

    `headers` may use any case. A timestamp further than `tolerance_s` from
    `now` is refused even with a good signature, which bounds replays; the
    caller still refuses a nonce it has seen. Every secret is compared in
    constant time, and all of them are compared, so timing says nothing
    about which one matched.
    """
    keys = [s for s in secrets if s]
    if not keys:
        return Verdict.NO_SECRET
    lowered = {k.lower(): v for k, v in headers.items()}
    signature = lowered.get(wire.SIGNATURE_HEADER)
    nonce = lowered.get(wire.NONCE_HEADER)
    stamp = lowered.get(wire.TIMESTAMP_HEADER)
    if not (signature and nonce and stamp):
        return Verdict.MISSING_HEADERS
    try:
        sent_at = int(stamp)
    except ValueError:
        return Verdict.BAD_TIMESTAMP
    if abs((time.time() if now is None else now) - sent_at) > tolerance_s:
        return Verdict.STALE
    given = signature.encode()
    matches = [
        hmac.compare_digest(
            given, compute_signature(k, raw_body, nonce, stamp).encode()
        )
        for k in keys
    ]
    return Verdict.VALID if any(matches) else Verdict.MISMATCH
