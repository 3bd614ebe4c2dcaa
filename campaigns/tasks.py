"""Background tasks of the campaigns app: thin wrappers over the services.

The dotted paths of these functions are stored in django-q2's queue and
schedules (campaigns.schedules): keep them.
"""

import logging
from datetime import timedelta

from django.utils import timezone

from campaigns import notifications
from campaigns.authoring.presend import run_requested_check
from campaigns.compliance import notify
from campaigns.dispatch import (
    cancellation,
    drain,
    freeze,
    late_optouts,
    launch_recovery,
    settlement,
)
from campaigns.tracking import ab_winner, completion, receipts, reconciliation

logger = logging.getLogger(__name__)


def presend_check(campaign_id: int, requested_at: str) -> str:
    """Run a queued pre-send check (see campaigns.authoring.presend)."""
    return run_requested_check(campaign_id, requested_at)


def freeze_recipients(campaign_id: int) -> str:
    """Freeze a launched campaign's recipients, then start its dispatch. An
    error is recorded on the campaign (campaigns.dispatch.launch_recovery)
    and raised again for django-q2's failed tasks."""
    try:
        return freeze.freeze_recipients(campaign_id)
    except launch_recovery.LeaseLost as exc:
        return str(exc)
    except Exception as exc:
        launch_recovery.interrupted(campaign_id, exc)
        raise


def dispatch_campaign(campaign_id: int) -> str:
    """One drain loop of a campaign's batches (campaigns.dispatch.drain)."""
    return drain.run_dispatcher(int(campaign_id))


def tick() -> str:
    """Every minute, the safety net of dispatch and tracking:

    - apply webhook events whose own task did not run within a few seconds;
    - settle batches whose submission outcome is unknown;
    - read, and ask again, cancels Sinch has not confirmed yet (until the
      send time), then cancel and replace scheduled batches holding people
      who opted out or were erased after the launch;
    - restart drain loops where batches are due and nobody works on them
      (after a Sinch outage too: campaigns.dispatch.sinch_outage);
    - resume launches whose worker vanished (campaigns.dispatch.launch_recovery);
    - pick the winners of A/B tests whose wait is over, sending them to the
      rest (campaigns.tracking.ab_winner);
    - move campaigns on whose batches are all out, or whose outcomes are all in.
    """
    try:
        receipts.process_pending(received_before=timezone.now() - timedelta(seconds=5))
    except Exception:  # a deadlock, say: the events stay NEW for the next tick
        logger.exception("tick: processing webhook events failed")
    counts = settlement.settle_uncertain_batches()
    cancels = cancellation.retry_unconfirmed_cancels()
    late = late_optouts.replace_late_optouts()
    started = drain.restart_idle_campaigns()
    launches = launch_recovery.resume_stalled_launches()
    winners = pick_ab_winners()
    drain.finish_dispatched_campaigns()
    completion.complete_finished_campaigns()
    return (
        f"tick: {counts}, cancels {cancels}, late opt-outs {late}, "
        f"{started} campaigns restarted, {launches} launches resumed, "
        f"{winners}"
    )


def pick_ab_winners() -> str:
    """Pick the A/B winners whose wait is over and send them to the rest
    (idempotent: a winner is picked once, its remainder released once)."""
    try:
        return f"{ab_winner.pick_due_winners()} A/B winners picked"
    except Exception:  # the next tick tries again
        logger.exception("tick: picking A/B winners failed")
        return "picking A/B winners failed"


def reconcile_deliveries() -> str:
    """Every few minutes: read silent batches, flag stalled receipts, heal
    counters, retry orphan callbacks (campaigns.tracking.reconciliation)."""
    return f"reconcile: {reconciliation.reconcile_deliveries()}"


def process_webhook_events() -> str:
    """Apply every stored NEW webhook event (campaigns.tracking.receipts)."""
    return receipts.summary(receipts.process_pending())


def send_approval_mail(approval_id: int, event: str, link: str = "") -> str:
    """E-mail about a launch approval (campaigns.compliance.notify)."""
    return notify.send_approval_mail(approval_id, event, link)


def send_notification_mail(notification_ids: list[int]) -> str:
    """E-mail notifications (campaigns.notifications)."""
    return notifications.send_mail_for(notification_ids)
