"""Erasure: forget a person but keep them suppressed and keep the ledger."""

import hashlib
import hmac
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field

from django.conf import settings
from django.db import transaction
from django.db.models import Q
from django.dispatch import Signal
from django.utils import timezone

from config.lib.redaction import Redactor, phone_forms
from contacts.models import (
    AuditEvent,
    ChannelIdentity,
    ConsentEvent,
    ConsentState,
    Contact,
    ListMembership,
)
from contacts.phones import InvalidIdentity, normalise_phone
from contacts.services import erasure_traces
from contacts.services.audit import record_audit
from sinch.channels import PHONE_CHANNELS, Channel

ERASED_PREFIX = "erased:"

# Sent inside the erasure's transaction with `contact_id`, `identities` (the
# (channel, value) pairs as they were), `redactor` (config.lib.redaction) and
# `report` (an ErasureReport): other apps forget what they keep about the
# person (campaigns: recipients, replies, webhook bodies, cached summaries)
# and count it in the report.
contact_erased = Signal()


@dataclass
class ErasureReport:
    """What one erasure removed, per kind of record (for the command and logs)."""

    contact: Contact
    counts: Counter = field(default_factory=Counter)

    def add(self, what: str, count: int) -> None:
        if count:
            self.counts[what] += count

    def lines(self) -> list[str]:
        return [f"{what}: {count}" for what, count in sorted(self.counts.items())]


def keyed_hasher(channel: str) -> Callable[[str], str]:
    """erasure.erased_identity for `channel`, with the key set up once: the
    send paths hash up to a million numbers, and copying a keyed HMAC is
    about a third faster than building one per number."""
    keyed = hmac.new(settings.ERASURE_HASH_KEY.encode(), digestmod=hashlib.sha256)
    prefix = b"" if channel in PHONE_CHANNELS else f"{channel}:".encode()

    def hashed(identity: str) -> str:
        digest = keyed.copy()
        digest.update(prefix + identity.encode())
        return ERASED_PREFIX + digest.hexdigest()

    return hashed


def erased_identity(channel: str, identity: str) -> str:
    """The one-way value an identity is replaced with when its owner is erased.

    Keyed (HMAC) so a leaked database does not let anyone test phone numbers
    against it without the key; stable so a re-imported number is recognised.
    A phone number is hashed without its channel: once erased it stays
    suppressed on SMS, WhatsApp and every other phone channel.
    """
    key = settings.ERASURE_HASH_KEY.encode()
    subject = identity if channel in PHONE_CHANNELS else f"{channel}:{identity}"
    digest = hmac.new(key, subject.encode(), hashlib.sha256)
    return ERASED_PREFIX + digest.hexdigest()


def erase_contact(*, contact: Contact, actor, reason: str = "") -> Contact:
    """Anonymise `contact` and return it read back; see `erase`."""
    return erase(contact=contact, actor=actor, reason=reason).contact


def erase(*, contact: Contact, actor, reason: str = "") -> ErasureReport:
    """Anonymise `contact` everywhere; idempotent (erasing twice changes
    nothing more, and reports nothing).

    Names, ids, attributes and list memberships go; each identity becomes a
    keyed hash, opted out for every purpose, so the number stays suppressed;
    ledger entries stay, with their free-text evidence replaced by a hash.
    Every other trace (replies, webhook bodies, recipients, audit details,
    the admin log, django-q2 results, cached summaries; see contact_erased
    and contacts.services.erasure_traces) is redacted in the same
    transaction; files under MEDIA_ROOT lose the person's rows after it.
    `reason` is kept in the audit row, without the person's data in it.
    """
    with transaction.atomic():
        contact = Contact.objects.select_for_update().get(pk=contact.pk)
        report = ErasureReport(contact)
        if contact.erased_at:
            return report
        now = timezone.now()
        identities = list(contact.identities.select_for_update())
        originals = [(i.channel, i.identity) for i in identities]
        redactor = person_redactor(contact, originals)
        for identity in identities:
            for purpose in ("marketing", "transactional"):
                if getattr(identity, f"{purpose}_consent") != ConsentState.OPTED_OUT:
                    ConsentEvent.objects.create(
                        identity=identity,
                        channel=identity.channel,
                        purpose=purpose.upper(),
                        kind=ConsentEvent.Kind.OPT_OUT,
                        source=ConsentEvent.Source.ERASURE,
                        evidence_note="Erasure request: suppressed permanently.",
                        actor=actor,
                        actor_label=actor.get_username() if actor else "system",
                        occurred_at=now,
                    )
            identity.identity = erased_identity(identity.channel, identity.identity)
            identity.marketing_consent = ConsentState.OPTED_OUT
            identity.transactional_consent = ConsentState.OPTED_OUT
            identity.marketing_consent_at = identity.transactional_consent_at = now
        ChannelIdentity.objects.bulk_update(
            identities,
            [
                "identity",
                "marketing_consent",
                "transactional_consent",
                "marketing_consent_at",
                "transactional_consent_at",
            ],
        )
        _hash_ledger_evidence(identities)
        ListMembership.objects.filter(contact=contact).delete()
        Contact.objects.filter(pk=contact.pk).update(
            first_name="",
            last_name="",
            language="",
            time_zone="",
            attributes={},
            external_id="",
            erased_at=now,
            updated_at=now,
        )
        report.add("channel identities hashed and suppressed", len(identities))
        contact_erased.send(
            sender=Contact,
            contact_id=contact.pk,
            identities=originals,
            redactor=redactor,
            report=report,
        )
        erasure_traces.forget_traces(
            contact_id=contact.pk,
            identity_ids=[i.pk for i in identities],
            redactor=redactor,
            report=report,
        )
        record_audit(
            actor=actor,
            action=AuditEvent.Action.ERASURE,
            target_type="contact",
            target_id=contact.pk,
            summary=f"Erased contact #{contact.pk} ({len(identities)} identities "
            "hashed and suppressed)",
            details={"reason": redactor.redact(reason)} if reason else None,
        )
    # Files are not transactional: rewritten once the database has forgotten.
    erasure_traces.forget_files(contact_id=contact.pk, redactor=redactor, report=report)
    contact.refresh_from_db()
    return report


