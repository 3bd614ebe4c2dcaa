"""Delivery reconciliation: what the callbacks did not tell us.

The periodic task `campaigns.tasks.reconcile_deliveries` (every
RECONCILE_EVERY_MINUTES) runs four steps, each safe to run twice and on any
number of workers at once:

- **Silent batches** (`read_silent_batches`): an accepted batch not finished
  at Sinch (PROCESSED/CANCELLED/FAILED) about which no callback arrived for
  RECONCILE_SILENT_AFTER_S (since it was submitted, or became due) has its
  status read from Sinch: one request per campaign (its batches listed by
  their campaign metadata), a request per batch only for those the list did
  not name. Each request takes a slot of the project-wide rate limit. A batch
  is re-read at most once per RECONCILE_SILENT_AFTER_S. A batch Sinch reports
  CANCELLED is settled as a confirmed cancel is (its handed-over recipients
  CANCELLED).
- **Stalled receipts** (`flag_stalled_campaigns`): a campaign with batches
  Sinch has processed, with messages still waiting for a receipt (SUBMITTED or
  QUEUED_ON_CHANNEL, from the kept counts), and no receipt for
  RECEIPTS_STALLED_AFTER_S since its last receipt or its last processed batch,
  gets `Campaign.receipts_stalled`: the reason in words. It is not flagged
  while Sinch is still draining an earlier campaign (receipts for that one
  keep arriving): Sinch sends an app's messages one queue at a time. The flag
  clears once receipts arrive again or nothing waits any more.
  **ttl**: once the campaign's ttl plus RECEIPTS_TTL_MARGIN_S has passed since
  the last batch was processed, Sinch no longer tries those messages; the
  reason then says their outcome is unknown ("no receipt"). The recipients
  keep their last known status: a late receipt (Sinch retries callbacks) can
  still settle them, and no status is invented that Sinch never reported.
- **Counter drift** (`heal_counter_drift`): the kept counts of campaigns
  dispatching or waiting for receipts are compared with a full count, every
  run for campaigns under RECONCILE_RECOUNT_ALWAYS_BELOW recipients, and once
  per RECONCILE_RECOUNT_EVERY_S for larger ones (spread over the runs by
  campaign id). Both figures are read in one snapshot and the difference is
  added (never rebuilt), so moves committed meanwhile are neither lost nor
  counted twice.
- **Orphans** (`retry_orphans`): callbacks kept as ORPHAN in the last
  ORPHAN_RETRY_WINDOW that would now match (by the receipt processor's own
  rules: the batch by Sinch batch id or BATCH_KEY, the recipient by
  RECIPIENT_KEY) go back to NEW and the processor is woken: typically a batch
  status update or processing report that came before the dispatcher recorded
  the batch's Sinch id after an uncertain submission.
- **Expired webhook bodies** (`delete_expired_webhook_events`): processed
  callbacks older than WEBHOOK_EVENT_RETENTION_DAYS are deleted
  (campaigns.tracking.retention).
"""

import logging
from collections import Counter, defaultdict
from datetime import datetime, timedelta

from django.conf import settings
from django.db import connection, transaction
from django.db.models import Count, Max, Min, Q, Sum
from django.db.models.functions import Coalesce, Greatest
from django.utils import timezone

from campaigns import counters, notifications
from campaigns.dispatch import batch_request, cancellation, ratelimit
from campaigns.models import Batch, Campaign, CampaignCount, Recipient
from campaigns.models.states import (
    ACTIVE,
    REMOTE_DONE,
    REMOTE_PROCESSED,
    WAITING,
    RemoteBatchStatus,
    statuses_not_replaced_by,
)
from campaigns.tracking.completion import complete_finished_campaigns
from campaigns.tracking.orphans import retry_orphans
from campaigns.tracking.retention import delete_expired_webhook_events
from sinch import client as sinch_client
from sinch.errors import (
    SinchError,
    SinchNotFoundError,
    SinchProtocolError,
    SinchValidationError,
)

logger = logging.getLogger(__name__)

BatchStatus = Batch.Status
R = Recipient.Status
# Requests one run makes at most to read silent batches (the rest wait for
# the next run, oldest silence first).
MAX_READS_PER_RUN = 200
# Silent batches considered per run.
MAX_SILENT_BATCHES = 5000
# A list refused this way is not supported: each batch is read by its id.
_LIST_UNSUPPORTED = (SinchNotFoundError, SinchValidationError, SinchProtocolError)


