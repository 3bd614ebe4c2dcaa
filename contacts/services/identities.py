"""Channel identities: adding a number, and replacing one.

A stored identity's value never changes (see ChannelIdentity). Replacing a
number adds a new identity, with no consent of its own, and retires the old
one: it keeps its ledger, stays opted out or erased as it was, and is never
sent to again.
"""

from django.db import IntegrityError, transaction
from django.utils import timezone

from config.lib.redaction import mask_number
from contacts.models import AuditEvent, ChannelIdentity, Contact
from contacts.phones import normalise_identity
from contacts.services.audit import record_audit
from contacts.services.suppression import SuppressedIdentityError, is_suppressed


class IdentityTaken(ValueError):
    """The number is already stored on the channel (the message says where)."""


def check_new_identity(channel: str, identity: str) -> None:
    """Raise when `identity` (normalised) cannot become a new identity on
    `channel`: suppressed, or already stored (live or retired)."""
    if is_suppressed(channel, identity):
        raise SuppressedIdentityError(
            f"{mask_number(identity)} is suppressed (its owner was erased, or "
            "it was opted out and replaced): it cannot be added again."
        )
    owner = (
        ChannelIdentity.objects.filter(channel=channel, identity=identity)
        .values_list("contact_id", flat=True)
        .first()
    )
    if owner is not None:
        raise IdentityTaken(
            f"{channel} {mask_number(identity)} is already stored, on contact #{owner}."
        )


def replace_identity(
    identity: ChannelIdentity, raw: str, *, actor, retire: bool = True, note: str = ""
) -> ChannelIdentity:
    """Add the number `raw` (normalised) to `identity`'s contact on its channel
    and, when `retire`, retire `identity`; audited. Returns the new identity.

    Raises InvalidIdentity, SuppressedIdentityError or IdentityTaken (nothing
    changed). The new identity has no consent: consent is the person's word
    about a number, and this number has none yet.
    """
    value = normalise_identity(identity.channel, raw)
    check_new_identity(identity.channel, value)
    now = timezone.now()
    with transaction.atomic():
        old = ChannelIdentity.objects.select_for_update().get(pk=identity.pk)
        if old.retired_at is not None:
            raise IdentityTaken(f"{mask_number(old.identity)} is retired already.")
        try:
            with transaction.atomic():
                new = ChannelIdentity.objects.create(
                    contact_id=old.contact_id, channel=old.channel, identity=value
                )
        except IntegrityError:  # added meanwhile by someone else
            raise IdentityTaken(
                f"{old.channel} {mask_number(value)} is already stored."
            ) from None
        if retire:
            ChannelIdentity.objects.filter(pk=old.pk).update(retired_at=now)
            identity.retired_at = now
        Contact.objects.filter(pk=old.contact_id).update(updated_at=now)
        verb = "replaced by" if retire else "kept; added"
        record_audit(
            actor=actor,
            action=AuditEvent.Action.IDENTITY,
            target_type="contact",
            target_id=old.contact_id,
            summary=f"{old.channel} {mask_number(old.identity)} {verb} "
            f"{mask_number(value)} (no consent yet)" + (f": {note}" if note else ""),
            details={"old_identity": old.pk, "new_identity": new.pk, "retired": retire},
        )
    return new