def person_redactor(contact: Contact, identities) -> Redactor:
    """What identifies the person (their identities in every written form,
    their external id) and what describes them (names, attribute values)."""
    redactor = Redactor()
    for channel, value in identities:
        if value.startswith(ERASED_PREFIX):
            continue
        if channel in PHONE_CHANNELS:
            redactor.identifiers.update(phone_forms(value))
        else:
            redactor.identifiers.add(value)
    if contact.external_id:
        redactor.identifiers.add(contact.external_id)
    full_name = f"{contact.first_name} {contact.last_name}".strip()
    redactor.add_details([contact.first_name, contact.last_name, full_name])
    redactor.add_details(_flat_values(contact.attributes))
    return redactor


def _flat_values(value):
    if isinstance(value, dict):
        for item in value.values():
            yield from _flat_values(item)
    elif isinstance(value, list):
        for item in value:
            yield from _flat_values(item)
    elif value is not None:
        yield value


def find_erased(pairs) -> dict[tuple[str, str], ChannelIdentity]:
    """The erased identities behind (channel, identity as normalised) pairs,
    matched through the keyed hash (a phone number erased on one phone
    channel is erased on all of them); pairs not erased are left out."""
    pairs = set(pairs)
    # Receipts ask for every chunk: with nobody erased, nothing is hashed
    # (one probe of the partial index on erased contacts).
    if not pairs or not Contact.objects.filter(erased_at__isnull=False).exists():
        return {}
    hashers: dict[str, Callable[[str], str]] = {}
    hashes: dict[str, list[tuple[str, str]]] = {}
    for channel, value in pairs:
        hasher = hashers.get(channel) or hashers.setdefault(
            channel, keyed_hasher(channel)
        )
        hashes.setdefault(hasher(value), []).append((channel, value))
    found: dict[tuple[str, str], ChannelIdentity] = {}
    for identity in ChannelIdentity.objects.filter(identity__in=hashes).order_by("pk"):
        for channel, value in hashes[identity.identity]:
            same_kind = channel == identity.channel or (
                channel in PHONE_CHANNELS and identity.channel in PHONE_CHANNELS
            )
            if same_kind and (
                (channel, value) not in found or identity.channel == channel
            ):
                found[(channel, value)] = identity
    return found


def _hash_ledger_evidence(identities) -> None:
    """Replace personal evidence (IP, user agent, free text) with a digest."""
    events = ConsentEvent.objects.filter(identity__in=identities)
    for event in events.iterator():
        parts = [
            event.evidence_wording,
            event.evidence_ip or "",
            event.evidence_user_agent,
            event.evidence_note,
        ]
        digest = hashlib.sha256("\x1f".join(parts).encode()).hexdigest()
        ConsentEvent.objects.filter(pk=event.pk)._rewrite_for_erasure(
            evidence_ip=None,
            evidence_user_agent="",
            evidence_note=f"[erased; sha256 of original evidence {digest}]",
            evidence_wording="",
        )


def find_for_erasure(raw_identity: str) -> tuple[list[Contact], list[Contact]]:
    """The contacts holding an identity written any way (a phone number in
    any format, or another channel's id as is), for an erasure request that
    names a number: (contacts still to erase, contacts already erased)."""
    try:
        value = normalise_phone(raw_identity)
        channels = sorted(PHONE_CHANNELS)
    except InvalidIdentity:
        value = raw_identity.strip()
        channels = [c for c in Channel.values if c not in PHONE_CHANNELS]
    holders = ChannelIdentity.objects.filter(identity=value, channel__in=channels)
    erased = find_erased((channel, value) for channel in channels)
    contacts = Contact.objects.filter(
        Q(pk__in=holders.values("contact_id"))
        | Q(pk__in=[i.contact_id for i in erased.values()])
    ).order_by("pk")
    return (
        [c for c in contacts if c.erased_at is None],
        [c for c in contacts if c.erased_at is not None],
    )