def reconcile_deliveries(now: datetime | None = None) -> dict[str, object]:
    """The periodic task: every step, each failing on its own."""
    now = now or timezone.now()
    summary: dict[str, object] = {}
    for name, step in (
        ("silent", read_silent_batches),
        ("stalled", flag_stalled_campaigns),
        ("drift", heal_counter_drift),
        ("orphans", retry_orphans),
        ("completed", complete_finished_campaigns),
        ("expired webhook bodies", delete_expired_webhook_events),
    ):
        try:
            summary[name] = step(now=now)
        except Exception:
            logger.exception("reconciliation step %s failed", name)
            summary[name] = "failed"
    return summary


# --- silent batches ---------------------------------------------------------


def _last_heard():
    """When a batch was last heard of: its last callback, else when it was
    submitted, or when it became due if that is later."""
    submitted = Coalesce("submitted_at", "created_at")
    return Greatest(
        Coalesce("last_receipt_at", submitted),
        Coalesce("send_after", submitted),
    )


def silent_batches(now: datetime | None = None):
    """Accepted batches, not finished at Sinch, silent for RECONCILE_SILENT_AFTER_S
    and not read from Sinch within it (annotated with `heard`)."""
    now = now or timezone.now()
    cutoff = now - timedelta(seconds=settings.RECONCILE_SILENT_AFTER_S)
    return (
        Batch.objects.filter(status=BatchStatus.ACCEPTED)
        .exclude(remote_status__in=REMOTE_DONE)
        .exclude(sinch_batch_id="")
        .annotate(heard=_last_heard())
        .filter(heard__lt=cutoff)
        .filter(Q(remote_checked_at__isnull=True) | Q(remote_checked_at__lt=cutoff))
    )


def read_silent_batches(
    now: datetime | None = None, *, max_requests: int = MAX_READS_PER_RUN
) -> dict[str, int]:
    """Read the status of silent batches from Sinch (see the module docstring).

    Returns counts: `requests` made, batches `read`, `not_found` at Sinch,
    `skipped` (no request slot, a failed request, or the request budget).
    """
    now = now or timezone.now()
    rows = list(
        silent_batches(now)
        .order_by("heard", "pk")
        .values_list("pk", "campaign_id", "sinch_batch_id")[:MAX_SILENT_BATCHES]
    )
    by_campaign: dict[int, dict[str, int]] = defaultdict(dict)
    for pk, campaign_id, sinch_id in rows:
        by_campaign[campaign_id][sinch_id] = pk
    result = Counter(requests=0, read=0, not_found=0, skipped=0)
    if not rows:
        return dict(result)
    client = sinch_client.get_sinch_client()

    def slot() -> bool:
        if result["requests"] >= max_requests or not ratelimit.acquire(timeout_s=5):
            return False
        result["requests"] += 1
        return True

    for campaign_id, batches in by_campaign.items():
        if not slot():
            result["skipped"] += len(batches)
            continue
        statuses: dict[str, str] = {}
        try:
            found = client.batches_by_metadata(
                batch_request.CAMPAIGN_KEY, str(campaign_id)
            )
        except _LIST_UNSUPPORTED as exc:
            logger.info("campaign %s: batch list refused (%s)", campaign_id, exc)
        except SinchError as exc:
            logger.warning("campaign %s: status read failed: %s", campaign_id, exc)
            result["skipped"] += len(batches)
            continue
        else:
            statuses = {r.batch_id: r.status for r in found if r.batch_id in batches}
        gone: list[int] = []
        for sinch_id in [s for s in batches if s not in statuses]:
            if not slot():
                result["skipped"] += 1
                continue
            try:
                statuses[sinch_id] = client.get_batch(sinch_id).status
            except SinchNotFoundError:
                logger.warning(
                    "batch %s: Sinch does not know its id %s",
                    batches[sinch_id],
                    sinch_id,
                )
                gone.append(batches[sinch_id])
            except SinchError as exc:
                logger.warning(
                    "batch %s: status read failed: %s", batches[sinch_id], exc
                )
                result["skipped"] += 1
        result["read"] += _record_statuses(campaign_id, batches, statuses, now)
        if gone:
            Batch.objects.filter(pk__in=gone).update(remote_checked_at=now)
            result["not_found"] += len(gone)
    return dict(result)


