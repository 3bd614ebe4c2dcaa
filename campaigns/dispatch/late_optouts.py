"""Late opt-outs and erasures: batches scheduled at Sinch lose those people.

A batch handed to Sinch with a send time ahead (campaigns.dispatch.freeze,
SINCH_SCHEDULE_AHEAD_HOURS) still holds everyone frozen at the launch. The
periodic tick (`replace_late_optouts`) re-checks such a batch with the
one rule (campaigns.authoring.recheck.recheck_batch, a query or two per
batch) when it holds someone whose consent or identity changed since its last
check, or anyone at all after an erasure (contacts.services.changes): a
million people scheduled cost a few index probes a minute, not a re-read of
every batch. A batch that now holds someone who opted out or was erased, or a
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
from datetime import datetime, timedelta

from django.utils import timezone

from campaigns.authoring import recheck
from campaigns.dispatch import cancellation, replacement
from campaigns.models import Batch, Campaign, Recipient
from campaigns.models.states import ACTIVE
from contacts.services import changes

# A change is timed when its transaction writes it, and seen once it commits:
# changes this much older than a batch's last check are read again.
CLOCK_MARGIN = timedelta(minutes=10)
# Contacts per query when finding the batches that hold changed contacts.
CONTACTS_PER_QUERY = 5000

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
        .order_by("send_after", "pk")
    )


def batches_to_recheck(batches: list[Batch]) -> list[Batch]:
    """The batches among `batches` holding someone whose consent or identity
    changed since the batch was last checked (all of them after an erasure).
    A batch never checked by the tick counts from its submission, when the
    drain loop checked it."""
    if not batches:
        return []
    since = min(b.rechecked_at or b.submitted_at or b.created_at for b in batches)
    changed = changes.changed_since(since - CLOCK_MARGIN)
    if changed.everyone:
        return batches
    contact_ids = sorted(changed.contact_ids)
    by_pk = {b.pk: b for b in batches}
    holding = set()
    for start in range(0, len(contact_ids), CONTACTS_PER_QUERY):
        holding.update(
            Recipient.objects.filter(
                contact_id__in=contact_ids[start : start + CONTACTS_PER_QUERY],
                batch_id__in=by_pk,
            ).values_list("batch_id", flat=True)
        )
    return [b for b in batches if b.pk in holding]


def replace_late_optouts(now: datetime | None = None) -> dict[str, int]:
    """Find scheduled batches holding people who may no longer receive them;
    mark each to be replaced and ask Sinch to cancel it (waiting a little for
    the confirmation, which settles and replaces it). Counts of what was done."""
    now = now or timezone.now()
    batches = list(scheduled_batches(now))
    # Each campaign read once, not once a batch (its JSON fields are large).
    campaigns = Campaign.objects.in_bulk({b.campaign_id for b in batches})
    for batch in batches:
        batch.campaign = campaigns[batch.campaign_id]
    to_check = batches_to_recheck(batches)
    marked = []
    for batch in to_check:
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
    Batch.objects.filter(pk__in=[b.pk for b in batches]).update(rechecked_at=now)
    if marked:
        cancellation.cancel_at_sinch(marked)
    return {
        "scheduled": len(batches),
        "checked": len(to_check),
        "being_replaced": len(marked),
    }
