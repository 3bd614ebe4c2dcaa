"""Submitting a launched campaign's batches to Sinch: exactly once each.

Drain loops (`run_dispatcher`, django-q2 tasks, DISPATCH_CONCURRENCY per
campaign, on any number of machines) repeat: claim the next due batch, submit
it, record the outcome. The rules that keep a recipient from getting the
campaign twice, or without consent:

- **Claim**: one conditional UPDATE (PENDING -> SUBMITTING); the worker whose
  update changed the row owns the batch. The claim, committed before the HTTP
  call, is the intent; `attempts` counts every claim.
- **Consent, again**: just before the call, recipients whose identity is no
  longer opted in for the purpose on the channel (or was erased) are excluded.
- **Outcome**: accepted (Sinch's batch id and effective send_after stored,
  recipients SUBMITTED); refused as invalid (FAILED with Sinch's message); 429
  (back to PENDING after Retry-After, which the client sleeps through itself
  when short; not counted as an attempt); never reached Sinch (PENDING, with
  exponential backoff); **uncertain** (timeout, lost connection, 5xx: UNCERTAIN).
  A batch whose campaign was cancelled meanwhile is CANCELLED instead of going
  back to PENDING.
- **Reconcile** (`reconcile`, run by the tick and at each loop start): a batch
  claimed longer ago than DISPATCH_CLAIM_LEASE_S whose worker never recorded an
  outcome (killed) becomes UNCERTAIN. An UNCERTAIN batch is looked up at Sinch
  by its batch_metadata: found -> ACCEPTED; not found for longer than
  DISPATCH_UNCERTAIN_GRACE_S -> PENDING, submitted again (CANCELLED if its
  campaign was cancelled). A batch is submitted at most DISPATCH_MAX_ATTEMPTS
  times: the claim after that fails it.
- **Limits**: a request slot from campaigns.ratelimit before each call; no new
  batch while the messages handed to Sinch and not yet processed would exceed
  SINCH_MAX_IN_FLIGHT_MESSAGES (the oldest are re-read from Sinch meanwhile).
- **Auto-pause**: when DISPATCH_PAUSE_ERROR_RATE of the campaign's recent
  submissions (since its last resume) failed, the campaign pauses itself with
  the reason.
- **Scheduling**: a send time within Sinch's horizon is sent as send_after;
  further out, batches are held here (`not_before`) and a one-off django-q2
  schedule, backed by the periodic `tick`, releases them. A send time that
  passed while no worker ran is sent at once, when one runs.
"""

import json
import logging
import time
import uuid
from datetime import datetime, timedelta

from django.conf import settings
from django.db import connection, transaction
from django.db.models import F, Q, Sum
from django.utils import timezone
from django_q.models import Schedule
from django_q.tasks import async_task

from campaigns import counters
from campaigns.authoring.rendering import MessagePlan
from campaigns.dispatch import batch_request, ratelimit
from campaigns.models import Batch, Campaign, Recipient
from contacts.models import AuditEvent, ChannelIdentity, ConsentState, Contact
from sinch import client as sinch_client
from sinch import wire
from sinch.errors import (
    SinchError,
    SinchRateLimitedError,
    SinchTransportError,
    SinchUncertainOutcomeError,
)

logger = logging.getLogger(__name__)

Status = Campaign.Status
BatchStatus = Batch.Status
R = Recipient.Status
# Campaign states in which due batches are submitted: also while the launch
# is still freezing recipients (its sealed batches go out meanwhile).
DISPATCHING = (Status.SCHEDULED, Status.SUBMITTING)
CLAIMABLE = (*DISPATCHING, Status.LAUNCHING)
# How often an idle drain loop looks for batches the freeze has just sealed.
FREEZE_POLL_S = 0.2
# Remote states after which a batch no longer occupies Sinch's queue.
REMOTE_DONE = frozenset({"PROCESSED", "CANCELLED", "FAILED"})
# A drain loop hands over to a fresh task after this long (task timeouts).
LOOP_SECONDS = 300
# Waits while the in-flight cap is reached, and between status re-reads.
CAP_WAIT_S = 0.5
CAP_REFRESH_BATCHES = 20
# A batch's status is re-read from Sinch at most this often.
REMOTE_REREAD_S = 2.0
BACKOFF_MAX_S = 300
ERROR_WINDOW = timedelta(minutes=10)
# Sinch's clock and ours may differ by this much: a batch whose send_after (as
# Sinch stored it) is no further ahead is being sent now, not scheduled.
CLOCK_SKEW = timedelta(seconds=30)


