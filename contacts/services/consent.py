"""Consent: append to the ledger and keep the identity's current state in step.

The current state of an identity for a purpose is the ledger folded in time
order (`occurred_at`, then recording order) with these rules:
- the newest event wins;
- an opt-out is never undone by an import: an opt-in that came in through an
  import (whatever consent source the file declared) leaves an opted-out
  identity opted out;
- only an explicit opt-in (form, admin, keyword, API) newer than the opt-out
  re-subscribes; on equal times the opt-out wins.
Events can be recorded late (a delayed STOP): then the state is folded again
from the ledger, so the stored state always equals `derive_state(ledger)`.
"""

from dataclasses import dataclass
from datetime import datetime

from django.db import transaction
from django.utils import timezone

from contacts.models import AuditEvent, ChannelIdentity, ConsentEvent, ConsentState
from contacts.services.audit import actor_label, record_audit

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
    state: str,
    state_at: datetime | None,
    kind: str,
    via_import: bool,
    occurred_at: datetime,
) -> tuple[str, datetime | None]:
    """The state after one more event, the events being applied in time order."""
    if kind == Kind.OPT_OUT:
        return ConsentState.OPTED_OUT, occurred_at
    if state == ConsentState.OPTED_OUT and (
        via_import or (state_at is not None and occurred_at <= state_at)
    ):
        return state, state_at
    return ConsentState.OPTED_IN, occurred_at


def is_in_order(state_at: datetime | None, occurred_at: datetime) -> bool:
    """Whether an event can be applied on top of the stored state (not late)."""
    return state_at is None or occurred_at >= state_at


def came_via_import(event: ConsentEvent) -> bool:
    return event.import_job_id is not None or event.source == Source.IMPORT


def derive_state(events) -> dict[str, tuple[str, datetime | None]]:
    """Fold ledger events (any order) into {purpose: (state, since)}."""
    result: dict[str, tuple[str, datetime | None]] = {}
    for event in sorted(events, key=lambda e: (e.occurred_at, e.pk or 0)):
        state, at = result.get(event.purpose, (ConsentState.UNKNOWN, None))
        result[event.purpose] = next_state(
            state, at, event.kind, came_via_import(event), event.occurred_at
        )
    return result


def refold(
    identity: ChannelIdentity, purpose: str, *pending: ConsentEvent
) -> tuple[str, datetime | None]:
    """The state of `identity` for `purpose` folded from its whole ledger,
    plus `pending` events not saved yet (they sort after saved ones of the
    same time)."""
    events = list(ConsentEvent.objects.filter(identity=identity, purpose=purpose))
    last = max((e.pk for e in events), default=0)
    for n, event in enumerate(pending, start=1):
        event.pk = event.pk or last + n
    state = derive_state([*events, *pending]).get(purpose)
    for event in pending:
        event.pk = None
    return state or (ConsentState.UNKNOWN, None)


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
        before, before_at = getattr(locked, field), getattr(locked, f"{field}_at")
        if is_in_order(before_at, occurred_at):
            via_import = source == Source.IMPORT
            state, at = next_state(before, before_at, kind, via_import, occurred_at)
        else:
            state, at = refold(locked, purpose)
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
