"""Consent: append to the ledger and keep the identity's current state in step.

The rule, applied by `next_state` both here and in the bulk import:
- the newest event wins (by when the person acted, `occurred_at`);
- an opt-out is never undone by an import: an opt-in from an import leaves an
  opted-out identity opted out;
- only an explicit opt-in (form, admin, keyword, API) newer than the opt-out
  re-subscribes; on equal times the opt-out wins.
"""

from dataclasses import dataclass
from datetime import datetime

from django.db import transaction
from django.utils import timezone

from contacts.audit import actor_label, record_audit
from contacts.models import AuditEvent, ChannelIdentity, ConsentEvent, ConsentState

Kind = ConsentEvent.Kind
Source = ConsentEvent.Source


@dataclass(frozen=True)
class Evidence:
    wording: str = ""
    ip: str | None = None
    user_agent: str = ""
    note: str = ""

    def is_empty(self) -> bool:
        return not (self.wording.strip() or self.note.strip() or self.ip)


def next_state(
    state: str, state_at: datetime | None, kind: str, source: str, occurred_at: datetime
) -> tuple[str, datetime | None]:
    """The consent state after one event; see the module docstring for the rule."""
    if kind == Kind.OPT_OUT:
        if state == ConsentState.OPTED_IN and state_at and occurred_at < state_at:
            return state, state_at
        return ConsentState.OPTED_OUT, occurred_at
    if state == ConsentState.OPTED_OUT:
        if source == Source.IMPORT or (state_at and occurred_at <= state_at):
            return state, state_at
        return ConsentState.OPTED_IN, occurred_at
    if state == ConsentState.OPTED_IN and state_at and state_at > occurred_at:
        return state, state_at
    return ConsentState.OPTED_IN, occurred_at


def derive_state(events) -> dict[str, tuple[str, datetime | None]]:
    """Fold ledger events (any order) into {purpose: (state, since)}."""
    result: dict[str, tuple[str, datetime | None]] = {}
    for event in sorted(events, key=lambda e: (e.occurred_at, e.pk or 0)):
        state, at = result.get(event.purpose, (ConsentState.UNKNOWN, None))
        result[event.purpose] = next_state(
            state, at, event.kind, event.source, event.occurred_at
        )
    return result


def record_consent(
    *,
    identity: ChannelIdentity,
    kind: str,
    purpose: str,
    source: str,
    evidence: Evidence,
    actor=None,
    actor_name: str | None = None,
    occurred_at: datetime | None = None,
) -> ConsentEvent:
    """Append a consent event and update the identity's state, atomically.

    The identity row is locked, so a concurrent STOP and an admin opt-in are
    applied one after the other. Returns the stored event; the state may be
    unchanged (an import opt-in on an opted-out identity), the ledger still
    keeps what was claimed.
    """
    occurred_at = occurred_at or timezone.now()
    label = actor_name or actor_label(actor)
    with transaction.atomic():
        locked = ChannelIdentity.objects.select_for_update().get(pk=identity.pk)
        event = ConsentEvent.objects.create(
            identity=locked,
            channel=locked.channel,
            purpose=purpose,
            kind=kind,
            source=source,
            evidence_wording=evidence.wording,
            evidence_ip=evidence.ip,
            evidence_user_agent=evidence.user_agent[:500],
            evidence_note=evidence.note,
            actor=actor,
            actor_label=label,
            occurred_at=occurred_at,
        )
        field = f"{purpose.lower()}_consent"
        before = getattr(locked, field)
        state, at = next_state(
            before, getattr(locked, f"{field}_at"), kind, source, occurred_at
        )
        ChannelIdentity.objects.filter(pk=locked.pk).update(
            **{field: state, f"{field}_at": at}
        )
        setattr(identity, field, state)
        setattr(identity, f"{field}_at", at)
        record_audit(
            actor=actor,
            label=label,
            action=AuditEvent.Action.CONSENT,
            target_type="contact",
            target_id=locked.contact_id,
            summary=(
                f"{event.get_kind_display()} ({event.get_purpose_display()}) on "
                f"{locked.channel} via {event.get_source_display()}: "
                f"{ConsentState(before).label} -> {ConsentState(state).label}"
            ),
            details={"consent_event": event.pk, "identity": locked.pk},
        )
    return event


def record_opt_out_for_contacts(
    *, contacts, purposes: list[str], evidence: Evidence, actor
) -> int:
    """Opt every identity of `contacts` out for `purposes`; returns events written."""
    if evidence.is_empty():
        raise ValueError("Evidence is required to record an opt-out.")
    written = 0
    identities = ChannelIdentity.objects.filter(
        contact__in=contacts, contact__erased_at__isnull=True
    )
    for identity in identities.iterator():
        for purpose in purposes:
            record_consent(
                identity=identity,
                kind=Kind.OPT_OUT,
                purpose=purpose,
                source=Source.ADMIN,
                evidence=evidence,
                actor=actor,
            )
            written += 1
    return written