# --- starting ---------------------------------------------------------------


def start(campaign_id: int, loops: int | None = None) -> None:
    """Queue the campaign's drain loops (after the current transaction)."""
    count = loops or settings.DISPATCH_CONCURRENCY
    for n in range(count):
        transaction.on_commit(
            lambda n=n: async_task(
                "campaigns.tasks.dispatch_campaign",
                campaign_id,
                task_name=f"dispatch-{campaign_id}-{uuid.uuid4().hex[:8]}-{n}",
            )
        )


def schedule_release(campaign_id: int, when: datetime) -> None:
    """A one-off schedule that starts the drain loops when batches come due.

    The periodic tick does the same, should this schedule be lost or fire
    while no cluster runs; the task itself finds nothing to do after a cancel.
    """
    Schedule.objects.create(
        name=f"release campaign {campaign_id} at {when:%Y-%m-%d %H:%M}",
        func="campaigns.tasks.dispatch_campaign",
        args=str(campaign_id),
        schedule_type=Schedule.ONCE,
        repeats=1,
        next_run=when,
    )


# --- the drain loop ---------------------------------------------------------


def run_dispatcher(campaign_id: int, *, seconds: float = LOOP_SECONDS) -> str:
    """Submit the campaign's due batches until none is left, it stops, or time
    is up (then another loop is queued)."""
    deadline = time.monotonic() + seconds
    reconcile(campaign_id=campaign_id)
    context = None
    submitted = 0
    idle_until = time.monotonic() + settings.DISPATCH_FREEZE_WAIT_S
    while True:
        status = (
            Campaign.objects.filter(pk=campaign_id)
            .values_list("status", flat=True)
            .first()
        )
        if status not in CLAIMABLE:
            return f"campaign {campaign_id}: {status}, {submitted} batches submitted"
        if time.monotonic() > deadline:
            start(campaign_id, loops=1)
            return f"campaign {campaign_id}: handed over after {submitted} batches"
        if not _room_in_flight():
            time.sleep(CAP_WAIT_S)
            continue
        batch = claim_next(campaign_id)
        if batch is None and status == Status.LAUNCHING:
            # The freeze seals more batches soon; it starts loops again at
            # its end, so an idle loop may stop.
            if time.monotonic() < idle_until:
                time.sleep(FREEZE_POLL_S)
                continue
            return f"campaign {campaign_id}: {submitted} batches submitted so far"
        if batch is None:
            finish_if_done(campaign_id)
            return f"campaign {campaign_id}: {submitted} batches submitted"
        idle_until = time.monotonic() + settings.DISPATCH_FREEZE_WAIT_S
        if context is None:
            context = _Context(batch.campaign)
        outcome = submit(batch, context)
        submitted += 1
        if outcome not in (BatchStatus.ACCEPTED, BatchStatus.CANCELLED):
            auto_pause_if_failing(campaign_id)


def claim_next(campaign_id: int) -> Batch | None:
    """Claim the next due batch of the campaign, or None if none is due."""
    now = timezone.now()
    candidates = list(
        Batch.objects.filter(
            campaign_id=campaign_id, is_test=False, status=BatchStatus.PENDING
        )
        .filter(Q(not_before__isnull=True) | Q(not_before__lte=now))
        .order_by("sequence")
        .values_list("pk", flat=True)[:5]
    )
    for pk in candidates:
        won = Batch.objects.filter(pk=pk, status=BatchStatus.PENDING).update(
            status=BatchStatus.SUBMITTING,
            claimed_at=now,
            attempts=F("attempts") + 1,
            last_error="",
        )
        if won:
            return Batch.objects.select_related("campaign").get(pk=pk)
    return None


