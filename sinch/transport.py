"""HTTP to Sinch: one session, a timeout on every call, the retry policy, and
the one place where responses become typed errors.

Retry policy: a call marked `repeatable` (token, GETs, cancel, consent insert,
contact delete) is retried on 429, 5xx and connection errors, with exponential
backoff and full jitter, honouring Retry-After. A call that is not (a batch
send, contact create) is retried only when Sinch cannot have acted on it: a
429, or a connection that was never established. Anything ambiguous raises
SinchUncertainOutcomeError.
"""

import logging
import random
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any, Protocol

import requests
from requests.adapters import HTTPAdapter

from sinch.errors import (
    ErrorBody,
    SinchAuthError,
    SinchError,
    SinchNotFoundError,
    SinchRateLimitedError,
    SinchServerError,
    SinchTransportError,
    SinchUncertainOutcomeError,
    SinchValidationError,
)

logger = logging.getLogger("sinch.client")


@dataclass(frozen=True)
class RetryPolicy:
    attempts: int = 4  # in all, the first included
    backoff_s: float = 0.5  # first backoff ceiling; doubles each time
    backoff_max_s: float = 20.0
    # A Retry-After longer than this is not slept through: the error is raised
    # with `retry_after` so the caller schedules the retry instead.
    max_wait_s: float = 60.0


class TokenSource(Protocol):
    def token(self) -> str: ...

    def refresh(self, stale: str) -> None: ...


class Transport:
    def __init__(
        self,
        *,
        timeout: tuple[float, float] = (5.0, 30.0),
        retry: RetryPolicy | None = None,
        pool_size: int = 10,
        session: requests.Session | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.timeout = timeout
        self.retry = retry or RetryPolicy()
        self.session = session or requests.Session()
        if session is None:
            adapter = HTTPAdapter(pool_connections=4, pool_maxsize=pool_size)
            self.session.mount("http://", adapter)
            self.session.mount("https://", adapter)
        self._sleep = sleep

    def __repr__(self) -> str:
        return f"<Transport timeout={self.timeout} retry={self.retry}>"

    def request(
        self,
        method: str,
        url: str,
        *,
        repeatable: bool,
        tokens: TokenSource | None = None,
        body: bytes | None = None,
        params: Mapping[str, str] | None = None,
        headers: Mapping[str, str] | None = None,
        auth: Any = None,
        operation: str = "",
    ) -> requests.Response:
        """Send one logical call (with its retries); return the 2xx response."""
        operation = operation or f"{method} {url}"
        refreshed = False
        attempt = 0
        while True:
            attempt += 1
            sent_headers = dict(headers or {})
            if body is not None:
                sent_headers.setdefault("Content-Type", "application/json")
            token = tokens.token() if tokens else ""
            if token:
                sent_headers["Authorization"] = f"Bearer {token}"
            started = time.monotonic()
            try:
                response = self.session.request(
                    method,
                    url,
                    data=body,
                    params=params,
                    headers=sent_headers,
                    auth=auth,
                    timeout=self.timeout,
                )
            except requests.RequestException as exc:
                error = self._transport_error(exc, operation, repeatable)
            else:
                elapsed = time.monotonic() - started
                logger.debug(
                    "%s -> %s in %.3fs", operation, response.status_code, elapsed
                )
                if response.ok:
                    return response
                if (
                    response.status_code == 401
                    and tokens
                    and not refreshed
                    and "expired" in response.headers.get("WWW-Authenticate", "")
                ):
                    # An expired token: nothing was processed; refresh once.
                    refreshed = True
                    attempt -= 1
                    tokens.refresh(token)
                    continue
                error = raise_for_response(response, operation, repeatable)
            if isinstance(error, SinchAuthError):
                _note_auth_failure(error, operation)
            # An uncertain outcome is retryable only after reconciliation,
            # which is the caller's business: never here.
            uncertain = isinstance(error, SinchUncertainOutcomeError)
            if uncertain or not error.retryable or attempt >= self.retry.attempts:
                raise error
            delay = self._delay(attempt, error)
            if delay > self.retry.max_wait_s:
                raise error
            logger.warning(
                "%s failed (%s); retry %d in %.2fs",
                operation,
                type(error).__name__,
                attempt,
                delay,
            )
            self._sleep(delay)

    def _transport_error(
        self, exc: requests.RequestException, operation: str, repeatable: bool
    ) -> SinchError:
        if not isinstance(exc, requests.ConnectionError | requests.Timeout):
            return SinchError(f"{operation}: {type(exc).__name__}")
        never_sent = isinstance(exc, requests.ConnectTimeout) or _refused(exc)
        if repeatable or never_sent:
            error = SinchTransportError(f"{operation}: {type(exc).__name__}")
            error.__cause__ = exc
            return error
        raise SinchUncertainOutcomeError(
            f"{operation}: {type(exc).__name__} after the request was sent; "
            "Sinch may have accepted it"
        ) from exc

    def _delay(self, attempt: int, error: SinchError) -> float:
        if error.retry_after is not None:
            return error.retry_after
        ceiling = min(
            self.retry.backoff_max_s, self.retry.backoff_s * 2 ** (attempt - 1)
        )
        return random.uniform(0, ceiling)


def _note_auth_failure(error: SinchError, operation: str) -> None:
    """Kept for the operator health page (sinch.models; never raises)."""
    try:
        from sinch.models import note_auth_failure
    except Exception:
        return
    note_auth_failure(error, operation)


def _refused(exc: requests.RequestException) -> bool:
    """True when the connection was never established (nothing was sent)."""
    from urllib3.exceptions import NameResolutionError, NewConnectionError

    reason = exc.args[0] if exc.args else None
    reason = getattr(reason, "reason", reason)
    return isinstance(reason, NewConnectionError | NameResolutionError)


def raise_for_response(
    response: requests.Response, operation: str, repeatable: bool = True
) -> SinchError:
    """The typed error for a non-2xx response (returned, for the caller to raise).

    On a non-repeatable call a 5xx is an uncertain outcome: Sinch may have
    stored the batch before failing.
    """
    status = response.status_code
    try:
        body = ErrorBody.from_wire(response.json())
    except ValueError:
        body = ErrorBody()
    retry_after = parse_retry_after(response.headers.get("Retry-After"))
    kwargs = {"status": status, "body": body, "retry_after": retry_after}
    if status == 429:
        return SinchRateLimitedError(f"{operation}: rate limited", **kwargs)
    if status >= 500:
        if not repeatable:
            return SinchUncertainOutcomeError(
                f"{operation}: server error; Sinch may have accepted it", **kwargs
            )
        return SinchServerError(f"{operation}: server error", **kwargs)
    if status == 401:
        return SinchAuthError(f"{operation}: not authenticated", **kwargs)
    if status == 403:
        return SinchAuthError(f"{operation}: permission denied", **kwargs)
    if status == 404:
        return SinchNotFoundError(f"{operation}: not found", **kwargs)
    if status == 400:
        return SinchValidationError(f"{operation}: invalid request", **kwargs)
    return SinchError(f"{operation}: unexpected answer", **kwargs)


def parse_retry_after(value: str | None, now: datetime | None = None) -> float | None:
    """Retry-After in seconds, from delta-seconds or an HTTP date (RFC 9110)."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - (now or datetime.now(UTC))).total_seconds())
