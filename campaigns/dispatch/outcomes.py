"""Recording what became of a submitted batch, exactly once per claim.

Each outcome is written with a compare-and-set on the claim (`record`): a
worker whose claim was taken over (its lease ran out and the batch was
settled meanwhile) changes nothing. The outcomes:

- **accepted**: Sinch's batch id and effective send_after stored, recipients
  SUBMITTED; cancelled at Sinch at once when the campaign was cancelled
  while the batch was in flight;
- **failed**: refused as invalid (FAILED with Sinch's message);
- **retry later**: back to PENDING, not before a delay (429's Retry-After, or
  an exponential backoff when Sinch was not reached); CANCELLED instead when
  the campaign was cancelled meanwhile;
- **uncertain**: timeout, lost connection, 5xx: Sinch may have it
  (campaigns.dispatch.settlement finds out before any resubmission);
- **waiting for Sinch**: Sinch could not be reached at all (connection
  refused, its auth server down): back to PENDING, no attempt used
  (campaigns.dispatch.sinch_outage).

`auto_pause_if_failing` pauses a campaign when too many of its recent
submissions failed, unless Sinch is unreachable (an outage is waited out).
"""

import logging
from datetime import timedelta

from django.conf import settings
from django.db import transaction
from django.db.models import F, Q
from django.utils import timezone

from campaigns import counters, transitions
from campaigns.dispatch import cancellation, sinch_outage, statements
from campaigns.models import Batch, Campaign, Recipient
from campaigns.models.states import RemoteBatchStatus
from contacts.models import AuditEvent
from sinch import models as sinch_models

logger = logging.getLogger(__name__)

Status = Campaign.Status
BatchStatus = Batch.Status
R = Recipient.Status
BACKOFF_MAX_S = 300
ERROR_WINDOW = timedelta(minutes=10)
# Sinch's clock and ours may differ by this much: a batch whose send_after (as
# Sinch stored it) is no further ahead is being sent now, not scheduled.
CLOCK_SKEW = timedelta(seconds=30)


def record(batch: Batch, claim, **fields) -> bool:
    """Write the outcome of the claim `claim`; False if the batch moved on."""
    size = fields.pop("size", None)
    if size is not None:
        fields["size"] = size
    if not any(hasattr(value, "resolve_expression") for value in fields.values()):
        return statements.settle_claim(batch.pk, claim, fields)
    return bool(
        Batch.objects.filter(
            pk=batch.pk,
            claimed_at=claim,
            status__in=(BatchStatus.SUBMITTING, BatchStatus.UNCERTAIN),
        ).update(**fields)
    )


def accepted(
    batch, claim, sinch_batch_id, send_after, *, size=None, remote_status=None
) -> str:
    """Record Sinch's acceptance (`remote_status`: as a status read found it)."""
    now = timezone.now()
    scheduled = send_after is not None and send_after > now + CLOCK_SKEW
    remote = RemoteBatchStatus.SCHEDULED if scheduled else ""
    with transaction.atomic():
        fields = dict(
            status=BatchStatus.ACCEPTED,
            sinch_batch_id=sinch_batch_id,
            send_after=send_after,
            submitted_at=now,
            remote_status=remote if remote_status is None else remote_status,
            uncertain_since=None,
            last_error="",
        )
        if remote_status is not None:
            fields["remote_checked_at"] = now
        if size is not None:
            fields["size"] = size
        if not record(batch, claim, **fields):
            return "moved on"
        n = statements.move_recipients(batch, R.PENDING, R.SUBMITTED, updated_at=now)
        counters.moved(batch.campaign_id, R.PENDING, R.SUBMITTED, n)
    # Cancelled while in flight: cancel it at Sinch too, if it is still waiting.
    if statements.campaign_status(batch.campaign_id) == Status.CANCELLED:
        cancellation.cancel_accepted(Batch.objects.get(pk=batch.pk))
        cancellation.save_receipt(batch.campaign)
    return BatchStatus.ACCEPTED


def fail(batch: Batch, claim, error: str, *, code: str = "") -> str:
    """FAILED with the reason; its recipients FAILED too (with `code` as
    their failure code when the reason has one: campaigns.tracking.failures)."""
    with transaction.atomic():
        if record(batch, claim, status=BatchStatus.FAILED, last_error=error):
            n = Recipient.in_batch(batch, R.PENDING).update(
                status=R.FAILED, reason=error[:255], failure_code=code
            )
            counters.moved(batch.campaign_id, R.PENDING, R.FAILED, n)
    logger.warning("batch %s failed: %s", batch.pk, error)
    return BatchStatus.FAILED