class _Context:
    """What every batch of one campaign shares: computed once per loop."""

    def __init__(self, campaign: Campaign) -> None:
        self.campaign = campaign
        self.message = batch_request.app_message(
            MessagePlan.for_campaign(campaign).message
        )
        self.consent_column = f"{campaign.purpose.lower()}_consent"


def submit(batch: Batch, context: _Context) -> str:
    """Submit one claimed batch and record the outcome; returns the new status."""
    campaign = context.campaign
    claim = batch.claimed_at
    if batch.attempts > settings.DISPATCH_MAX_ATTEMPTS:
        return _fail(
            batch,
            claim,
            f"Given up after {batch.attempts - 1} attempts "
            "(its worker kept dying, or Sinch's answer kept being lost).",
        )
    if not ratelimit.acquire(timeout_s=min(60, settings.DISPATCH_CLAIM_LEASE_S / 4)):
        return _retry_later(
            batch, claim, 1, "no request slot free: retried", attempt=False
        )
    entries = _recheck_consent_and_read(batch, context)
    if not entries:
        _record(batch, claim, status=BatchStatus.CANCELLED, size=0)
        batch.last_error = "every recipient opted out before submission"
        Batch.objects.filter(pk=batch.pk).update(last_error=batch.last_error)
        return BatchStatus.CANCELLED
    # Paused or cancelled since the claim: the batch is not sent.
    status = Campaign.objects.values_list("status", flat=True).get(pk=campaign.pk)
    if status not in CLAIMABLE:
        released = (
            BatchStatus.CANCELLED if status == Status.CANCELLED else BatchStatus.PENDING
        )
        with transaction.atomic():
            undo = (
                {}
                if released == BatchStatus.CANCELLED
                else {"attempts": F("attempts") - 1}
            )
            if (
                _record(batch, claim, status=released, size=len(entries), **undo)
                and released == BatchStatus.CANCELLED
            ):
                n = Recipient.objects.filter(
                    batch=batch, status=Recipient.Status.PENDING
                ).update(status=Recipient.Status.CANCELLED)
                counters.moved(campaign.pk, R.PENDING, R.CANCELLED, n)
        if released == BatchStatus.CANCELLED:
            from campaigns.dispatch import control

            control.store_receipt(campaign)
        return released
    send_after = _send_after(campaign)
    request = batch_request.build_request(
        campaign, batch, entries, message=context.message, send_after=send_after
    )
    try:
        response = sinch_client.get_sinch_client().send_batch(request)
    except SinchUncertainOutcomeError as exc:
        return _uncertain(batch, claim, str(exc))
    except SinchRateLimitedError as exc:
        # Not processed by Sinch: waits Retry-After, and is no attempt.
        return _retry_later(batch, claim, exc.retry_after or 1, str(exc), attempt=False)
    except SinchTransportError as exc:
        return _retry_later(batch, claim, _backoff(batch.attempts), str(exc))
    except SinchError as exc:
        if exc.retryable or exc.status in (401, 403):
            return _retry_later(batch, claim, _backoff(batch.attempts), str(exc))
        return _fail(batch, claim, f"Sinch refused the batch: {exc}")
    return _accepted(
        batch, claim, response.batch_id, response.send_after, size=len(entries)
    )


def _send_after(campaign: Campaign) -> datetime | None:
    """send_after for the campaign's batches now: None sends at once."""
    if campaign.send_at is None:
        return None
    if campaign.send_at - timezone.now() <= wire.SEND_AFTER_IMMEDIATE_WITHIN:
        return None  # due (or overdue: a worker was down at the send time)
    return campaign.send_at


