"""Pause, resume and cancel a launched campaign, and the cancellation receipt.

- **Pause** stops submitting further batches (a batch in flight finishes);
  batches already scheduled at Sinch stay scheduled there. **Resume**
  continues with the next batch not yet submitted.
- **Cancel**: batches not yet submitted are never sent (CANCELLED here);
  batches scheduled at Sinch are cancelled with the API and the cancellation
  is confirmed by a status read; batches Sinch has already processed cannot be
  cancelled and are reported so; a batch whose submission is in flight is
  cancelled at Sinch as soon as its outcome is known (campaigns.dispatch).
- The **receipt** (`cancellation_receipt`) counts the messages prevented and
  those already gone, from the batches' states; it is stored on the campaign.

Every action goes into the audit trail. A None user means the system acted
(e.g. the automatic pause), named in the audit row.
"""

import logging

from django.db import transaction
from django.db.models import Sum
from django.utils import timezone

from campaigns import counters
from campaigns.dispatch import drain, ratelimit
from campaigns.models import Batch, Campaign, Recipient
from contacts.audit import record_audit
from contacts.models import AuditEvent
from sinch import client as sinch_client
from sinch.errors import SinchError, SinchNotFoundError

logger = logging.getLogger(__name__)

Status = Campaign.Status
BatchStatus = Batch.Status
PAUSABLE = (Status.SCHEDULED, Status.SUBMITTING)
CANCELLABLE = (
    Status.LAUNCHING,
    Status.SCHEDULED,
    Status.SUBMITTING,
    Status.PAUSED,
    Status.SUBMITTED,
)
SYSTEM = "system (automatic)"


class ControlError(ValueError):
    """The action does not apply to the campaign in its current state."""


def _audit(campaign: Campaign, user, action: str, summary: str, **details) -> None:
    record_audit(
        actor=user,
        label=None if user else SYSTEM,
        action=action,
        target_type="campaign",
        target_id=campaign.pk,
        summary=summary,
        details=details,
    )


def pause(campaign: Campaign, user, *, reason: str = "") -> bool:
    """Stop submitting further batches. False if it was not dispatching."""
    reason = reason or f"Paused by {user}."
    with transaction.atomic():
        paused = Campaign.objects.filter(pk=campaign.pk, status__in=PAUSABLE).update(
            status=Status.PAUSED, status_reason=reason
        )
        if not paused:
            return False
        _audit(campaign, user, AuditEvent.Action.PAUSE, f"{campaign}: {reason}")
    campaign.refresh_from_db()
    return True


def resume(campaign: Campaign, user) -> None:
    """Continue a paused campaign with its next batch not yet submitted."""
    with transaction.atomic():
        next_status = Status.SCHEDULED if campaign.send_at else Status.SUBMITTING
        resumed = Campaign.objects.filter(pk=campaign.pk, status=Status.PAUSED).update(
            status=next_status, status_reason=""
        )
        if not resumed:
            raise ControlError("Only a paused campaign can be resumed.")
        _audit(campaign, user, AuditEvent.Action.RESUME, f"Resumed {campaign}")
        drain.start(campaign.pk)
    campaign.refresh_from_db()


def cancel(campaign: Campaign, user) -> dict:
    """Cancel everything of the campaign that has not gone yet; the receipt."""
    with transaction.atomic():
        cancelled = Campaign.objects.filter(
            pk=campaign.pk, status__in=CANCELLABLE
        ).update(status=Status.CANCELLED, status_reason=f"Cancelled by {user}.")
        if not cancelled:
            raise ControlError(
                f"A {campaign.get_status_display().lower()} campaign cannot be "
                "cancelled."
            )
    campaign.refresh_from_db()
    cancel_unsubmitted(campaign)
    for batch in Batch.objects.filter(
        campaign=campaign, is_test=False, status=BatchStatus.ACCEPTED
    ).order_by("sequence"):
        cancel_accepted(batch)
    receipt = store_receipt(campaign)
    _audit(
        campaign,
        user,
        AuditEvent.Action.CANCEL,
        f"Cancelled {campaign}: {receipt['prevented']:,} messages prevented, "
        f"{receipt['already_sent']:,} already gone",
        **receipt,
    )
    return receipt


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
        return batch.remote_status or "PROCESSED"
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
        if remote_status == "CANCELLED":
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


def store_receipt(campaign: Campaign) -> dict:
    receipt = cancellation_receipt(campaign)
    Campaign.objects.filter(pk=campaign.pk).update(cancel_receipt=receipt)
    campaign.cancel_receipt = receipt
    return receipt
