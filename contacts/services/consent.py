"""Consent: append to the ledger and keep the identity's current state in step.

The current state of an identity for a purpose is the ledger folded in time
order (`occurred_at`, then recording order) with these rules:
- the newest event wins;
- an opt-out is never undone by an import: an opt-in that came in through an
  import (whatever consent source the file declared) leaves an opted-out
  identity opted out;
- only an explicit opt-in (form, admin, keyword, API) newer than the opt-out
  re-subscribes; on equal times the opt-out wins;
- an opt-out a person gave (form, admin, STOP keyword, Sinch's consent
  management, erasure) is only undone by an opt-in dated after it that was
  also *received* after it: an opt-in that reached us first cannot win by
  claiming a later date (a START dated 2099 does not pin a number opted in).
An event's time is bounded by when we received it: a time in the future
counts as "received now" (`record_consent`), and ledger rows written before
that rule are read with `min(occurred_at, recorded_at)`.
Events can be recorded late (a delayed STOP): the state is folded again from
the ledger on every record, so the stored state always equals
`derive_state(ledger)`.
"""

import dataclasses
from dataclasses import dataclass
from datetime import UTC, datetime

from django.db import transaction
from django.utils import timezone

from config.lib.redaction import mask_number
from contacts.models import (
    AuditEvent,
    ChannelIdentity,
    ConsentEvent,
    ConsentState,
    Contact,
)
from contacts.services.audit import actor_label, record_audit
from contacts.services.erasure import ERASED_PREFIX
from contacts.services.suppression import SuppressedIdentityError, is_suppressed

Kind = ConsentEvent.Kind
Source = ConsentEvent.Source
# Opt-outs a person gave: an opt-in received before them never undoes them.
PERSONAL_OPT_OUT_SOURCES = frozenset(
    {Source.ADMIN, Source.FORM, Source.INBOUND_KEYWORD, Source.API, Source.ERASURE}
)
# A pending (unsaved) event was received after everything in the ledger.
_NOT_RECORDED_YET = datetime.max.replace(tzinfo=UTC)


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


def is_personal_opt_out(event: ConsentEvent) -> bool:
    """An opt-out the person gave us themselves (not a file's claim)."""
    return (
        event.kind == Kind.OPT_OUT
        and not came_via_import(event)
        and event.source in PERSONAL_OPT_OUT_SOURCES
    )


def received_at(event: ConsentEvent) -> datetime:
    """When the event reached us (an unsaved one: after every saved one)."""
    return event.recorded_at or _NOT_RECORDED_YET


def effective_time(event: ConsentEvent) -> datetime:
    """The event's time, bounded by when we received it."""
    return min(event.occurred_at, received_at(event))


def derive_state(events) -> dict[str, tuple[str, datetime | None]]:
    """Fold ledger events (any order) into {purpose: (state, since)}."""
    result: dict[str, tuple[str, datetime | None]] = {}
    # purpose -> when the latest personal opt-out of the current opt-out was
    # received; an opt-in received no later than that cannot undo it.
    guard: dict[str, datetime] = {}
    ordered = sorted(events, key=lambda e: (effective_time(e), e.pk or 0))
    for event in ordered:
        purpose = event.purpose
        state, at = result.get(purpose, (ConsentState.UNKNOWN, None))
        received = received_at(event)
        if (
            event.kind == Kind.OPT_IN
            and purpose in guard
            and received <= guard[purpose]
        ):
            continue
        via_import = came_via_import(event)
        state, at = next_state(state, at, event.kind, via_import, effective_time(event))
        result[purpose] = (state, at)
        if state != ConsentState.OPTED_OUT:
            guard.pop(purpose, None)
        elif is_personal_opt_out(event):
            guard[purpose] = max(received, guard.get(purpose, received))
    return result


def bounded_time(
    occurred_at: datetime | None, received: datetime | None = None
) -> datetime:
    """An event time claimed from outside, never later than when we received
    it (`received`, default now): a future timestamp counts as "now"."""
    now = timezone.now()
    ceiling = min(received or now, now)
    return ceiling if occurred_at is None else min(occurred_at, ceiling)


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
    received_at: datetime | None = None,
) -> ConsentEvent:
    """Append a consent event and update the identity's state, atomically.

    `occurred_at` (default now) is bounded by `received_at` (when the claim
    reached us, e.g. the webhook's arrival; default now): a later time is
    stored as the time received, and the evidence note keeps the claimed one.
    The identity row is locked, so a concurrent STOP and an admin opt-in are
    applied one after the other, and the state is folded again from the whole
    ledger. Returns the stored event; the state may be unchanged (an import
    opt-in on an opted-out identity, an opt-in received before a STOP), the
    ledger still keeps what was claimed.
    An opt-in for a suppressed number (erased, or a retired identity) raises
    SuppressedIdentityError and records nothing; opt-outs are always recorded.
    The contact's `updated_at` moves.
    """
    bounded = bounded_time(occurred_at, received_at)
    if occurred_at is not None and occurred_at > bounded:
        evidence = dataclasses.replace(
            evidence,
            note=(
                f"{evidence.note} [dated {occurred_at.isoformat()}, after it was "
                f"received: counted at {bounded.isoformat()}]"
            ).strip(),
        )
    occurred_at = bounded
    label = actor_name or actor_label(actor)
    with transaction.atomic():
        locked = ChannelIdentity.objects.select_for_update().get(pk=identity.pk)
        if kind == Kind.OPT_IN:
            refuse_opt_in_if_suppressed(locked)
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
        state, at = refold(locked, purpose)
        ChannelIdentity.objects.filter(pk=locked.pk).update(
            **{field: state, f"{field}_at": at}
        )
        setattr(identity, field, state)
        setattr(identity, f"{field}_at", at)
        Contact.objects.filter(pk=locked.contact_id).update(updated_at=timezone.now())
        number = mask_number(locked.identity)
        record_audit(
            actor=actor,
            label=label,
            action=AuditEvent.Action.CONSENT,
            target_type="contact",
            target_id=locked.contact_id,
            summary=(
                f"{event.get_kind_display()} ({event.get_purpose_display()}) "
                f"on {locked.channel} {number} via {event.get_source_display()} "
                f"by {label}: "
                f"{ConsentState(before).label} -> {ConsentState(state).label}"
            ),
            details={"consent_event": event.pk, "identity": locked.pk},
        )
    return event


def refuse_opt_in_if_suppressed(identity: ChannelIdentity) -> None:
    """Raise SuppressedIdentityError when `identity` may not be opted in:
    erased (its value is the keyed hash), retired, or a suppressed number."""
    if identity.identity.startswith(ERASED_PREFIX):
        raise SuppressedIdentityError("This identity was erased: it stays opted out.")
    if identity.retired_at is not None:
        raise SuppressedIdentityError(
            f"{mask_number(identity.identity)} was replaced (retired): it is "
            "never sent to, so it cannot be opted in."
        )
    if is_suppressed(identity.channel, identity.identity):
        raise SuppressedIdentityError(
            f"{mask_number(identity.identity)} is suppressed (its owner was "
            "erased): it cannot be opted in."
        )


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
