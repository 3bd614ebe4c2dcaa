"""What campaigns forget when a contact is erased (the contact_erased receiver).

- Recipients keep their status, counts and failure codes (campaign figures
  do not change); the identity becomes the same keyed hash the contact's
  identity becomes, the fallback identities and the values put into the
  message are emptied.
- Clicks and short links of the person's recipients are deleted.
- Replies (InboundMessage) from the person keep their time, keyword and
  links; the identity becomes the keyed hash and the text goes.
- Raw webhook bodies that mention the person (their replies, the receipts of
  messages to them) are redacted in place: the number becomes the keyed
  hash, texts and names go. A processed event is never read again; an
  unprocessed one still parses.
- Cached texts of campaigns and batches (the pre-send summary's examples,
  cancel receipts, reasons, last errors) lose the person's entries, and so
  do the notifications that quoted a campaign's reason or a batch's error.
"""

import contextlib
import json

from django.db.models import Q

from campaigns.models import (
    Batch,
    Campaign,
    Click,
    InboundMessage,
    Notification,
    Recipient,
    Segment,
    ShortLink,
    WebhookEvent,
)
from config.lib.redaction import Redactor, redact_json_text
from contacts.phones import InvalidIdentity, normalise_identity
from contacts.services.erasure import ERASED_PREFIX, erased_identity

CAMPAIGN_TEXTS = (
    "status_reason",
    "presend_error",
    "receipts_stalled",
    "cap_exempt_reason",  # typed by Compliance: may name the person
)
CAMPAIGN_JSON = ("presend", "cancel_receipt", "message_snapshot", "frozen_segments")


def forget_recipient_data(
    sender,
    *,
    contact_id: int,
    identities=(),
    redactor: Redactor | None = None,
    report=None,
    **kwargs,
) -> None:
    """The contact_erased receiver: runs in the erasure's transaction; adds
    the person's reply texts to `redactor` (they are details to take out of
    the bodies that carried them) and counts what it changed in `report`."""
    redactor = redactor or Redactor()
    counts = {
        "recipients anonymised": _recipients(contact_id, redactor),
        "clicks and short links deleted": _clicks(contact_id),
        "replies anonymised": _replies(contact_id, identities, redactor),
        "webhook bodies redacted": _webhook_events(contact_id, redactor),
        "campaign summaries redacted": _campaigns(contact_id, redactor),
        "notifications redacted": _notifications(redactor),
        "segments redacted": _segments(redactor),
    }
    if report is not None:
        for what, count in counts.items():
            report.add(what, count)


def _recipients(contact_id: int, redactor: Redactor) -> int:
    rows = Recipient.objects.filter(contact_id=contact_id).select_related("campaign")
    changed = 0
    fields = ("pk", "identity", "fallback_identities", "reason", "campaign__channel")
    for recipient in rows.only(*fields):
        hashed = recipient.identity.startswith(ERASED_PREFIX)
        if hashed and not recipient.fallback_identities:
            continue
        Recipient.objects.filter(pk=recipient.pk).update(
            identity=recipient.identity
            if hashed
            else erased_identity(recipient.campaign.channel, recipient.identity),
            fallback_identities=[],
            parameters={},
            reason=redactor.redact(recipient.reason)[:255],
        )
        changed += 1
    return changed


def _clicks(contact_id: int) -> int:
    """The person's clicks and short links (a short link names its
    recipient): gone, so their links answer 404 and clicks still buffered
    by the redirect are dropped at the flush (click_buffer)."""
    mine = Recipient.objects.filter(contact_id=contact_id).values("pk")
    clicks, _ = Click.objects.filter(recipient_id__in=mine).delete()
    links, _ = ShortLink.objects.filter(recipient_id__in=mine).delete()
    return clicks + links


def _replies(contact_id: int, identities, redactor: Redactor) -> int:
    """The person's replies, linked or not (an orphan reply from their number
    before the contact existed); their texts become details to redact in
    the webhook bodies that carried them."""
    values = {value for _, value in identities}
    rows = InboundMessage.objects.filter(
        Q(contact_id=contact_id) | Q(identity__in=values)
    ).exclude(identity__startswith=ERASED_PREFIX)
    changed = 0
    for reply in rows.only("pk", "channel", "identity", "text"):
        redactor.add_details([reply.text])
        InboundMessage.objects.filter(pk=reply.pk).update(
            identity=_hashed(reply.channel, reply.identity), text=""
        )
        changed += 1
    return changed