def _recheck_consent_and_read(batch: Batch, context: _Context) -> list[tuple]:
    """Exclude recipients no longer opted in; return (id, identity, parameters)
    of the rest, in batch order.

    Consent is read from the contact's identity on the channel that is the
    recipient's (the oldest one if none is written exactly alike).
    """
    campaign = context.campaign
    recipients = Recipient._meta.db_table
    identities = ChannelIdentity._meta.db_table
    contacts = Contact._meta.db_table
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT r.id, r.identity, r.parameters, c.erased_at, i.identity, "
            f"i.{context.consent_column} "
            f"FROM {recipients} r "
            f"LEFT JOIN {contacts} c ON c.id = r.contact_id "
            f"LEFT JOIN {identities} i "
            "ON i.contact_id = r.contact_id AND i.channel = %s "
            'WHERE r.batch_id = %s AND r.status = %s ORDER BY r."index", i.id',
            [campaign.channel, batch.pk, Recipient.Status.PENDING],
        )
        rows = cursor.fetchall()
    consent: dict[int, str | None] = {}
    kept: dict[int, tuple] = {}
    for pk, identity, parameters, erased_at, their_identity, state in rows:
        if pk not in kept:
            kept[pk] = (pk, identity, parameters, erased_at)
            consent[pk] = state
        elif their_identity == identity:
            consent[pk] = state  # the identity written exactly as frozen
    entries, dropped = [], {}
    for pk, identity, parameters, erased_at in kept.values():
        state = consent[pk]
        if erased_at is not None or state is None:
            dropped.setdefault("erased or identity removed after launch", []).append(pk)
        elif state == ConsentState.OPTED_OUT:
            dropped.setdefault("opted out after launch", []).append(pk)
        elif state != ConsentState.OPTED_IN:
            dropped.setdefault("consent withdrawn after launch", []).append(pk)
        else:
            if isinstance(parameters, str):
                parameters = json.loads(parameters)
            entries.append((pk, identity, parameters))
    with transaction.atomic():
        for reason, ids in dropped.items():
            n = Recipient.objects.filter(pk__in=ids, status=R.PENDING).update(
                status=R.EXCLUDED, reason=reason, batch=None, index=None
            )
            counters.moved(campaign.pk, R.PENDING, R.EXCLUDED, n)
    return entries


# --- outcomes ---------------------------------------------------------------


def _record(batch: Batch, claim, **fields) -> bool:
    """Write the outcome of the claim `claim`; False if the batch moved on."""
    size = fields.pop("size", None)
    if size is not None:
        fields["size"] = size
    return bool(
        Batch.objects.filter(
            pk=batch.pk,
            claimed_at=claim,
            status__in=(BatchStatus.SUBMITTING, BatchStatus.UNCERTAIN),
        ).update(**fields)
    )


def _accepted(
    batch, claim, sinch_batch_id, send_after, *, size=None, remote_status=None
) -> str:
    """Record Sinch's acceptance (`remote_status`: as a status read found it)."""
    now = timezone.now()
    scheduled = send_after is not None and send_after > now + CLOCK_SKEW
    remote = "SCHEDULED" if scheduled else ""
    with transaction.atomic():
        fields = dict(
            status=BatchStatus.ACCEPTED,
            sinch_batch_id=sinch_batch_id,
            send_after=send_after,
            submitted_at=now,
            remote_status=remote if remote_status is None else remote_status,
            uncertain_since=None,
        )
        if remote_status is not None:
            fields["remote_checked_at"] = now
        if size is not None:
            fields["size"] = size
        if not _record(batch, claim, **fields):
            return "moved on"
        n = Recipient.objects.filter(batch=batch, status=R.PENDING).update(
            status=R.SUBMITTED, updated_at=now
        )
        counters.moved(batch.campaign_id, R.PENDING, R.SUBMITTED, n)
    # Cancelled while in flight: cancel it at Sinch too, if it is still waiting.
    if Campaign.objects.filter(pk=batch.campaign_id, status=Status.CANCELLED).exists():
        from campaigns.dispatch import control

        control.cancel_accepted(Batch.objects.get(pk=batch.pk))
        control.store_receipt(batch.campaign)
    return BatchStatus.ACCEPTED


