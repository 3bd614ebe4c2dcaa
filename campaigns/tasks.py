"""Background tasks of the campaigns app: thin wrappers over the services."""

from campaigns.authoring.presend import run_requested_check
from campaigns.dispatch import drain, launching


def presend_check(campaign_id: int, requested_at: str) -> str:
    """Run a queued pre-send check (see campaigns.authoring.presend.request_check)."""
    return run_requested_check(campaign_id, requested_at)


def freeze_recipients(campaign_id: int) -> str:
    """Freeze a launched campaign's recipients, then start its dispatch."""
    return launching.freeze_recipients(campaign_id)


def dispatch_campaign(campaign_id: int) -> str:
    """One drain loop of a campaign's batches (campaigns.dispatch)."""
    return drain.run_dispatcher(int(campaign_id))


def tick() -> str:
    """Every minute: reconcile uncertain batches, restart stalled dispatches."""
    return drain.tick()


def reconcile_deliveries() -> str:
    """Every few minutes: read silent batches, flag stalled receipts, heal
    counters, retry orphan callbacks (campaigns.reconciliation)."""
    from campaigns.tracking import reconciliation

    return f"reconcile: {reconciliation.reconcile_deliveries()}"


def process_webhook_events() -> str:
    """Apply every stored NEW webhook event (campaigns.receipts), in bulk."""
    from campaigns.tracking import receipts

    return receipts.summary(receipts.process_pending())
