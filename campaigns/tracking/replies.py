"""Inbound messages (replies) and Sinch's consent notifications.

An inbound message becomes an InboundMessage row, linked to the contact (by
channel identity, phone numbers read as Sinch sends them: international
digits without "+") and the campaign it answers (campaigns.tracking.
attribution); STOP / START keywords (campaigns.tracking.keywords), in a text
or a quick-reply / button answer, go to the consent ledger with the message
as evidence, for settings.INBOUND_STOP_PURPOSES (marketing by default); HELP
is logged; a reply that reads like an opt-out without a keyword is flagged for
review. Opt-out / opt-in notifications of Sinch's consent management go to
the same ledger (source API). Sinch's times are bounded by when the callback
reached us (a time in the future counts as the time received).

Why STOP opts out of marketing only (by default): a STOP nearly always
answers a campaign, and the same person may still need the order, delivery
or security messages they asked for; carriers require the sender to stop
*marketing* at once, which is what the ledger then guarantees (the next
freeze excludes the identity, batches not yet submitted drop it). Set
INBOUND_STOP_PURPOSES=MARKETING,TRANSACTIONAL to make STOP stop everything.
A STOP from a number we do not know yet creates a bare contact for it, opted
out: a later import cannot opt it back in (an import never overrides an
opt-out), so the person is never messaged after saying STOP. A number that
was erased is known only by its keyed hash: campaigns.tracking.erased_senders
matches it and keeps the callback without the number.
"""

import logging

from django.conf import settings

from campaigns import notifications
from campaigns.models import InboundMessage
from campaigns.tracking import erased_senders, keywords
from campaigns.tracking.attribution import Reply, attribute_replies
from campaigns.tracking.event_chunk import Chunk, Outcome, State
from config.lib.redaction import mask_identity
from contacts.models import ChannelIdentity, ConsentEvent, Contact
from contacts.phones import InvalidIdentity, normalise_identity
from contacts.services.consent import Evidence, record_consent
from sinch import wire

logger = logging.getLogger(__name__)

INBOUND_ACTOR = "Sinch inbound message"
CONSENT_ACTOR = "Sinch consent management"


def _identity_key(channel: str, raw: str) -> tuple[str, str, bool]:
    """(channel, identity as stored, whether it is valid)."""
    try:
        international = wire.CALLBACK_PHONE_WITHOUT_PLUS
        return (
            channel,
            normalise_identity(channel, raw, international=international),
            True,
        )
    except InvalidIdentity:
        return channel, raw, False


def _find_identities(keys) -> dict[tuple[str, str], ChannelIdentity]:
    values = {identity for _, identity, _ in keys}
    if not values:
        return {}
    return {
        (ci.channel, ci.identity): ci
        for ci in ChannelIdentity.objects.filter(identity__in=values)
    }


def _with_identities(callbacks):
    """(items, known identities, erased identities) for (event id, callback,
    at) triples: each item gets its identity key; one lookup of each kind."""
    items = []
    for event_id, callback, at in callbacks:
        ci = callback.channel_identity
        key = _identity_key(ci.channel, ci.identity) if ci else ("", "", False)
        items.append((event_id, callback, at, key))
    identities = _find_identities(key for *_, key in items)
    erased = erased_senders.find(key for *_, key in items if key[:2] not in identities)
    return items, identities, erased


def apply_inbound(chunk: Chunk) -> None:
    items, identities, erased = _with_identities(chunk.inbound)
    seen_ids = set(
        InboundMessage.objects.filter(
            message_id__in={m.message_id for _, m, _, _ in items if m.message_id}
        ).values_list("message_id", flat=True)
    )
    purposes = _stop_purposes()
    created, refs = [], []
    for event_id, message, at, (channel, identity, valid) in items:
        if message.message_id and message.message_id in seen_ids:
            chunk.outcomes.append(
                Outcome(
                    event_id,
                    State.IGNORED,
                    f"duplicate of inbound message {message.message_id}",
                    message.kind,
                )
            )
            continue
        if message.message_id:
            seen_ids.add(message.message_id)
        if not channel:
            chunk.outcomes.append(
                Outcome(event_id, State.FAILED, "no channel identity", message.kind)
            )
            continue
        keyword, review = _classify(message)
        claimed = message.envelope.accepted_time or at
        occurred = min(claimed, at)
        if (channel, identity) in erased:
            reply, outcome = erased_senders.erased_reply(
                event_id, message, at, erased[(channel, identity)], keyword
            )
            reply.received_at = occurred
            created.append(reply)
            refs.append(Reply(message.batch_id, None, "", occurred))
            chunk.outcomes.append(outcome)
            continue
        known = identities.get((channel, identity))
        if known is None and keyword == keywords.STOP and valid:
            known = _new_contact(channel, identity)
            identities[(channel, identity)] = known
        text = _reply_text(message)
        if known is not None and keyword in (keywords.STOP, keywords.START):
            evidence = Evidence(
                wording=text[:1000],
                note=(
                    f"{keyword} received as an inbound {channel} message from "
                    f"{identity} at {wire.format_time(occurred)}"
                    f" (Sinch message id {message.message_id or 'unknown'}"
                    + (f", batch {message.batch_id}" if message.batch_id else "")
                    + f"): {text!r}"
                ),
            )
            for purpose in purposes:
                record_consent(
                    identity=known,
                    kind=ConsentEvent.Kind.OPT_OUT
                    if keyword == keywords.STOP
                    else ConsentEvent.Kind.OPT_IN,
                    purpose=purpose,
                    source=ConsentEvent.Source.INBOUND_KEYWORD,
                    evidence=evidence,
                    actor_name=INBOUND_ACTOR,
                    occurred_at=claimed,
                    received_at=at,
                )
        if keyword == keywords.HELP:
            logger.info("HELP from %s %s", channel, mask_identity(identity))
        created.append(
            InboundMessage(
                received_at=occurred,
                channel=channel[:16],
                identity=identity[:255],
                contact_id=known.contact_id if known else None,
                text=text,
                keyword=keyword,
                review=InboundMessage.Review.PENDING
                if review
                else InboundMessage.Review.NONE,
                event_id=event_id,
                message_id=message.message_id[:64],
            )
        )
        refs.append(Reply(message.batch_id, created[-1].contact_id, identity, occurred))
        if known is None:
            chunk.outcomes.append(
                Outcome(
                    event_id,
                    State.ORPHAN,
                    f"no contact with {channel} identity {identity}",
                    message.kind,
                )
            )
        else:
            chunk.outcomes.append(Outcome(event_id, State.PROCESSED, "", message.kind))
    _attribute(created, refs, chunk.outcomes)
    InboundMessage.objects.bulk_create(created)
    if any(r.review == InboundMessage.Review.PENDING for r in created):
        _tell_reviewers()


