"""Late opt-outs and erasures: batches scheduled at Sinch lose those people.

A batch handed to Sinch with a send time ahead (campaigns.dispatch.freeze,
SINCH_SCHEDULE_AHEAD_HOURS) still holds everyone frozen at the launch. The
periodic tick (`replace_late_optouts`) re-checks each such batch with the
one rule (campaigns.authoring.recheck.recheck_batch, a query or two per
batch); a batch that now holds someone who opted out or was erased, or a
fallback identity that may no longer be used, gets a `replace_reason` ("1
person opted out after launch") and its cancel is asked
of Sinch. Sinch cancels asynchronously: only once it confirms CANCELLED (a
status read, a callback, or a list read: campaigns.dispatch.cancellation
settles them all) is a replacement batch without them created and submitted
for the same send time (campaigns.dispatch.replacement). Unconfirmed cancels
are read and asked again every tick until Sinch confirms or the send time
passes; a batch whose cancel never got confirmed in time is recorded as sent
with them, and warned about on the campaign page and the health page.

With the tick every minute, confirmations polled for
SINCH_CANCEL_CONFIRM_WAIT_S and asked again each minute, an opt-out at least
SCHEDULED_OPTOUT_MARGIN_S before the send time leaves room for several
rounds: it never results in a message unless Sinch never confirms.
"""

import logging
from datetime import datetime

from django.utils import timezone

from campaigns.authoring import recheck
from campaigns.dispatch import cancellation, replacement
from campaigns.models import Batch, Recipient
from campaigns.models.states import ACTIVE

logger = logging.getLogger(__name__)

BatchStatus = Batch.Status


def scheduled_batches(now: datetime):
    """Batches at Sinch, ahead of their send time, no cancel asked yet."""
    return (
        Batch.objects.filter(
            is_test=False,
            status=BatchStatus.ACCEPTED,
            send_after__gt=now,
            cancel_requested_at__isnull=True,
            campaign__status__in=ACTIVE,
        )
        .exclude(remote_status__in=cancellation.TOO_LATE)
        .select_related("campaign")
        .order_by("send_after", "pk")
    )


def replace_late_optouts(now: datetime | None = None) -> dict[str, int]:
    """Find scheduled batches holding people who may no longer receive them;
    mark each to be replaced and ask Sinch to cancel it (waiting a little for
    the confirmation, which settles and replaces it). Counts of what was done."""
    now = now or timezone.now()
    marked = []
    checked = 0
    for batch in scheduled_batches(now).iterator(chunk_size=200):
        checked += 1
        entries, dropped = recheck.recheck_batch(
            batch.campaign, batch.pk, status=Recipient.Status.SUBMITTED
        )
        lost = recheck.lost_fallbacks(entries)
        if not dropped and not lost:
            continue
        reason = replacement.describe(dropped, lost)
        if not Batch.objects.filter(
            pk=batch.pk, status=BatchStatus.ACCEPTED, cancel_requested_at__isnull=True
        ).update(replace_reason=reason):
            continue  # cancelled or settled meanwhile
        batch.replace_reason = reason
        logger.info("batch %s: being replaced: %s", batch.pk, reason)
        marked.append(batch)
    if marked:
        cancellation.cancel_at_sinch(marked)
    return {"checked": checked, "being_replaced": len(marked)}