def _hashed(channel: str, identity: str) -> str:
    with contextlib.suppress(InvalidIdentity):
        identity = normalise_identity(channel, identity)
    return erased_identity(channel, identity)


def _webhook_events(contact_id: int, redactor: Redactor) -> int:
    replies = InboundMessage.objects.filter(contact_id=contact_id, event__isnull=False)
    match = Q(pk__in=replies.values("event_id"))
    match |= _any_form(redactor, "body") | _any_form(redactor, "error")
    changed = 0
    for event in WebhookEvent.objects.filter(match).only("pk", "body", "error"):
        body = redact_json_text(event.body, redactor)
        error = redactor.scrub(event.error)
        if (body, error) != (event.body, event.error):
            WebhookEvent.objects.filter(pk=event.pk).update(body=body, error=error)
            changed += 1
    return changed


def _campaigns(contact_id: int, redactor: Redactor) -> int:
    changed = 0
    for campaign in Campaign.objects.only("pk", *CAMPAIGN_TEXTS, *CAMPAIGN_JSON):
        old = {name: getattr(campaign, name) for name in CAMPAIGN_TEXTS + CAMPAIGN_JSON}
        new = {
            name: redactor.scrub(old[name]) if old[name] else old[name]
            for name in CAMPAIGN_TEXTS
        }
        for name in CAMPAIGN_JSON:
            new[name] = redactor.scrub_json(old[name], contact_id=contact_id)
        new = {name: value for name, value in new.items() if value != old[name]}
        if new:
            Campaign.objects.filter(pk=campaign.pk).update(**new)
            changed += 1
    batches = Batch.objects.filter(_any_form(redactor, "last_error"))
    for batch in batches.only("pk", "last_error"):
        Batch.objects.filter(pk=batch.pk).update(
            last_error=redactor.redact(batch.last_error)
        )
        changed += 1
    return changed


# Notifications whose text quotes a reason or an error (campaigns.notifications).
QUOTING_KINDS = (
    Notification.Kind.FAILED,
    Notification.Kind.AUTO_PAUSED,
    Notification.Kind.RECEIPTS_STALLED,
)


def _notifications(redactor: Redactor) -> int:
    changed = 0
    rows = Notification.objects.filter(kind__in=QUOTING_KINDS).only("pk", "text")
    for note in rows.iterator(chunk_size=2000):
        text = redactor.scrub(note.text)
        if text != note.text:
            Notification.objects.filter(pk=note.pk).update(text=text)
            changed += 1
    return changed


def _segments(redactor: Redactor) -> int:
    """A segment's condition may name the person ("last name is Quistorp",
    their number): such a value is emptied (the segment then asks for a new
    one instead of matching them), and names and sentences are redacted; in
    the segments and in what campaigns recorded of them at their freeze."""
    changed = 0
    for segment in Segment.objects.only("pk", "name", "description", "definition"):
        record = {
            "name": segment.name,
            "description": segment.description,
            "definition": segment.definition,
        }
        new = _forget_in_segment(record, redactor)
        if new != record:
            if new["name"] != segment.name:
                new["name"] = f"{new['name']} (#{segment.pk})"  # names are unique
            Segment.objects.filter(pk=segment.pk).update(**new)
            changed += 1
    frozen = Campaign.objects.exclude(frozen_segments=None)
    for campaign in frozen.only("pk", "frozen_segments"):
        used = [_forget_in_segment(s, redactor) for s in campaign.frozen_segments]
        if used != campaign.frozen_segments:
            Campaign.objects.filter(pk=campaign.pk).update(frozen_segments=used)
            changed += 1
    return changed


def _forget_in_segment(record: dict, redactor: Redactor) -> dict:
    """A copy of a segment's record without the person: condition values
    that are theirs emptied, texts redacted."""
    details = {d.lower() for d in redactor.details}

    def theirs(value) -> bool:
        text = str(value)
        return redactor.mentions(text) or text.strip().lower() in details

    record = json.loads(json.dumps(record))
    for group in (record.get("definition") or {}).get("groups") or []:
        for condition in group.get("conditions") or []:
            value = condition.get("value")
            if isinstance(value, list):
                condition["value"] = [v for v in value if not theirs(v)]
            elif value is not None and theirs(value):
                condition["value"] = ""
    for key in ("name", "description"):
        if isinstance(record.get(key), str):
            record[key] = redactor.redact(record[key])
    return record


def _any_form(redactor: Redactor, name: str) -> Q:
    match = Q(pk__in=[])
    for form in redactor.identifiers:
        match |= Q(**{f"{name}__contains": form})
    return match
