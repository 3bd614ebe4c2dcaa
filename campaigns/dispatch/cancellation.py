"""Cancelling batches, confirming the cancels, and the cancellation receipt.

- Batches not yet handed to Sinch are never sent: CANCELLED here
  (`cancel_unsubmitted`); a batch whose submission is in flight is marked
  `cancel_requested` and cancelled at Sinch as soon as its outcome is known
  (campaigns.dispatch.outcomes).
- A batch scheduled at Sinch is cancelled with the API (`request_cancels`),
  and Sinch cancels **asynchronously**: it answers every cancel with 200, even
  one that fails, and a status read just after it still says SCHEDULED. So a
  cancel is *requested* (`cancel_requested_at`) until Sinch confirms it:
  `confirm_cancels` reads the statuses for up to SINCH_CANCEL_CONFIRM_WAIT_S,
  and the periodic tick (`retry_unconfirmed_cancels`) reads them again, and
  asks again (a cancel Sinch refused, did not answer, or silently dropped),
  until Sinch confirms or the send time passes. A batch Sinch has processed,
  or is sending, cannot be cancelled.
- A CANCELLED status learnt from any source (this module's reads, a batch
  status callback, the reconciliation's list read) is settled in one place,
  `settle_cancelled`: the batch CANCELLED, its recipients CANCELLED, or, for
  a batch being replaced after late opt-outs, handed over to its replacement
  (campaigns.dispatch.replacement).
- The **receipt** (`cancellation_receipt`) counts the messages prevented, the
  cancellations requested and not yet confirmed, and those already gone (only
  batches whose send time has come), from the batches' states; `save_receipt`
  stores it on the campaign.
"""

import logging
import time
from collections.abc import Iterable

from django.conf import settings
from django.db import transaction
from django.db.models import Q, Sum
from django.utils import timezone

from campaigns import counters
from campaigns.dispatch import ratelimit, replacement
from campaigns.models import Batch, Campaign, Recipient
from campaigns.models.states import RemoteBatchStatus
from sinch import client as sinch_client
from sinch.errors import SinchError, SinchNotFoundError

logger = logging.getLogger(__name__)

BatchStatus = Batch.Status
RB = RemoteBatchStatus
# Remote statuses after which a cancel can no longer work.
TOO_LATE = (RB.READY, RB.PROCESSED, RB.COMPLETED, RB.PARTIAL, RB.FAILED)
# How often the confirmation is read while a cancel waits for it.
CONFIRM_POLL_S = 0.25
NOT_IN_TIME = (
    "Sinch did not confirm the cancellation before the send time: the batch "
    "was sent as scheduled"
)


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
    """Cancel a batch Sinch has accepted, if it is still scheduled there, and
    wait a little for Sinch to confirm it. Returns the batch's remote status
    afterwards (SCHEDULED: requested, not confirmed yet)."""
    return cancel_at_sinch([batch]).get(batch.pk, batch.remote_status)


def cancel_at_sinch(batches: Iterable[Batch], *, wait_s: float | None = None):
    """Request the cancel of each batch and wait up to `wait_s` (default
    SINCH_CANCEL_CONFIRM_WAIT_S) for Sinch's confirmations; {batch id: remote
    status as last read}."""
    requested = request_cancels(batches)
    if wait_s is None:
        wait_s = settings.SINCH_CANCEL_CONFIRM_WAIT_S
    return confirm_cancels(requested, wait_s=wait_s)


def request_cancels(batches: Iterable[Batch]) -> list[Batch]:
    """Ask Sinch to cancel each batch that is still ahead of its send time;
    every batch is marked `cancel_requested`. Returns those asked (a cancel
    Sinch refused or did not answer counts: the status read decides, and the
    tick asks again)."""
    now = timezone.now()
    client = sinch_client.get_sinch_client()
    asked = []
    for batch in batches:
        fields = {"cancel_requested": True}
        if batch.send_after is None or batch.send_after <= now:
            # Sent at once, or due: Sinch has processed it or is processing it.
            Batch.objects.filter(pk=batch.pk).update(**fields)
            continue
        if batch.cancel_requested_at is None:
            fields["cancel_requested_at"] = batch.cancel_requested_at = now
        # A user's cancel goes ahead of the rate limit when it is full.
        ratelimit.acquire(timeout_s=5)
        try:
            client.cancel_batch(batch.sinch_batch_id)
        except SinchError as exc:
            logger.warning("batch %s: cancel at Sinch failed: %s", batch.pk, exc)
            fields["last_error"] = f"Cancel at Sinch failed (asked again): {exc}"
        Batch.objects.filter(pk=batch.pk, status=BatchStatus.ACCEPTED).update(**fields)
        asked.append(batch)
    return asked