def retry_later(
    batch: Batch, claim, delay_s: float, error: str, *, attempt: bool = True
) -> str:
    """Back to PENDING, not before `delay_s`; `attempt=False` when Sinch surely
    did not act on it (429, no request slot): the claim is not counted."""
    undo = {} if attempt else {"attempts": F("attempts") - 1}
    record(
        batch,
        claim,
        status=BatchStatus.PENDING,
        not_before=timezone.now() + timedelta(seconds=delay_s),
        last_error=error,
        **undo,
    )
    cancel_if_campaign_cancelled(batch)
    return BatchStatus.PENDING


def wait_for_sinch(batch: Batch, claim, error) -> str:
    """Sinch could not be reached (campaigns.dispatch.sinch_outage): noted for
    everybody, and the batch back to PENDING after a wait that grows with the
    outage, without using up an attempt."""
    down_since = sinch_models.note_outage(error) or timezone.now()
    logger.warning("batch %s waits for Sinch: %s", batch.pk, error)
    return retry_later(
        batch,
        claim,
        sinch_outage.wait_s(down_since),
        f"{sinch_outage.reason(down_since)}: {error}",
        attempt=False,
    )


def cancel_if_campaign_cancelled(batch: Batch) -> bool:
    """A batch back to PENDING in a cancelled campaign is never sent."""
    if not Campaign.objects.filter(
        pk=batch.campaign_id, status=Status.CANCELLED
    ).exists():
        return False
    with transaction.atomic():
        cancelled = Batch.objects.filter(
            pk=batch.pk, status=BatchStatus.PENDING
        ).update(status=BatchStatus.CANCELLED)
        if cancelled:
            n = Recipient.in_batch(batch, R.PENDING).update(status=R.CANCELLED)
            counters.moved(batch.campaign_id, R.PENDING, R.CANCELLED, n)
    if cancelled:
        cancellation.save_receipt(Campaign.objects.get(pk=batch.campaign_id))
    return bool(cancelled)


def uncertain(batch: Batch, claim, error: str) -> str:
    """Sinch may or may not have the batch: settled by a look-up later."""
    record(
        batch,
        claim,
        status=BatchStatus.UNCERTAIN,
        uncertain_since=timezone.now(),
        last_error=f"Outcome uncertain: {error}",  # settlement.UNCERTAIN_PREFIX
    )
    logger.warning("batch %s: outcome uncertain: %s", batch.pk, error)
    return BatchStatus.UNCERTAIN


def backoff(attempts: int) -> float:
    """Seconds to wait before the next attempt after `attempts` claims."""
    return min(BACKOFF_MAX_S, 2.0 ** max(0, attempts))


def auto_pause_if_failing(campaign_id: int) -> bool:
    """Pause the campaign when too many of its recent submissions failed.

    Only submissions since the campaign's last resume count: a resumed
    campaign is not paused again for the failures that paused it.
    """
    since = timezone.now() - ERROR_WINDOW
    resumed = (
        AuditEvent.objects.filter(
            action=AuditEvent.Action.RESUME,
            target_type="campaign",
            target_id=str(campaign_id),
        )
        .order_by("-at")
        .values_list("at", flat=True)
        .first()
    )
    if resumed is not None and resumed > since:
        since = resumed
    if sinch_outage.current() is not None:
        return False  # an outage is waited out, not a reason to stop
    recent = Batch.objects.filter(
        campaign_id=campaign_id, is_test=False, claimed_at__gte=since
    ).exclude(status=BatchStatus.SUBMITTING)
    total = recent.count()
    if total < settings.DISPATCH_PAUSE_MIN_BATCHES:
        return False
    failed = recent.filter(
        Q(status__in=(BatchStatus.FAILED, BatchStatus.UNCERTAIN))
        | Q(status=BatchStatus.PENDING, attempts__gt=0)
    )
    errors = failed.count()
    if errors / total < settings.DISPATCH_PAUSE_ERROR_RATE:
        return False
    last = failed.exclude(last_error="").order_by("-claimed_at").first()
    return transitions.pause(
        Campaign.objects.get(pk=campaign_id),
        None,
        f"Paused automatically: {errors} of the last {total} batch "
        f"submissions failed (threshold "
        f"{settings.DISPATCH_PAUSE_ERROR_RATE:.0%}). Last error: "
        f"{last.last_error if last else 'unknown'}",
    )