def _record_statuses(
    campaign_id: int, batches: dict[str, int], statuses: dict[str, str], now
) -> int:
    """Store the statuses read, in the batch status precedence (a status
    already known that outranks the one read is kept)."""
    by_status: dict[str, list[int]] = defaultdict(list)
    for sinch_id, status in statuses.items():
        by_status[status].append(batches[sinch_id])
    read = 0
    with transaction.atomic():
        for status, ids in by_status.items():
            accepted = Batch.objects.filter(pk__in=ids, status=BatchStatus.ACCEPTED)
            accepted.update(remote_checked_at=now)
            read += accepted.exclude(
                remote_status__in=statuses_not_replaced_by(status)
            ).update(remote_status=status)
        cancelled = list(
            Batch.objects.filter(
                pk__in=by_status.get(RemoteBatchStatus.CANCELLED, ()),
                remote_status=RemoteBatchStatus.CANCELLED,
            ).values_list("pk", flat=True)
        )
        if cancelled:
            # Settled as every confirmed cancel is (receipt included).
            cancellation.settle_cancelled(cancelled)
    return read


# --- stalled receipts -------------------------------------------------------


def flag_stalled_campaigns(now: datetime | None = None) -> dict[str, int]:
    """Set or clear `Campaign.receipts_stalled` (see the module docstring)."""
    now = now or timezone.now()
    waiting: dict[int, int] = defaultdict(int)
    for campaign_id, n in CampaignCount.objects.filter(
        status__in=WAITING, count__gt=0
    ).values_list("campaign_id", "count"):
        waiting[campaign_id] += n
    flagged = set(
        Campaign.objects.exclude(receipts_stalled="").values_list("pk", flat=True)
    )
    ids = set(waiting) | flagged
    if not ids:
        return {"flagged": 0, "cleared": 0}
    processed = Q(remote_status__in=REMOTE_PROCESSED)
    became_due = Greatest(
        Coalesce("submitted_at", "created_at"),
        Coalesce("send_after", "submitted_at", "created_at"),
        Coalesce("last_receipt_at", "submitted_at", "created_at"),
    )
    facts = {
        row["campaign_id"]: row
        for row in Batch.objects.filter(
            campaign_id__in=set(waiting),
            is_test=False,
            status=BatchStatus.ACCEPTED,
        )
        .values("campaign_id")
        .annotate(
            accepted=Count("pk"),
            processed=Count("pk", filter=processed),
            processed_size=Sum("size", filter=processed),
            first_submitted=Min("submitted_at"),
            last_processed=Max(became_due, filter=processed),
        )
    }
    campaigns = {
        c.pk: c
        for c in Campaign.objects.filter(pk__in=ids).only(
            "pk", "name", "ttl_seconds", "last_receipt_at", "receipts_stalled"
        )
    }
    stall_after = timedelta(seconds=settings.RECEIPTS_STALLED_AFTER_S)
    # Campaigns whose receipts are flowing: Sinch is draining their messages.
    draining = {
        pk: facts[pk]["first_submitted"]
        for pk, c in campaigns.items()
        if pk in facts
        and c.last_receipt_at is not None
        and now - c.last_receipt_at < stall_after
    }
    result = {"flagged": 0, "cleared": 0}
    for pk, campaign in campaigns.items():
        reason = _stall_reason(
            campaign, waiting.get(pk, 0), facts.get(pk), draining, now, stall_after
        )
        if reason == campaign.receipts_stalled:
            continue
        # Conditional: a receipt recorded meanwhile wins over a stale verdict.
        changed = Campaign.objects.filter(
            pk=pk, last_receipt_at=campaign.last_receipt_at
        ).update(receipts_stalled=reason)
        if not changed:
            continue
        if reason:
            result["flagged"] += 1
            logger.warning("campaign %s (%s): %s", pk, campaign.name, reason)
            if not campaign.receipts_stalled:
                notifications.receipts_stalled(pk, reason)
        else:
            result["cleared"] += 1
            logger.info("campaign %s (%s): receipts arrive again", pk, campaign.name)
    return result