def confirm_cancels(batches: list[Batch], *, wait_s: float = 0) -> dict[int, str]:
    """Read the status of each batch until Sinch confirms the cancel, says it
    is too late, or `wait_s` has passed (0: one read); confirmed ones are
    settled. {batch id: remote status as last read}."""
    client = sinch_client.get_sinch_client()
    deadline = time.monotonic() + wait_s
    waiting = {b.pk: b for b in batches}
    statuses: dict[int, str] = {}
    while waiting:
        for pk, batch in list(waiting.items()):
            ratelimit.acquire(timeout_s=5)
            try:
                status = client.get_batch(batch.sinch_batch_id).status
            except SinchNotFoundError:
                status = "UNKNOWN"
            except SinchError as exc:
                logger.warning("batch %s: status read failed: %s", pk, exc)
                continue
            statuses[pk] = status
            Batch.objects.filter(pk=pk, status=BatchStatus.ACCEPTED).update(
                remote_status=status[:32], remote_checked_at=timezone.now()
            )
            if status == RB.CANCELLED:
                settle_cancelled([pk])
            if status != RB.SCHEDULED:
                del waiting[pk]
        if not waiting or time.monotonic() + CONFIRM_POLL_S > deadline:
            break
        time.sleep(CONFIRM_POLL_S)
    return statuses


def settle_cancelled(batch_ids: Iterable[int]) -> int:
    """Sinch says these batches are CANCELLED (a status read, a callback, a
    list read): the one place that settles them. Each ACCEPTED one becomes
    CANCELLED; its handed-over recipients CANCELLED, or, for a batch being
    replaced in a campaign still running, moved to its replacement
    (campaigns.dispatch.replacement). Safe to run twice. Returns how many
    batches were settled now."""
    settled = 0
    cancelled_campaigns = set()
    for batch in Batch.objects.filter(
        pk__in=list(batch_ids), status=BatchStatus.ACCEPTED
    ).select_related("campaign"):
        with transaction.atomic():
            moved = Batch.objects.filter(
                pk=batch.pk, status=BatchStatus.ACCEPTED
            ).update(status=BatchStatus.CANCELLED, remote_status=RB.CANCELLED)
            if not moved:
                continue  # settled meanwhile by another source
            settled += 1
            campaign = batch.campaign
            campaign.refresh_from_db(fields=["status"])
            if batch.replace_reason and campaign.status != Campaign.Status.CANCELLED:
                replacement.hand_over(batch)
                continue
            if batch.replace_reason:  # the whole campaign was cancelled since
                Batch.objects.filter(pk=batch.pk).update(replace_reason="")
            n = Recipient.in_batch(batch, Recipient.Status.SUBMITTED).update(
                status=Recipient.Status.CANCELLED
            )
            counters.moved(
                campaign.pk, Recipient.Status.SUBMITTED, Recipient.Status.CANCELLED, n
            )
            if campaign.status == Campaign.Status.CANCELLED:
                cancelled_campaigns.add(campaign.pk)
    for campaign in Campaign.objects.filter(pk__in=cancelled_campaigns):
        save_receipt(campaign)
    return settled


def unconfirmed_cancels(now=None):
    """Accepted batches whose cancel was asked of Sinch and not confirmed,
    still ahead of their send time (and not found too late already)."""
    now = now or timezone.now()
    return Batch.objects.filter(
        status=BatchStatus.ACCEPTED,
        cancel_requested_at__isnull=False,
        send_after__gt=now,
    ).exclude(remote_status__in=TOO_LATE)


