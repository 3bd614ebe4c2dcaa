"""Login lock-outs (django-axes) in the audit trail, once per lock-out."""

from django.conf import settings

from contacts.models import AuditEvent
from contacts.services.audit import record_audit


def audit_lockout(sender, request, username, ip_address, **kwargs) -> None:
    """axes' user_locked_out receiver. axes sends it again for every attempt
    during a lock-out; only the failure that reaches the limit starts one."""
    failures = getattr(request, "axes_failures_since_start", None)
    if failures != settings.AXES_FAILURE_LIMIT:
        return
    record_audit(
        actor=None,
        label="login throttling",
        action=AuditEvent.Action.USER,
        target_type="login",
        target_id=(username or "")[:50],
        summary=(
            f"Logins paused for {settings.LOGIN_COOLOFF_MINUTES} minutes after "
            f"{failures} failed attempts (username {username!r} from {ip_address}, "
            f"counted by {settings.LOGIN_LOCKOUT_BY})"
        ),
        details={
            "username": username,
            "ip_address": ip_address,
            "failures": failures,
            "cooloff_minutes": settings.LOGIN_COOLOFF_MINUTES,
            "lockout_by": settings.LOGIN_LOCKOUT_BY,
        },
    )