def _stall_reason(campaign, waiting, facts, draining, now, stall_after) -> str:
    if not waiting or not facts or not facts["processed"]:
        return ""
    last_processed = facts["last_processed"]
    since = max(filter(None, (campaign.last_receipt_at, last_processed)))
    silent = now - since
    if silent < stall_after:
        return ""
    # Sinch drains an app's messages in order: while an earlier campaign's
    # receipts keep coming, this one waits for its turn.
    if any(
        other != campaign.pk and first is not None and first < last_processed
        for other, first in draining.items()
    ):
        return ""
    if facts["processed"] < facts["accepted"]:
        # Batches Sinch has not processed yet expect no receipt: count the
        # waiting messages of processed batches only (rare: a full count).
        waiting = Recipient.objects.filter(
            campaign_id=campaign.pk,
            is_test=False,
            status__in=WAITING,
            batch__remote_status__in=REMOTE_PROCESSED,
        ).count()
        if not waiting:
            return ""
    noun = "message is" if waiting == 1 else "messages are"
    reason = (
        f"No delivery receipt for {_duration(silent)} while {waiting:,} {noun} "
        "still waiting for one"
    )
    ttl = campaign.ttl_seconds
    margin = timedelta(seconds=settings.RECEIPTS_TTL_MARGIN_S)
    if ttl and now - last_processed > timedelta(seconds=ttl) + margin:
        return (
            f"{reason}. Their ttl ({_duration(timedelta(seconds=ttl))}) has passed: "
            "Sinch no longer tries to deliver them, so their outcome is unknown "
            "(no receipt); check the webhook (operator health page)."
        )
    return f"{reason}; check the webhook (operator health page)."


def _duration(delta: timedelta) -> str:
    minutes = int(delta.total_seconds() // 60)
    if minutes < 120:
        return f"{minutes} minute{'s' if minutes != 1 else ''}"
    hours = minutes // 60
    if hours < 48:
        return f"{hours} hours"
    return f"{hours // 24} days"


# --- counter drift ----------------------------------------------------------


def heal_counter_drift(
    now: datetime | None = None, *, campaign_ids=None
) -> dict[int, dict[str, int]]:
    """Compare the kept counts with a full count where due; add the difference.

    `campaign_ids` checks exactly those campaigns (all of them due). Returns
    the drift found per campaign (actual minus kept, per status).
    """
    now = now or timezone.now()
    if campaign_ids is None:
        waiting = CampaignCount.objects.filter(status__in=WAITING, count__gt=0)
        ids = set(
            Campaign.objects.filter(status__in=ACTIVE).values_list("pk", flat=True)
        ) | set(waiting.values_list("campaign_id", flat=True))
        sizes = dict(
            CampaignCount.objects.filter(campaign_id__in=ids)
            .values("campaign_id")
            .annotate(n=Sum("count"))
            .values_list("campaign_id", "n")
        )
        small = settings.RECONCILE_RECOUNT_ALWAYS_BELOW
        ids = {pk for pk in ids if sizes.get(pk, 0) < small or _recount_due(pk, now)}
    else:
        ids = set(campaign_ids)
    healed: dict[int, dict[str, int]] = {}
    for pk in sorted(ids):
        drift = _snapshot_drift(pk)
        if drift:
            counters.add(pk, drift)
            healed[pk] = drift
            logger.warning(
                "campaign %s: kept counts drifted from the recipients by %s; healed",
                pk,
                drift,
            )
    return healed


def _recount_due(campaign_id: int, now: datetime) -> bool:
    """Once per RECONCILE_RECOUNT_EVERY_S, spread over the runs by campaign id."""
    run = max(1, settings.RECONCILE_EVERY_MINUTES) * 60
    runs = max(1, settings.RECONCILE_RECOUNT_EVERY_S // run)
    return (int(now.timestamp()) // run - campaign_id) % runs == 0


def _snapshot_drift(campaign_id: int) -> dict[str, int]:
    """Actual minus kept counts, both read in one snapshot of the database."""
    outermost = not connection.in_atomic_block
    with transaction.atomic():
        if outermost and connection.vendor == "postgresql":
            with connection.cursor() as cursor:
                cursor.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ")
        drift = Counter(counters.actual(campaign_id))
        drift.subtract(counters.counts(campaign_id))
    return {status: n for status, n in drift.items() if n}
