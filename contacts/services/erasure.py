"""Erasure: forget a person but keep them suppressed and keep the ledger."""

import hashlib
import hmac

from django.conf import settings
from django.db import transaction
from django.dispatch import Signal
from django.utils import timezone

from contacts.models import (
    AuditEvent,
    ChannelIdentity,
    ConsentEvent,
    ConsentState,
    Contact,
    ListMembership,
)
from contacts.services.audit import record_audit
from sinch.channels import PHONE_CHANNELS

ERASED_PREFIX = "erased:"

# Sent inside the erasure's transaction with `contact_id`: other apps forget
# what they keep about the person (campaigns: recipients' numbers and values).
contact_erased = Signal()


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


def erase_contact(*, contact: Contact, actor) -> Contact:
    """Anonymise `contact`; idempotent (erasing twice changes nothing more).

    Names, ids, attributes and list memberships go; each identity becomes a
    keyed hash, opted out for every purpose, so the number stays suppressed;
    ledger entries stay, with their free-text evidence replaced by a hash.
    """
    with transaction.atomic():
        contact = Contact.objects.select_for_update().get(pk=contact.pk)
        if contact.erased_at:
            return contact
        now = timezone.now()
        identities = list(contact.identities.select_for_update())
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
        contact_erased.send(sender=Contact, contact_id=contact.pk)
        record_audit(
            actor=actor,
            action=AuditEvent.Action.ERASURE,
            target_type="contact",
            target_id=contact.pk,
            summary=f"Erased contact #{contact.pk} ({len(identities)} identities "
            "hashed and suppressed)",
        )
    contact.refresh_from_db()
    return contact


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
