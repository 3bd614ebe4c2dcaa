"""Drain loops: submit a launched campaign's batches to Sinch, exactly once each.

Drain loops (`run_dispatcher`, django-q2 tasks, DISPATCH_CONCURRENCY per
campaign, on any number of machines) repeat: claim the next due batch, submit
it, record the outcome (campaigns.dispatch.outcomes). The rules that keep a
recipient from getting the campaign twice, or without consent:

- **Claim**: one conditional UPDATE (PENDING -> SUBMITTING); the worker whose
  update changed the row owns the batch. The claim, committed before the HTTP
  call, is the intent; `attempts` counts every claim, less those that met a
  429 or an outage (or whose answer was lost and that Sinch turned out not
  to have). A batch is claimed at most DISPATCH_MAX_ATTEMPTS times: the
  claim after that fails it (its worker kept dying).
- **Consent, again**: just before the call, recipients who may no longer
  receive it (campaigns.authoring.recheck) are excluded, and fallback
  identities that may no longer be used are left out of the request.
- **Uncertain outcomes** are settled at Sinch before any resubmission
  (campaigns.dispatch.settlement), at each loop start and by the tick.
- **Limits**: a request slot (campaigns.dispatch.ratelimit) before each call;
  no new batch while the messages in flight at Sinch would exceed the cap
  (campaigns.dispatch.in_flight).
- **Outages**: Sinch unreachable (connection refused, timeouts, 5xx, its
  auth server down) is waited out, with the reason shown, and uses up no
  attempt (campaigns.dispatch.sinch_outage); the loop stops and the tick
  starts loops again once the batch is due.
- **Auto-pause**: when too many recent submissions failed (not during an
  outage).
- **Scheduling**: a send time within Sinch's horizon is sent as send_after
  (each batch its wave's: campaigns.dispatch.ingress staggers a scheduled
  campaign larger than the room in Sinch's queue);
  further out, batches are held here (`not_before`) and a one-off django-q2
  schedule, backed by the periodic tick, releases them. A send time that
  passed while no worker ran is sent at once, when one runs.
"""

import logging
import os
import socket
import time
import uuid
from datetime import datetime, timedelta

from django.conf import settings
from django.db import transaction
from django.db.models import F, Q
from django.utils import timezone
from django_q.models import Schedule
from django_q.tasks import async_task

from campaigns import counters, transitions
from campaigns.authoring import recheck, variants
from campaigns.authoring.rendering import MessagePlan
from campaigns.dispatch import (
    batch_request,
    cancellation,
    in_flight,
    outcomes,
    ratelimit,
    settlement,
    sinch_outage,
    statements,
)
from campaigns.models import Batch, Campaign, Recipient
from campaigns.models.states import CLAIMABLE, DISPATCHING, SUBMISSION_GIVEN_UP
from config.lib.collector import frozen_heap
from sinch import client as sinch_client
from sinch import models as sinch_models
from sinch import wire
from sinch.errors import (
    SinchError,
    SinchRateLimitedError,
    SinchUncertainOutcomeError,
)

logger = logging.getLogger(__name__)

Status = Campaign.Status
BatchStatus = Batch.Status
R = Recipient.Status
# How often an idle drain loop looks for batches the freeze has just sealed.
FREEZE_POLL_S = 0.2
# A drain loop hands over to a fresh task after this long (task timeouts).
LOOP_SECONDS = 300
# Waits while the in-flight cap is reached.
CAP_WAIT_S = 0.5
# What `submit` returns when Sinch could not be reached or its answer was
# lost: the batch waits (campaigns.dispatch.sinch_outage), the loop stops.
WAITING_FOR_SINCH = "waiting for Sinch"


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


def restart_idle_campaigns() -> int:
    """Start drain loops for campaigns with due batches and no worker on them
    (a lost task, a cluster that was down); returns how many."""
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
    return started


# --- the drain loop ---------------------------------------------------------