def _fail(batch: Batch, claim, error: str) -> str:
    with transaction.atomic():
        if _record(batch, claim, status=BatchStatus.FAILED, last_error=error):
            n = Recipient.objects.filter(batch=batch, status=R.PENDING).update(
                status=R.FAILED, reason=error[:255]
            )
            counters.moved(batch.campaign_id, R.PENDING, R.FAILED, n)
    logger.warning("batch %s failed: %s", batch.pk, error)
    return BatchStatus.FAILED


def _retry_later(
    batch: Batch, claim, delay_s: float, error: str, *, attempt: bool = True
) -> str:
    """Back to PENDING, not before `delay_s`; `attempt=False` when Sinch surely
    did not act on it (429, no request slot): the claim is not counted."""
    undo = {} if attempt else {"attempts": F("attempts") - 1}
    _record(
        batch,
        claim,
        status=BatchStatus.PENDING,
        not_before=timezone.now() + timedelta(seconds=delay_s),
        last_error=error,
        **undo,
    )
    _cancel_if_campaign_cancelled(batch)
    return BatchStatus.PENDING


def _cancel_if_campaign_cancelled(batch: Batch) -> bool:
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
            n = Recipient.objects.filter(batch_id=batch.pk, status=R.PENDING).update(
                status=R.CANCELLED
            )
            counters.moved(batch.campaign_id, R.PENDING, R.CANCELLED, n)
    if cancelled:
        from campaigns.dispatch import control

        control.store_receipt(Campaign.objects.get(pk=batch.campaign_id))
    return bool(cancelled)


def _uncertain(batch: Batch, claim, error: str) -> str:
    _record(
        batch,
        claim,
        status=BatchStatus.UNCERTAIN,
        uncertain_since=timezone.now(),
        last_error=f"Outcome uncertain: {error}",
    )
    logger.warning("batch %s: outcome uncertain: %s", batch.pk, error)
    return BatchStatus.UNCERTAIN


def _backoff(attempts: int) -> float:
    return min(BACKOFF_MAX_S, 2.0 ** max(0, attempts))


# --- reconciliation ---------------------------------------------------------


def reconcile(campaign_id: int | None = None) -> dict[str, int]:
    """Settle batches whose outcome is not known (see the module docstring)."""
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
            _accepted(
                batch,
                batch.claimed_at,
                remote.batch_id,
                remote.send_after,
                size=size,
                remote_status=remote.status,
            )
            counts["found"] += 1
        elif now - batch.uncertain_since >= grace:
            released = _record(
                batch,
                batch.claimed_at,
                status=BatchStatus.PENDING,
                uncertain_since=None,
                not_before=None,
                last_error="Sinch did not have it after the grace period: "
                "submitted again",
            )
            if released and not _cancel_if_campaign_cancelled(batch):
                counts["resubmit"] += 1
        else:
            counts["waiting"] += 1
    return counts


def tick() -> str:
    """The periodic safety net: reconcile, restart drain loops where batches
    are due and nobody works on them, finish campaigns that are done; apply
    webhook events whose own task did not run within a few seconds."""
    from campaigns.tracking import receipts

    try:
        receipts.process_pending(received_before=timezone.now() - timedelta(seconds=5))
    except Exception:  # a deadlock, say: the events stay NEW for the next tick
        logger.exception("tick: processing webhook events failed")
    counts = reconcile()
    now = timezone.now()
    recent = now - timedelta(seconds=30)
    started = 0
    due = (
        Batch.objects.filter(
            is_test=False,
            status=BatchStatus.PENDING,
            campaign__status__in=DISPATCHING,
        )
        .filter(Q(not_before__isnull=True) | Q(not_before__lte=now))
        .values_list("campaign_id", flat=True)
        .distinct()
    )
    for campaign_id in set(due):
        active = Batch.objects.filter(
            campaign_id=campaign_id,
            status=BatchStatus.SUBMITTING,
            claimed_at__gte=recent,
        ).exists()
        if not active:
            start(campaign_id)
            started += 1
    for campaign_id in Campaign.objects.filter(status__in=DISPATCHING).values_list(
        "pk", flat=True
    ):
        finish_if_done(campaign_id)
    from campaigns.tracking.reconciliation import complete_finished_campaigns

    complete_finished_campaigns()
    return f"tick: {counts}, {started} campaigns restarted"


