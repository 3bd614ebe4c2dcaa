"""Typed errors of the Sinch boundary.

Every error says whether trying again can help (`retryable`) or never will
(`permanent`), and carries Sinch's parsed error body when there was one. Texts
never contain credentials or tokens: they are built from the status, Sinch's
error body and the operation, nothing else.
"""

from dataclasses import dataclass, field


@dataclass(frozen=True)
class FieldViolation:
    field: str
    description: str


@dataclass(frozen=True)
class ErrorBody:
    """Sinch's error body, from either shape (wrapped in "error", or flat)."""

    code: int | None = None
    status: str = ""
    message: str = ""
    details: tuple = ()
    field_violations: tuple[FieldViolation, ...] = field(default=())

    @classmethod
    def from_wire(cls, data: object) -> "ErrorBody":
        if not isinstance(data, dict):
            return cls()
        inner = data.get("error", data)
        if not isinstance(inner, dict):
            # RFC 6749 token errors: {"error": "invalid_client", ...}.
            return cls(
                status=str(inner), message=str(data.get("error_description", ""))
            )
        details = inner.get("details") or ()
        details = tuple(details) if isinstance(details, list) else ()
        code = inner.get("code")
        return cls(
            code=code if isinstance(code, int) else None,
            status=str(inner.get("status", "")),
            message=str(inner.get("message", inner.get("error_description", ""))),
            details=details,
            field_violations=tuple(_violations(details)),
        )


def _violations(details: tuple):
    for detail in details:
        if not isinstance(detail, dict):
            continue
        items = detail.get("fieldViolations") or detail.get("field_violations") or ()
        for item in items if isinstance(items, list) else ():
            if isinstance(item, dict):
                yield FieldViolation(
                    str(item.get("field", "")), str(item.get("description", ""))
                )


class SinchError(Exception):
    """Base of every error raised by the Sinch client."""

    retryable = False

    def __init__(
        self,
        message: str,
        *,
        status: int | None = None,
        body: ErrorBody | None = None,
        retry_after: float | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.body = body or ErrorBody()
        self.retry_after = retry_after

    @property
    def permanent(self) -> bool:
        return not self.retryable

    def __str__(self) -> str:
        text = super().__str__()
        if self.status is not None:
            text = f"{text} (HTTP {self.status}"
            text += f" {self.body.status})" if self.body.status else ")"
        if self.body.message:
            text += f": {self.body.message}"
        if self.body.field_violations:
            text += "; " + "; ".join(
                f"{v.field}: {v.description}" for v in self.body.field_violations
            )
        return text


class SinchAuthError(SinchError):
    """Credentials refused (401/403, or the token endpoint said no)."""


class SinchValidationError(SinchError):
    """Sinch refused the request as invalid (400); see `field_violations`."""

    @property
    def field_violations(self) -> tuple[FieldViolation, ...]:
        return self.body.field_violations


class SinchNotFoundError(SinchError):
    """Unknown batch, project or region (404)."""


class SinchRateLimitedError(SinchError):
    """Too many requests (429): not processed; `retry_after` seconds if known."""

    retryable = True


class SinchServerError(SinchError):
    """Sinch failed (5xx) on a call that is safe to repeat."""

    retryable = True


class SinchTransportError(SinchError):
    """The request never reached Sinch (connection refused, connect timeout)."""

    retryable = True


class SinchUncertainOutcomeError(SinchError):
    """A non-repeatable call (a batch send) may or may not have taken effect.

    Raised on a read timeout, a connection lost after the request was written,
    a 5xx answer, or an unreadable 200. Never resend blindly: look the batch up
    by its metadata first, then send again only if Sinch does not have it.
    """

    retryable = True


class SinchProtocolError(SinchError):
    """Sinch answered something this client cannot read."""
