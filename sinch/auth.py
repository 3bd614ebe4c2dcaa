"""OAuth2 client-credentials token for the Batch API, cached until near expiry.

Thread-safe: one lock guards the cached token, so concurrent callers share one
token request. Neither the key secret nor the token appears in any repr, log
line or exception text.
"""

import threading
import time

import requests

from sinch import wire
from sinch.errors import SinchProtocolError
from sinch.transport import Transport

# Refresh this long before expiry (at most a tenth of the token's lifetime).
REFRESH_MARGIN_S = 60.0


class TokenProvider:
    def __init__(
        self, *, key_id: str, key_secret: str, auth_url: str, transport: Transport
    ) -> None:
        self._auth = requests.auth.HTTPBasicAuth(key_id, key_secret)
        self._url = auth_url.rstrip("/") + wire.TOKEN_PATH
        self._transport = transport
        self._lock = threading.Lock()
        self._token = ""
        self._refresh_at = 0.0

    def __repr__(self) -> str:
        return f"<TokenProvider {self._url} key=***>"

    def token(self) -> str:
        """A valid access token, fetched when none is cached or it is nearly due."""
        with self._lock:
            if not self._token or time.monotonic() >= self._refresh_at:
                self._fetch()
            return self._token

    def refresh(self, stale: str) -> None:
        """Drop `stale` (refused as expired); a newer token is kept as it is."""
        with self._lock:
            if self._token == stale:
                self._token = ""

    def _fetch(self) -> None:
        response = self._transport.request(
            "POST",
            self._url,
            repeatable=True,
            auth=self._auth,
            headers={"Content-Type": "application/x-www-form-urlencoded"},
            body=b"grant_type=client_credentials",
            operation="token request",
        )
        try:
            data = response.json()
            token = data["access_token"]
            lifetime = float(data.get("expires_in", wire.TOKEN_TTL_S))
        except (ValueError, KeyError, TypeError) as exc:
            raise SinchProtocolError("token request: unreadable answer") from exc
        if not isinstance(token, str) or not token:
            raise SinchProtocolError("token request: no access_token")
        margin = min(REFRESH_MARGIN_S, lifetime / 10)
        self._token = token
        self._refresh_at = time.monotonic() + lifetime - margin