def _tell_reviewers() -> None:
    """New replies wait for review: those who may record the opt-out are told
    (campaigns.notifications; the text holds a count, never a reply)."""
    pending = InboundMessage.objects.filter(review=InboundMessage.Review.PENDING)
    newest = pending.order_by("-pk").values_list("pk", flat=True).first()
    if newest is not None:
        notifications.replies_to_review(newest, pending.count())


def _classify(message) -> tuple[str, bool]:
    """(keyword, needs review) of a text or a quick-reply / button answer."""
    keyword = keywords.classify(message.text) if message.text else ""
    if not keyword and message.answers:
        keyword = keywords.classify_answer(message.answers)
    if keyword:
        return keyword, False
    wording = [message.text, *message.answers]
    return "", any(keywords.needs_review(w) for w in wording if w)


def _reply_text(message) -> str:
    """What the person sent: the text, else the button answer's wording."""
    if message.text or not message.answers:
        return message.text
    return "Button: " + " / ".join(message.answers)


def _attribute(
    created: list[InboundMessage], refs: list[Reply], outcomes: list[Outcome]
) -> None:
    """Link each new reply to the campaign it answers (and its outcome)."""
    found = attribute_replies(refs)
    by_event = {outcome.id: outcome for outcome in outcomes}
    for row, attribution in zip(created, found, strict=True):
        row.campaign_id = attribution.campaign_id
        row.campaign_inferred = attribution.inferred
        by_event[row.event_id].campaign_id = attribution.campaign_id


def _new_contact(channel: str, identity: str) -> ChannelIdentity:
    """A bare contact for a number that said STOP before we knew it."""
    contact = Contact.objects.create()
    return ChannelIdentity.objects.create(
        contact=contact, channel=channel, identity=identity
    )


def _stop_purposes() -> list[str]:
    return list(getattr(settings, "INBOUND_STOP_PURPOSES", None) or ["MARKETING"])


def apply_consents(chunk: Chunk) -> None:
    items, identities, erased = _with_identities(chunk.consents)
    purposes = _stop_purposes()
    for event_id, note, at, (channel, identity, valid) in items:
        if (channel, identity) in erased:
            outcome = erased_senders.ERASED_OUTCOME
            chunk.outcomes.append(
                Outcome(event_id, State.PROCESSED, outcome, note.kind)
            )
            continue
        opt_out = note.kind == "OPT_OUT"
        if "FAILED" in note.status or (not opt_out and "SUCCEEDED" not in note.status):
            chunk.outcomes.append(
                Outcome(event_id, State.IGNORED, f"status {note.status!r}", note.kind)
            )
            continue
        known = identities.get((channel, identity))
        if known is None and opt_out and valid:
            known = identities[(channel, identity)] = _new_contact(channel, identity)
        if known is None:
            chunk.outcomes.append(
                Outcome(
                    event_id,
                    State.ORPHAN,
                    f"no contact with {channel or '?'} identity {identity or '?'}",
                    note.kind,
                )
            )
            continue
        claimed = note.envelope.event_time or note.envelope.accepted_time or at
        occurred = min(claimed, at)
        evidence = Evidence(
            note=(
                f"{note.kind} notification of Sinch's consent management "
                f"(request {note.request_id or 'unknown'}, status {note.status}) "
                f"for {channel} {identity} at {wire.format_time(occurred)}"
            )
        )
        for purpose in purposes:
            record_consent(
                identity=known,
                kind=ConsentEvent.Kind.OPT_OUT if opt_out else ConsentEvent.Kind.OPT_IN,
                purpose=purpose,
                source=ConsentEvent.Source.API,
                evidence=evidence,
                actor_name=CONSENT_ACTOR,
                occurred_at=claimed,
                received_at=at,
            )
        chunk.outcomes.append(Outcome(event_id, State.PROCESSED, "", note.kind))
