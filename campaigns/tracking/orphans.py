"""Orphan callbacks that would now match go back to the processor.

A callback kept as ORPHAN in the last ORPHAN_RETRY_WINDOW that would now match
(by the receipt processor's own rules: the batch by Sinch batch id or
BATCH_KEY, the recipient by RECIPIENT_KEY) goes back to NEW and the processor
is woken: typically a batch status update or processing report that came
before the dispatcher recorded the batch's Sinch id after an uncertain
submission. Part of the periodic reconciliation
(campaigns.tracking.reconciliation).
"""

import logging
from datetime import datetime, timedelta

from django.utils import timezone

from campaigns.dispatch import batch_request
from campaigns.models import Batch, Recipient, WebhookEvent
from campaigns.tracking import inbox
from campaigns.tracking.event_chunk import as_int
from sinch.callbacks import (
    BatchProcessingReport,
    BatchStatusUpdate,
    DeliveryReport,
    parse_callback,
)

logger = logging.getLogger(__name__)

ORPHAN_RETRY_WINDOW = timedelta(days=1)
ORPHAN_CHUNK = 1000


def retry_orphans(now: datetime | None = None) -> int:
    """Orphan callbacks that would now match go back to NEW.

    The same matching as the receipt processor (campaigns.tracking.receipts): a batch
    status update or processing report whose Sinch batch id (or BATCH_KEY
    metadata) names a batch here; a delivery receipt whose RECIPIENT_KEY names
    a recipient of the campaign and Sinch batch it also carries. Returns how
    many; the processor is woken to apply them.
    """
    now = now or timezone.now()
    orphans = (
        WebhookEvent.objects.filter(
            state=WebhookEvent.State.ORPHAN,
            received_at__gte=now - ORPHAN_RETRY_WINDOW,
        )
        .order_by("pk")
        .values_list("pk", "body")
    )
    retried = 0
    last = 0
    while True:
        chunk = list(orphans.filter(pk__gt=last)[:ORPHAN_CHUNK])
        if not chunk:
            break
        last = chunk[-1][0]
        ready = _matching({pk: ref for pk, body in chunk if (ref := _references(body))})
        if ready:
            retried += WebhookEvent.objects.filter(
                pk__in=ready, state=WebhookEvent.State.ORPHAN
            ).update(state=WebhookEvent.State.NEW, error="")
    if retried:
        logger.info("%d orphan callbacks now match: queued for processing", retried)
        inbox.wake_processor()
    return retried


def _references(body: str) -> tuple | None:
    """What an event must match: ("batch", sinch id, batch key) or
    ("receipt", recipient id, campaign id, sinch id); None: nothing to retry."""
    try:
        event = parse_callback(body)
    except ValueError:
        return None
    if isinstance(event, DeliveryReport):
        recipient_id = as_int(event.metadata.get(batch_request.RECIPIENT_KEY))
        if recipient_id is None:
            return None
        campaign = event.metadata.get(batch_request.CAMPAIGN_KEY)
        return ("receipt", recipient_id, str(campaign or ""), event.batch_id)
    if isinstance(event, BatchStatusUpdate):
        key = str(event.metadata.get(batch_request.BATCH_KEY) or "")
        return ("batch", event.batch_id, key)
    if isinstance(event, BatchProcessingReport):
        return ("batch", event.batch_id, "")
    return None


def _matching(refs: dict[int, tuple]) -> list[int]:
    """The events of `refs` that now match a batch or recipient here."""
    batch_refs = [r for r in refs.values() if r[0] == "batch"]
    sinch_ids = {r[1] for r in batch_refs if r[1]}
    keys = {r[2] for r in batch_refs if r[2]}
    known_ids = set(
        Batch.objects.filter(sinch_batch_id__in=sinch_ids).values_list(
            "sinch_batch_id", flat=True
        )
    )
    known_keys = set(
        Batch.objects.filter(metadata_key__in=keys).values_list(
            "metadata_key", flat=True
        )
    )
    recipient_ids = {r[1] for r in refs.values() if r[0] == "receipt"}
    recipients = {
        pk: (str(campaign_id), sinch_id)
        for pk, campaign_id, sinch_id in Recipient.objects.filter(
            pk__in=recipient_ids
        ).values_list("pk", "campaign_id", "batch__sinch_batch_id")
    }
    ready = []
    for pk, ref in refs.items():
        if ref[0] == "batch":
            if (ref[1] and ref[1] in known_ids) or (ref[2] and ref[2] in known_keys):
                ready.append(pk)
            continue
        _, recipient_id, campaign, sinch_id = ref
        if recipient_id not in recipients:
            continue
        their_campaign, their_batch = recipients[recipient_id]
        if campaign and campaign != their_campaign:
            continue
        if sinch_id and their_batch and sinch_id != their_batch:
            continue
        ready.append(pk)
    return ready


# Callbacks kept unapplied that an operator may send through again, once the
# code reads them (an unknown batch key added to sinch.wire) or Sinch's
# records were checked (a processing report naming someone else).
REQUEUABLE = (WebhookEvent.State.UNKNOWN, WebhookEvent.State.MISMATCH)


def requeue_unapplied(states=REQUEUABLE) -> int:
    """Kept callbacks in `states` go back to NEW (their reason cleared) for
    the processor; returns how many. ValueError for any other state."""
    states = tuple(states)
    wrong = [s for s in states if s not in REQUEUABLE]
    if wrong:
        raise ValueError(
            f"only {', '.join(REQUEUABLE)} callbacks are sent through again, "
            f"not {', '.join(wrong)}"
        )
    return WebhookEvent.objects.filter(state__in=states).update(
        state=WebhookEvent.State.NEW, error=""
    )