def finish_if_done(campaign_id: int) -> bool:
    """SUBMITTING/SCHEDULED -> SUBMITTED once no batch waits for an outcome."""
    open_batches = Batch.objects.filter(
        campaign_id=campaign_id,
        is_test=False,
        status__in=(
            BatchStatus.PENDING,
            BatchStatus.SUBMITTING,
            BatchStatus.UNCERTAIN,
        ),
    )
    if open_batches.exists():
        return False
    return bool(
        Campaign.objects.filter(pk=campaign_id, status__in=DISPATCHING).update(
            status=Status.SUBMITTED
        )
    )


# --- limits -----------------------------------------------------------------


def in_flight_messages() -> int:
    """Messages handed to Sinch for sending now and not yet processed."""
    now = timezone.now()
    total = (
        Batch.objects.filter(status=BatchStatus.ACCEPTED)
        .exclude(remote_status__in=REMOTE_DONE)
        .filter(Q(send_after__isnull=True) | Q(send_after__lte=now + CLOCK_SKEW))
        .aggregate(n=Sum("size"))["n"]
    )
    return total or 0


def _room_in_flight() -> bool:
    """Below the in-flight cap (re-reading the oldest batches' status if not)."""
    limit = max(0, settings.SINCH_MAX_IN_FLIGHT_MESSAGES - wire.MAX_RECIPIENTS)
    if in_flight_messages() <= limit:
        return True
    refresh_oldest_in_flight()
    return in_flight_messages() <= limit


def refresh_oldest_in_flight(count: int = CAP_REFRESH_BATCHES) -> int:
    """Re-read from Sinch the status of the oldest unprocessed batches.

    One request per campaign: the batches are listed by the campaign's
    batch_metadata key (batch_request.CAMPAIGN_KEY), which answers for all of its
    batches at once. Returns how many batches' statuses were read.
    """
    now = timezone.now()
    oldest = (
        Batch.objects.filter(status=BatchStatus.ACCEPTED)
        .exclude(remote_status__in=REMOTE_DONE)
        .exclude(sinch_batch_id="")
        .filter(
            Q(remote_checked_at__isnull=True)
            | Q(remote_checked_at__lt=now - timedelta(seconds=REMOTE_REREAD_S))
        )
        .order_by("submitted_at")
        .values_list("campaign_id", flat=True)[:count]
    )
    client = sinch_client.get_sinch_client()
    read = 0
    for campaign_id in dict.fromkeys(oldest):
        if not ratelimit.acquire(timeout_s=5):
            break
        try:
            found = client.batches_by_metadata(
                batch_request.CAMPAIGN_KEY, str(campaign_id)
            )
        except SinchError as exc:
            logger.warning("campaign %s: status read failed: %s", campaign_id, exc)
            continue
        by_status: dict[str, list[str]] = {}
        for remote in found:
            by_status.setdefault(remote.status, []).append(remote.batch_id)
        with transaction.atomic():
            for status, ids in by_status.items():
                read += Batch.objects.filter(
                    campaign_id=campaign_id,
                    status=BatchStatus.ACCEPTED,
                    sinch_batch_id__in=ids,
                ).update(remote_status=status, remote_checked_at=now)
    return read


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
    from campaigns.dispatch import control

    return control.pause(
        Campaign.objects.get(pk=campaign_id),
        None,
        reason=f"Paused automatically: {errors} of the last {total} batch "
        f"submissions failed (threshold "
        f"{settings.DISPATCH_PAUSE_ERROR_RATE:.0%}). Last error: "
        f"{last.last_error if last else 'unknown'}",
    )