@frozen_heap()
def run_dispatcher(campaign_id: int, *, seconds: float = LOOP_SECONDS) -> str:
    """Submit the campaign's due batches until none is left, it stops, or time
    is up (then another loop is queued)."""
    deadline = time.monotonic() + seconds
    settlement.settle_uncertain_batches(campaign_id=campaign_id)
    context = None
    submitted = 0
    idle_until = time.monotonic() + settings.DISPATCH_FREEZE_WAIT_S
    while True:
        status = statements.campaign_status(campaign_id)
        if status not in CLAIMABLE:
            return f"campaign {campaign_id}: {status}, {submitted} batches submitted"
        if time.monotonic() > deadline:
            start(campaign_id, loops=1)
            return f"campaign {campaign_id}: handed over after {submitted} batches"
        if not in_flight.room_in_flight():
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
            context = SubmitContext(batch.campaign)
        outcome = submit(batch, context)
        if outcome == WAITING_FOR_SINCH:
            # The next batches would meet the same outage: the tick starts
            # loops again when the batch is due (restart_idle_campaigns).
            return f"campaign {campaign_id}: Sinch unreachable, waiting"
        submitted += 1
        if outcome not in (BatchStatus.ACCEPTED, BatchStatus.CANCELLED):
            outcomes.auto_pause_if_failing(campaign_id)


def before_claim(batch_id: int) -> None:
    """A seam for tests: runs between reading the due batches and claiming
    one, where two workers race. Does nothing."""


def worker_name() -> str:
    """This process as the batches it claims name it: WORKER_NAME (by default
    the hostname), a colon, its pid."""
    machine = settings.WORKER_NAME or socket.gethostname()
    return f"{machine}:{os.getpid()}"[:100]


def claim_next(campaign_id: int) -> Batch | None:
    """Claim the next due batch of the campaign, or None if none is due.
    The claim names its worker (`claimed_by`): which machine sent what."""
    now = timezone.now()
    for pk in statements.due_batches(campaign_id, now):
        before_claim(pk)
        # last_error stays until the outcome: the give-up reads it.
        if statements.claim(pk, now, worker_name()):
            # Not its campaign: the loop has it (SubmitContext).
            return statements.batch(pk)
    return None


class SubmitContext:
    """What every batch of one campaign shares: computed once per loop."""

    def __init__(self, campaign: Campaign) -> None:
        self.campaign = campaign
        self.message = batch_request.app_message(
            MessagePlan.for_campaign(campaign).message
        )
        # An A/B test's batches carry their variant's message.
        self.variants = {
            label: batch_request.app_message(message)
            for label, message in variants.variant_messages(campaign).items()
        }

    def message_for(self, batch: Batch):
        """The message of `batch`: its variant's, else the campaign's."""
        if batch.variant:
            return self.variants[batch.variant]
        return self.message


def submit(batch: Batch, context: SubmitContext) -> str:
    """Submit one claimed batch and record the outcome; returns the new status."""
    campaign = context.campaign
    claim = batch.claimed_at
    if batch.attempts > settings.DISPATCH_MAX_ATTEMPTS:
        return give_up(batch, claim)
    if not ratelimit.acquire(timeout_s=min(60, settings.DISPATCH_CLAIM_LEASE_S / 4)):
        return outcomes.retry_later(
            batch, claim, 1, "no request slot free: retried", attempt=False
        )
    entries = exclude_no_longer_eligible(batch, context)
    if not entries:
        outcomes.record(batch, claim, status=BatchStatus.CANCELLED, size=0)
        batch.last_error = "every recipient opted out before submission"
        Batch.objects.filter(pk=batch.pk).update(last_error=batch.last_error)
        return BatchStatus.CANCELLED
    # Paused or cancelled since the claim: the batch is not sent.
    status = statements.campaign_status(campaign.pk)
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
                outcomes.record(
                    batch, claim, status=released, size=len(entries), **undo
                )
                and released == BatchStatus.CANCELLED
            ):
                n = Recipient.in_batch(batch, R.PENDING).update(status=R.CANCELLED)
                counters.moved(campaign.pk, R.PENDING, R.CANCELLED, n)
        if released == BatchStatus.CANCELLED:
            cancellation.save_receipt(campaign)
        return released
    send_after = _send_after(campaign, batch)
    request = batch_request.build_request(
        campaign,
        batch,
        entries,
        message=context.message_for(batch),
        send_after=send_after,
    )
    try:
        response = sinch_client.get_sinch_client().send_batch(request)
    except SinchUncertainOutcomeError as exc:
        # Sinch may have it: settled before any resend; the attempt it used
        # is given back then (campaigns.dispatch.settlement).
        sinch_models.note_outage(exc)
        outcomes.uncertain(batch, claim, str(exc))
        return WAITING_FOR_SINCH
    except SinchRateLimitedError as exc:
        # Not processed by Sinch: waits Retry-After, and is no attempt.
        return outcomes.retry_later(
            batch, claim, exc.retry_after or 1, str(exc), attempt=False
        )
    except SinchError as exc:
        if sinch_outage.is_outage(exc):
            outcomes.wait_for_sinch(batch, claim, exc)
            return WAITING_FOR_SINCH
        if exc.retryable or exc.status in (401, 403):
            return outcomes.retry_later(
                batch, claim, outcomes.backoff(batch.attempts), str(exc)
            )
        return outcomes.fail(batch, claim, f"Sinch refused the batch: {exc}")
    sinch_models.note_reachable()
    return outcomes.accepted(
        batch, claim, response.batch_id, response.send_after, size=len(entries)
    )


