"""Callbacks about an erased person, after the erasure.

An erased identity is stored only as its keyed hash
(contacts.services.erasure.erased_identity), so a later STOP, reply,
consent notification or receipt from that number matches no identity by
value. It is matched through the hash instead, and then:

- a reply is kept as a reply of the erased contact with the hash for the
  number and no text; no consent changes (the identity is opted out of
  everything for good, and a START must not opt it back in);
- the raw body of every such callback is redacted once processed: the number
  becomes the hash, the text goes. So the number is never stored in plain
  text again, in any table.
"""

from campaigns.models import InboundMessage, WebhookEvent
from campaigns.tracking.event_chunk import Chunk, Outcome, State
from config.lib.redaction import Redactor, phone_forms, redact_json_text
from contacts.models import ChannelIdentity
from contacts.phones import InvalidIdentity, normalise_identity
from contacts.services.erasure import find_erased
from sinch.channels import PHONE_CHANNELS

ERASED_OUTCOME = "from an erased identity: kept without its number or text"


def find(keys) -> dict[tuple[str, str], ChannelIdentity]:
    """The erased identities among (channel, identity, valid) keys."""
    return find_erased((c, i) for c, i, valid in keys if c and valid)


def erased_reply(event_id: int, message, at, erased: ChannelIdentity, keyword: str):
    """The InboundMessage and the outcome of a reply from an erased identity."""
    reply = InboundMessage(
        received_at=message.envelope.accepted_time or at,
        channel=message.channel_identity.channel[:16],
        identity=erased.identity,
        contact_id=erased.contact_id,
        text="",
        keyword=keyword,
        event_id=event_id,
        message_id=message.message_id[:64],
    )
    return reply, Outcome(event_id, State.PROCESSED, ERASED_OUTCOME, message.kind)


def _callers(chunk: Chunk):
    """(event id, channel, identity as normalised, text) of the chunk's
    callbacks that name a channel identity."""
    for items in (chunk.receipts, chunk.inbound, chunk.consents):
        for event_id, callback, _at in items:
            ci = getattr(callback, "channel_identity", None)
            if not ci:
                continue
            value = _as_stored(ci.channel, ci.identity)
            if value:
                yield event_id, ci.channel, value, getattr(callback, "text", "") or ""


def _as_stored(channel: str, raw: str) -> str:
    """The identity as stored. Sinch writes phone numbers as international
    digits: "+" and the digits is the stored form, without the cost of a
    full parse for each of thousands of receipts (a number that is not valid
    matches no hash, which is all this is used for)."""
    digits = raw[1:] if raw.startswith("+") else raw
    if channel in PHONE_CHANNELS and digits.isascii() and digits.isdigit():
        return "+" + digits
    try:
        return normalise_identity(channel, raw)
    except InvalidIdentity:
        return ""


def redact_bodies(chunk: Chunk) -> int:
    """Redact the stored bodies of the chunk's callbacks from erased
    identities; returns how many. One query when none is erased."""
    callers = list(_callers(chunk))
    erased = find_erased({(channel, value) for _, channel, value, _ in callers})
    redacted = 0
    for event_id, channel, value, text in callers:
        identity = erased.get((channel, value))
        if identity is None:
            continue
        forms = phone_forms(value) if channel in PHONE_CHANNELS else {value}
        redactor = Redactor(identifiers=forms, replacement=identity.identity)
        redactor.add_details([text])
        event = WebhookEvent.objects.only("body").get(pk=event_id)
        WebhookEvent.objects.filter(pk=event_id).update(
            body=redact_json_text(event.body, redactor)
        )
        redacted += 1
    return redacted
