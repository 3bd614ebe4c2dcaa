"""Background tasks of the campaigns app: thin wrappers over the services."""

from campaigns import dispatch, launching
from campaigns.presend import run_requested_check


def presend_check(campaign_id: int, requested_at: str) -> str:
    """Run a queued pre-send check (see campaigns.presend.request_check)."""
    return run_requested_check(campaign_id, requested_at)


def freeze_recipients(campaign_id: int) -> str:
    """Freeze a launched campaign's recipients, then start its dispatch."""
    return launching.freeze_recipients(campaign_id)


def dispatch_campaign(campaign_id: int) -> str:
    """One drain loop of a campaign's batches (campaigns.dispatch)."""
    return dispatch.run_dispatcher(int(campaign_id))


def tick() -> str:
    """Every minute: reconcile uncertain batches, restart stalled dispatches."""
    return dispatch.tick()
