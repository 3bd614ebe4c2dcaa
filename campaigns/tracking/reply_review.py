"""Replies flagged for review: a person reads them and records the opt-out.

A reply that reads like an opt-out but matched no keyword ("remove me", "no
more texts") is flagged PENDING by campaigns.tracking.replies. Recording the
opt-out from it opts the number out of settings.INBOUND_STOP_PURPOSES, dated
when the reply was received, with the reply's text as the evidence and the
reviewer as the actor (the ledger's audit row names them).
"""

from django.db import transaction
from django.utils import timezone

from campaigns.models import InboundMessage
from campaigns.tracking.replies import _new_contact, _stop_purposes
from contacts.models import ChannelIdentity, ConsentEvent
from contacts.phones import InvalidIdentity, normalise_identity
from contacts.services.audit import actor_label
from contacts.services.consent import Evidence, record_consent
from sinch import wire

Review = InboundMessage.Review


class ReviewError(Exception):
    """The opt-out cannot be recorded from this reply; the message says why."""


def replies_needing_review() -> int:
    """How many replies wait for a person to decide (the partial index)."""
    return InboundMessage.objects.filter(review=Review.PENDING).count()


def record_opt_out_from_reply(reply: InboundMessage, *, actor) -> list[ConsentEvent]:
    """Opt the reply's number out, with the reply as evidence.

    Works on any reply that is not an opt-out already (a STOP, or a review
    done before). A number we do not know yet gets a bare contact, opted out,
    as a STOP would. The reply is marked OPTED_OUT in the same transaction.
    Raises ReviewError when there is nothing to record.
    """
    if reply.keyword == InboundMessage.Keyword.STOP:
        raise ReviewError("This reply was a STOP: the opt-out is already recorded.")
    if reply.review == Review.OPTED_OUT:
        raise ReviewError("The opt-out from this reply is already recorded.")
    with transaction.atomic():
        locked = InboundMessage.objects.select_for_update().get(pk=reply.pk)
        if locked.review == Review.OPTED_OUT:
            raise ReviewError("The opt-out from this reply is already recorded.")
        identity = _identity_of(locked)
        evidence = Evidence(
            wording=locked.text[:1000],
            note=(
                f"Opt-out recorded by {actor_label(actor)} on "
                f"{wire.format_time(timezone.now())} from reply #{locked.pk}, "
                f"received as an inbound {locked.channel} message from "
                f"{identity.identity} at {wire.format_time(locked.received_at)}"
                f" (Sinch message id {locked.message_id or 'unknown'}): "
                f"{locked.text!r}"
            ),
        )
        events = [
            record_consent(
                identity=identity,
                kind=ConsentEvent.Kind.OPT_OUT,
                purpose=purpose,
                source=ConsentEvent.Source.ADMIN,
                evidence=evidence,
                actor=actor,
                occurred_at=locked.received_at,
            )
            for purpose in _stop_purposes()
        ]
        InboundMessage.objects.filter(pk=locked.pk).update(
            review=Review.OPTED_OUT, contact_id=identity.contact_id
        )
    reply.review, reply.contact_id = Review.OPTED_OUT, identity.contact_id
    return events


def _identity_of(reply: InboundMessage) -> ChannelIdentity:
    found = ChannelIdentity.objects.filter(
        channel=reply.channel, identity=reply.identity
    ).first()
    if found is not None:
        return found
    try:
        normalise_identity(reply.channel, reply.identity)
    except InvalidIdentity as exc:
        raise ReviewError(
            f"{reply.channel} identity {reply.identity!r} is not valid ({exc})."
        ) from None
    return _new_contact(reply.channel, reply.identity)