def retry_unconfirmed_cancels(now=None) -> dict[str, int]:
    """The tick: read each unconfirmed cancel again and, where Sinch still has
    the batch scheduled (the cancel failed, was refused or not answered), ask
    again; until Sinch confirms or the send time passes. Batches whose send
    time passed unconfirmed are recorded as sent (`record_not_in_time`)."""
    now = now or timezone.now()
    batches = list(unconfirmed_cancels(now).order_by("send_after"))
    statuses = confirm_cancels(batches)
    again = [b for b in batches if statuses.get(b.pk, RB.SCHEDULED) == RB.SCHEDULED]
    request_cancels(again)
    late = record_not_in_time(now)
    return {
        "read": len(statuses),
        "confirmed": sum(s == RB.CANCELLED for s in statuses.values()),
        "asked_again": len(again),
        "not_in_time": late,
    }


def not_in_time(now=None):
    """Batches whose cancel Sinch never confirmed before their send time."""
    now = now or timezone.now()
    return Batch.objects.filter(
        status=BatchStatus.ACCEPTED, cancel_requested_at__isnull=False
    ).filter(Q(send_after__lte=now) | Q(remote_status__in=TOO_LATE))


def record_not_in_time(now=None) -> int:
    """Say so on each batch whose cancel was not confirmed in time (once), and
    on the recipients it was meant to drop; refresh cancelled campaigns'
    receipts. Returns how many batches were recorded now."""
    recorded = 0
    campaigns = set()
    for batch in not_in_time(now).exclude(last_error__startswith=NOT_IN_TIME):
        reason = f"{NOT_IN_TIME}."
        if batch.replace_reason:
            reason = f"{NOT_IN_TIME}, with {batch.replace_reason}."
            replacement.record_not_dropped(batch)
        Batch.objects.filter(pk=batch.pk).update(last_error=reason)
        logger.warning("batch %s: %s", batch.pk, reason)
        recorded += 1
        campaigns.add(batch.campaign_id)
    for campaign in Campaign.objects.filter(
        pk__in=campaigns, status=Campaign.Status.CANCELLED
    ):
        save_receipt(campaign)
    return recorded


def cancellation_receipt(campaign: Campaign) -> dict:
    """What a cancel prevented, what is requested and not yet confirmed, and
    what had already gone, from the batches. "Already gone" is only a batch
    whose send time has come (or that was sent at once)."""
    now = timezone.now()
    batches = Batch.objects.filter(campaign=campaign, is_test=False)

    def messages(queryset) -> int:
        return queryset.aggregate(n=Sum("size"))["n"] or 0

    never = batches.filter(status=BatchStatus.CANCELLED, sinch_batch_id="")
    # A replaced batch's people went into its replacement: not prevented.
    at_sinch = batches.filter(status=BatchStatus.CANCELLED, replace_reason="").exclude(
        sinch_batch_id=""
    )
    ahead = Q(status=BatchStatus.ACCEPTED, send_after__gt=now) & ~Q(
        remote_status__in=TOO_LATE
    )
    requested = batches.filter(ahead)
    gone = batches.filter(status=BatchStatus.ACCEPTED).exclude(ahead)
    unsure = batches.filter(
        status__in=(
            BatchStatus.SUBMITTING,
            BatchStatus.UNCERTAIN,
            BatchStatus.PENDING,
        )
    )
    failed = batches.filter(status=BatchStatus.FAILED)
    return {
        "at": now.isoformat(),
        "prevented": messages(never) + messages(at_sinch),
        "never_submitted": messages(never),
        "cancelled_at_sinch": messages(at_sinch),
        "batches_cancelled_at_sinch": at_sinch.count(),
        "cancel_requested": messages(requested),
        "batches_cancel_requested": requested.count(),
        "already_sent": messages(gone),
        "batches_already_sent": gone.count(),
        "batches_not_confirmed_in_time": gone.filter(
            cancel_requested_at__isnull=False
        ).count(),
        "unconfirmed": messages(unsure),
        "failed_before": messages(failed),
    }


def save_receipt(campaign: Campaign) -> dict:
    """Compute the cancellation receipt and store it on the campaign."""
    receipt = cancellation_receipt(campaign)
    Campaign.objects.filter(pk=campaign.pk).update(cancel_receipt=receipt)
    campaign.cancel_receipt = receipt
    return receipt
