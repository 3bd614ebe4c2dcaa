"""The audit trail: one append-only row per change that matters."""

from typing import Any

from contacts.models import AuditEvent


def actor_label(user) -> str:
    if user is None:
        return "system"
    return user.get_username() or f"user #{user.pk}"


def record_audit(
    *,
    actor,
    action: str,
    target_type: str,
    target_id: Any = "",
    summary: str,
    details: dict | None = None,
    label: str | None = None,
) -> AuditEvent:
    """Append one audit row. `actor` is a user or None (then `label` names it)."""
    return AuditEvent.objects.create(
        actor=actor,
        actor_label=label or actor_label(actor),
        action=action,
        target_type=target_type,
        target_id=str(target_id),
        summary=summary[:500],
        details=details or {},
    )
