"""Settling batches whose outcome is not known: ask Sinch before resending.

A batch claimed longer ago than DISPATCH_CLAIM_LEASE_S whose worker never
recorded an outcome (killed between the call and the commit) becomes
UNCERTAIN, like one whose call timed out or met a 5xx. An UNCERTAIN batch is
looked up at Sinch:

- by its batch_metadata (the by-metadata list, in any of its shapes);
- when that finds nothing or cannot be read, by Sinch's batch id if a
  callback has told it (a batch status update carrying the batch's metadata
  key, or a receipt for one of its recipients:
  campaigns.tracking.batch_statuses, campaigns.tracking.deliveries).

Found -> ACCEPTED. Not found, by a list read that worked, with no Sinch id
known, for longer than DISPATCH_UNCERTAIN_GRACE_S -> PENDING, to be submitted
again (CANCELLED if its campaign was cancelled): the only case where a resend
is safe. The attempt it used is given back unless its worker died (a lost
answer is an outage, campaigns.dispatch.sinch_outage). A batch Sinch is
known to have (its id came in a callback) is never resent. Anything else
waits, and a batch still uncertain after
DISPATCH_UNCERTAIN_ALERT_S says so, with what the operator can do, in its
last error (shown on the campaign page and the health page). Run at the
start of every drain loop and by the periodic tick.
"""

import logging
from datetime import datetime, timedelta

from django.conf import settings
from django.db.models import F
from django.utils import timezone

from campaigns.dispatch import batch_request, outcomes, ratelimit
from campaigns.models import Batch, Recipient
from campaigns.models.states import may_replace
from sinch import client as sinch_client
from sinch import models as sinch_models
from sinch.errors import SinchError, SinchNotFoundError
from sinch.payloads import BatchStatus as RemoteBatch

logger = logging.getLogger(__name__)

BatchStatus = Batch.Status
FOUND, ABSENT, UNREADABLE, LOST_ID = "found", "absent", "unreadable", "lost id"
UNCERTAIN_PREFIX = "Outcome uncertain: "
# The cause of a batch whose claim ran out with no outcome recorded.
WORKER_STOPPED = "its worker stopped before recording it"


def worker_died(error: str) -> bool:
    """Whether a batch's last error says its worker stopped (or nothing was
    recorded at all): the one failure that uses up its attempts."""
    return not error or WORKER_STOPPED in error


def settle_uncertain_batches(campaign_id: int | None = None) -> dict[str, int]:
    """Settle batches whose outcome is not known (see the module docstring);
    counts of what was found. Safe to run twice, and by several workers."""
    now = timezone.now()
    batches = Batch.objects.all()
    if campaign_id is not None:
        batches = batches.filter(campaign_id=campaign_id)
    lease = now - timedelta(seconds=settings.DISPATCH_CLAIM_LEASE_S)
    stale = batches.filter(status=BatchStatus.SUBMITTING, claimed_at__lt=lease)
    counts = {"stale": 0, "found": 0, "resubmit": 0, "waiting": 0, "alerted": 0}
    counts["stale"] = stale.update(
        status=BatchStatus.UNCERTAIN,
        uncertain_since=now,
        last_error=f"{UNCERTAIN_PREFIX}{WORKER_STOPPED}",
    )
    grace = timedelta(seconds=settings.DISPATCH_UNCERTAIN_GRACE_S)
    for batch in batches.filter(status=BatchStatus.UNCERTAIN).order_by("pk"):
        if batch.uncertain_since is None:  # set by hand, or by older code
            Batch.objects.filter(pk=batch.pk).update(uncertain_since=now)
            batch.uncertain_since = now
        if not ratelimit.acquire(timeout_s=5):
            counts["waiting"] += 1
            continue
        remote, verdict = look_up(batch)
        if remote is not None:
            _accept(batch, remote)
            counts["found"] += 1
        elif verdict == ABSENT and now - batch.uncertain_since >= grace:
            cause = batch.last_error.removeprefix(UNCERTAIN_PREFIX)
            # Only a worker that died uses up an attempt: an answer lost to a
            # timeout or a 5xx (an outage) gives it back.
            undo = {} if worker_died(cause) else {"attempts": F("attempts") - 1}
            released = outcomes.record(
                batch,
                batch.claimed_at,
                status=BatchStatus.PENDING,
                uncertain_since=None,
                not_before=None,
                last_error="Sinch did not have it after the grace period "
                f"({cause or 'outcome unknown'}): submitted again",
                **undo,
            )
            if released and not outcomes.cancel_if_campaign_cancelled(batch):
                counts["resubmit"] += 1
        else:
            counts["waiting"] += 1
            counts["alerted"] += _alert_if_overdue(batch, verdict, now)
    return counts


