"""Cancelling batches, and the cancellation receipt.

- Batches not yet handed to Sinch are never sent: CANCELLED here
  (`cancel_unsubmitted`); a batch whose submission is in flight is marked
  `cancel_requested` and cancelled at Sinch as soon as its outcome is known
  (campaigns.dispatch.outcomes).
- A batch scheduled at Sinch is cancelled with the API and confirmed by a
  status read (`cancel_accepted`): Sinch answers every cancel with 200, so only
  the read says whether it worked. A batch Sinch has processed, or is sending,
  cannot be cancelled.
- The **receipt** (`cancellation_receipt`) counts the messages prevented and
  those already gone, from the batches' states; `save_receipt` stores it on
  the campaign.
"""

import logging

from django.db import transaction
from django.db.models import Sum
from django.utils import timezone

from campaigns import counters
from campaigns.dispatch import ratelimit
from campaigns.models import Batch, Campaign, Recipient
from campaigns.models.states import RemoteBatchStatus
from sinch import client as sinch_client
from sinch.errors import SinchError, SinchNotFoundError

logger = logging.getLogger(__name__)

BatchStatus = Batch.Status


def cancel_unsubmitted(campaign: Campaign) -> int:
    """Batches not yet handed to Sinch are never sent; in-flight ones are
    marked to be cancelled once their outcome is known. Returns how many
    batches were cancelled here."""
    with transaction.atomic():
        count = Batch.objects.filter(
            campaign=campaign, is_test=False, status=BatchStatus.PENDING
        ).update(status=BatchStatus.CANCELLED)
        # Only the recipients of batches that are CANCELLED now: a batch a
        # worker claimed meanwhile keeps its recipients (its outcome decides).
        n = Recipient.objects.filter(
            campaign=campaign,
            is_test=False,
            status=Recipient.Status.PENDING,
            batch__status=BatchStatus.CANCELLED,
        ).update(status=Recipient.Status.CANCELLED)
        counters.moved(
            campaign.pk, Recipient.Status.PENDING, Recipient.Status.CANCELLED, n
        )
        Batch.objects.filter(
            campaign=campaign,
            is_test=False,
            status__in=(BatchStatus.SUBMITTING, BatchStatus.UNCERTAIN),
        ).update(cancel_requested=True)
    return count


def cancel_accepted(batch: Batch) -> str:
    """Cancel a batch Sinch has accepted, if it is still scheduled there.

    Sinch always answers a cancel with 200: the status read after it says
    whether it worked. Returns the batch's remote status afterwards.
    """
    now = timezone.now()
    if batch.send_after is None or batch.send_after <= now:
        # Sent at once, or due: Sinch has processed it or is processing it.
        Batch.objects.filter(pk=batch.pk).update(cancel_requested=True)
        return batch.remote_status or RemoteBatchStatus.PROCESSED
    client = sinch_client.get_sinch_client()
    # Two requests: take their slots (a user's cancel goes ahead regardless).
    ratelimit.acquire(timeout_s=5)
    ratelimit.acquire(timeout_s=5)
    try:
        client.cancel_batch(batch.sinch_batch_id)
        remote = client.get_batch(batch.sinch_batch_id)
    except SinchNotFoundError:
        remote_status = "UNKNOWN"
    except SinchError as exc:
        logger.warning("batch %s: cancel at Sinch failed: %s", batch.pk, exc)
        Batch.objects.filter(pk=batch.pk).update(
            cancel_requested=True, last_error=f"Cancel at Sinch failed: {exc}"
        )
        return batch.remote_status
    else:
        remote_status = remote.status
    with transaction.atomic():
        fields = {"remote_status": remote_status, "remote_checked_at": now}
        if remote_status == RemoteBatchStatus.CANCELLED:
            fields["status"] = BatchStatus.CANCELLED
            n = Recipient.objects.filter(
                batch=batch, status=Recipient.Status.SUBMITTED
            ).update(status=Recipient.Status.CANCELLED)
            counters.moved(
                batch.campaign_id,
                Recipient.Status.SUBMITTED,
                Recipient.Status.CANCELLED,
                n,
            )
        else:
            fields["cancel_requested"] = True
        Batch.objects.filter(pk=batch.pk).update(**fields)
    return remote_status


def cancellation_receipt(campaign: Campaign) -> dict:
    """What a cancel prevented and what had already gone, from the batches."""
    batches = Batch.objects.filter(campaign=campaign, is_test=False)

    def messages(queryset) -> int:
        return queryset.aggregate(n=Sum("size"))["n"] or 0

    never = batches.filter(status=BatchStatus.CANCELLED, sinch_batch_id="")
    at_sinch = batches.filter(status=BatchStatus.CANCELLED).exclude(sinch_batch_id="")
    gone = batches.filter(status=BatchStatus.ACCEPTED)
    unsure = batches.filter(
        status__in=(
            BatchStatus.SUBMITTING,
            BatchStatus.UNCERTAIN,
            BatchStatus.PENDING,
        )
    )
    failed = batches.filter(status=BatchStatus.FAILED)
    return {
        "at": timezone.now().isoformat(),
        "prevented": messages(never) + messages(at_sinch),
        "never_submitted": messages(never),
        "cancelled_at_sinch": messages(at_sinch),
        "batches_cancelled_at_sinch": at_sinch.count(),
        "already_sent": messages(gone),
        "batches_already_sent": gone.count(),
        "unconfirmed": messages(unsure),
        "failed_before": messages(failed),
    }


def save_receipt(campaign: Campaign) -> dict:
    """Compute the cancellation receipt and store it on the campaign."""
    receipt = cancellation_receipt(campaign)
    Campaign.objects.filter(pk=campaign.pk).update(cancel_receipt=receipt)
    campaign.cancel_receipt = receipt
    return receipt
