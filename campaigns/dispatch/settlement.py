"""Settling batches whose outcome is not known: ask Sinch before resending.

A batch claimed longer ago than DISPATCH_CLAIM_LEASE_S whose worker never
recorded an outcome (killed between the call and the commit) becomes
UNCERTAIN, like one whose call timed out or met a 5xx. An UNCERTAIN batch is
looked up at Sinch by its batch_metadata: found -> ACCEPTED; not found for
longer than DISPATCH_UNCERTAIN_GRACE_S -> PENDING, to be submitted again
(CANCELLED if its campaign was cancelled). Run at the start of every drain
loop and by the periodic tick.
"""

import logging
from datetime import timedelta

from django.conf import settings
from django.utils import timezone

from campaigns.dispatch import batch_request, outcomes, ratelimit
from campaigns.models import Batch, Recipient
from sinch import client as sinch_client
from sinch.errors import SinchError

logger = logging.getLogger(__name__)

BatchStatus = Batch.Status


def settle_uncertain_batches(campaign_id: int | None = None) -> dict[str, int]:
    """Settle batches whose outcome is not known (see the module docstring);
    counts of what was found. Safe to run twice, and by several workers."""
    now = timezone.now()
    batches = Batch.objects.all()
    if campaign_id is not None:
        batches = batches.filter(campaign_id=campaign_id)
    lease = now - timedelta(seconds=settings.DISPATCH_CLAIM_LEASE_S)
    stale = batches.filter(status=BatchStatus.SUBMITTING, claimed_at__lt=lease)
    counts = {"stale": 0, "found": 0, "resubmit": 0, "waiting": 0}
    counts["stale"] = stale.update(
        status=BatchStatus.UNCERTAIN,
        uncertain_since=now,
        last_error="Outcome uncertain: its worker stopped before recording it",
    )
    grace = timedelta(seconds=settings.DISPATCH_UNCERTAIN_GRACE_S)
    for batch in batches.filter(status=BatchStatus.UNCERTAIN).order_by("pk"):
        if batch.uncertain_since is None:  # set by hand, or by older code
            Batch.objects.filter(pk=batch.pk).update(uncertain_since=now)
            batch.uncertain_since = now
        if not ratelimit.acquire(timeout_s=5):
            counts["waiting"] += 1
            continue
        try:
            found = sinch_client.get_sinch_client().batches_by_metadata(
                batch_request.BATCH_KEY, batch.metadata_key
            )
        except SinchError as exc:
            logger.warning("batch %s: lookup at Sinch failed: %s", batch.pk, exc)
            counts["waiting"] += 1
            continue
        if found:
            remote = found[0]
            # Recipients excluded at the consent re-check left the batch.
            size = Recipient.objects.filter(batch_id=batch.pk).count()
            outcomes.accepted(
                batch,
                batch.claimed_at,
                remote.batch_id,
                remote.send_after,
                size=size,
                remote_status=remote.status,
            )
            counts["found"] += 1
        elif now - batch.uncertain_since >= grace:
            released = outcomes.record(
                batch,
                batch.claimed_at,
                status=BatchStatus.PENDING,
                uncertain_since=None,
                not_before=None,
                last_error="Sinch did not have it after the grace period: "
                "submitted again",
            )
            if released and not outcomes.cancel_if_campaign_cancelled(batch):
                counts["resubmit"] += 1
        else:
            counts["waiting"] += 1
    return counts