def look_up(batch: Batch) -> tuple[RemoteBatch | None, str]:
    """The batch as Sinch has it, or None with the verdict: ABSENT (the list
    was read and does not name it, and no Sinch id is known), UNREADABLE (the
    list could not be read, nor the batch by id), LOST_ID (a callback named
    its Sinch id, which Sinch does not know now)."""
    client = sinch_client.get_sinch_client()
    listed = True
    try:
        found = client.batches_by_metadata(batch_request.BATCH_KEY, batch.metadata_key)
    except SinchError as exc:
        logger.warning("batch %s: lookup by metadata failed: %s", batch.pk, exc)
        listed, found = False, []
    else:
        sinch_models.note_reachable()  # Sinch answers: an outage is over
    for remote in found:
        key = remote.metadata.get(batch_request.BATCH_KEY)
        # The single-object shape may name another batch: only ours counts.
        if key in (None, "", batch.metadata_key):
            return remote, FOUND
    if not batch.sinch_batch_id:
        return None, ABSENT if listed else UNREADABLE
    if listed and not ratelimit.acquire(timeout_s=5):
        return None, UNREADABLE
    try:
        return client.get_batch(batch.sinch_batch_id), FOUND
    except SinchNotFoundError:
        logger.warning(
            "batch %s: Sinch does not know the id %s a callback gave",
            batch.pk,
            batch.sinch_batch_id,
        )
        return None, LOST_ID
    except SinchError as exc:
        logger.warning("batch %s: read by id failed: %s", batch.pk, exc)
        return None, UNREADABLE


def _accept(batch: Batch, remote: RemoteBatch) -> None:
    # Recipients excluded at the consent re-check left the batch.
    size = Recipient.objects.filter(batch_id=batch.pk).count()
    # A callback may have told a later status than this read: keep it.
    status = (
        remote.status
        if may_replace(batch.remote_status, remote.status)
        else batch.remote_status
    )
    outcomes.accepted(
        batch,
        batch.claimed_at,
        remote.batch_id,
        remote.send_after,
        size=size,
        remote_status=status,
    )


def overdue_text(verdict: str, since: datetime, now: datetime) -> str:
    """What an operator reads about a batch uncertain for too long."""
    minutes = int((now - since).total_seconds() // 60)
    why = {
        UNREADABLE: "Sinch could not be asked (see the health page for the "
        "API's state)",
        LOST_ID: "a callback named it, but Sinch no longer knows that batch id",
        ABSENT: "Sinch does not list it yet",
    }.get(verdict, verdict)
    return (
        f"Outcome still uncertain after {minutes} minutes: {why}. It is never "
        "sent again unless Sinch is asked and does not have it. You can look "
        "its metadata key up in Sinch's dashboard, fix the connection to Sinch "
        "(credentials, region), or cancel the campaign to give it up."
    )


def _alert_if_overdue(batch: Batch, verdict: str, now: datetime) -> int:
    alert = timedelta(seconds=settings.DISPATCH_UNCERTAIN_ALERT_S)
    if now - batch.uncertain_since < alert:
        return 0
    text = overdue_text(verdict, batch.uncertain_since, now)
    Batch.objects.filter(pk=batch.pk, status=BatchStatus.UNCERTAIN).update(
        last_error=text
    )
    if not batch.last_error.startswith("Outcome still uncertain"):
        logger.error("batch %s: %s", batch.pk, text)
    return 1
