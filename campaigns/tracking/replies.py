"""Inbound messages (replies) and Sinch's consent notifications.

An inbound message becomes an InboundMessage row, linked to the contact (by
channel identity) and the campaign (by the conversation metadata); STOP /
START keywords (campaigns.tracking.keywords) go to the consent ledger with the
message as evidence, for settings.INBOUND_STOP_PURPOSES (marketing by
default); HELP is logged. Opt-out / opt-in notifications of Sinch's consent
management go to the same ledger (source API).

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

from campaigns.dispatch.batch_request import CAMPAIGN_KEY
from campaigns.models import Campaign, InboundMessage
from campaigns.tracking import erased_senders, keywords
from campaigns.tracking.event_chunk import Chunk, Outcome, State, as_int
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
        return channel, normalise_identity(channel, raw), True
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


def apply_inbound(chunk: Chunk) -> None:
    items = []
    for event_id, message, at in chunk.inbound:
        ci = message.channel_identity
        key = _identity_key(ci.channel, ci.identity) if ci else ("", "", False)
        items.append((event_id, message, at, key))
    identities = _find_identities(key for *_, key in items)
    erased = erased_senders.find(key for *_, key in items if key[:2] not in identities)
    seen_ids = set(
        InboundMessage.objects.filter(
            message_id__in={m.message_id for _, m, _, _ in items if m.message_id}
        ).values_list("message_id", flat=True)
    )
    campaign_refs = {
        as_int(m.conversation_metadata.get(CAMPAIGN_KEY)) for _, m, _, _ in items
    }
    campaigns = set(
        Campaign.objects.filter(pk__in={c for c in campaign_refs if c}).values_list(
            "pk", flat=True
        )
    )
    purposes = _stop_purposes()
    created = []
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
        keyword = keywords.classify(message.text) if message.text else ""
        if (channel, identity) in erased:
            reply, outcome = erased_senders.erased_reply(
                event_id, message, at, erased[(channel, identity)], keyword
            )
            created.append(reply)
            chunk.outcomes.append(outcome)
            continue
        occurred = message.envelope.accepted_time or at
        known = identities.get((channel, identity))
        if known is None and keyword == keywords.STOP and valid:
            known = _new_contact(channel, identity)
            identities[(channel, identity)] = known
        campaign_id = as_int(message.conversation_metadata.get(CAMPAIGN_KEY))
        campaign_id = campaign_id if campaign_id in campaigns else None
        if known is not None and keyword in (keywords.STOP, keywords.START):
            evidence = Evidence(
                wording=message.text[:1000],
                note=(
                    f"{keyword} received as an inbound {channel} message from "
                    f"{identity} at {wire.format_time(occurred)}"
                    f" (Sinch message id {message.message_id or 'unknown'}"
                    + (f", replying to campaign {campaign_id}" if campaign_id else "")
                    + f"): {message.text!r}"
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
                    occurred_at=occurred,
                )
        if keyword == keywords.HELP:
            logger.info("HELP from %s %s", channel, mask_identity(identity))
        created.append(
            InboundMessage(
                received_at=occurred,
                channel=channel[:16],
                identity=identity[:255],
                contact_id=known.contact_id if known else None,
                campaign_id=campaign_id,
                text=message.text,
                keyword=keyword,
                event_id=event_id,
                message_id=message.message_id[:64],
            )
        )
        if known is None:
            chunk.outcomes.append(
                Outcome(
                    event_id,
                    State.ORPHAN,
                    f"no contact with {channel} identity {identity}",
                    message.kind,
                    campaign_id,
                )
            )
        else:
            chunk.outcomes.append(
                Outcome(event_id, State.PROCESSED, "", message.kind, campaign_id)
            )
    InboundMessage.objects.bulk_create(created)


def _new_contact(channel: str, identity: str) -> ChannelIdentity:
    """A bare contact for a number that said STOP before we knew it."""
    contact = Contact.objects.create()
    return ChannelIdentity.objects.create(
        contact=contact, channel=channel, identity=identity
    )


def _stop_purposes() -> list[str]:
    return list(getattr(settings, "INBOUND_STOP_PURPOSES", None) or ["MARKETING"])


def apply_consents(chunk: Chunk) -> None:
    items = []
    for event_id, note, at in chunk.consents:
        ci = note.channel_identity
        key = _identity_key(ci.channel, ci.identity) if ci else ("", "", False)
        items.append((event_id, note, at, key))
    identities = _find_identities(key for *_, key in items)
    erased = erased_senders.find(key for *_, key in items if key[:2] not in identities)
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
        occurred = note.envelope.event_time or note.envelope.accepted_time or at
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
                occurred_at=occurred,
            )
        chunk.outcomes.append(Outcome(event_id, State.PROCESSED, "", note.kind))