def give_up(batch: Batch, claim) -> str:
    """Fail a batch claimed more than DISPATCH_MAX_ATTEMPTS times, saying why.

    Outages and 429s use up no attempt. What does: a worker that stopped
    between its claim and the outcome (Sinch did not have the batch when it
    was looked up: SUBMISSION_GIVEN_UP, safe to send again), or an error
    that came back every time (credentials refused: its text is the reason).
    """
    tries = batch.attempts - 1
    if settlement.worker_died(batch.last_error):
        return outcomes.fail(
            batch,
            claim,
            f"Given up after {tries} attempts (its worker kept dying before "
            "it could record Sinch's answer).",
            code=SUBMISSION_GIVEN_UP,
        )
    return outcomes.fail(
        batch, claim, f"Given up after {tries} attempts; the last: {batch.last_error}"
    )


def _send_after(campaign: Campaign, batch: Batch) -> datetime | None:
    """send_after for the batch now: None sends at once. A batch goes at its
    wave's send time (campaigns.dispatch.ingress), a replacement batch at the
    send time Sinch had stored for the batch it replaces."""
    send_at = batch.wave_at or campaign.send_at
    if batch.replaces_id is not None:
        send_at = (
            Batch.objects.filter(pk=batch.replaces_id)
            .values_list("send_after", flat=True)
            .get()
        )
    if send_at is None:
        return None
    if send_at - timezone.now() <= wire.SEND_AFTER_IMMEDIATE_WITHIN:
        return None  # due (or overdue: a worker was down at the send time)
    return send_at


def exclude_no_longer_eligible(
    batch: Batch, context: SubmitContext
) -> list[recheck.Entry]:
    """Exclude recipients who may no longer receive the campaign (the rule of
    campaigns.authoring.recheck, read for the whole batch in a query or
    two); return the rest, in batch order. A fallback identity that may no
    longer be used leaves the recipient's row too (it is never sent)."""
    campaign = context.campaign
    entries, dropped = recheck.recheck_batch(campaign, batch.pk)
    if not dropped and not any(entry.lost for entry in entries):
        # Nothing to write (the usual case): no transaction, which on SQLite
        # would wait for the write lock (BEGIN IMMEDIATE) for nothing.
        return entries
    with transaction.atomic():
        for reason, ids in dropped.items():
            n = Recipient.objects.filter(pk__in=ids, status=R.PENDING).update(
                status=R.EXCLUDED, reason=reason, batch=None, index=None
            )
            counters.moved(campaign.pk, R.PENDING, R.EXCLUDED, n)
        recheck.record_lost_fallbacks(entries)
    return entries


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
    return transitions.all_submitted(campaign_id)


def finish_dispatched_campaigns() -> int:
    """finish_if_done for every dispatching campaign; how many finished."""
    ids = Campaign.objects.filter(status__in=DISPATCHING).values_list("pk", flat=True)
    return sum(finish_if_done(campaign_id) for campaign_id in ids)
