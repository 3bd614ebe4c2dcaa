"""Background tasks of the campaigns app: thin wrappers over the services."""

from campaigns.presend import run_requested_check


def presend_check(campaign_id: int, requested_at: str) -> str:
    """Run a queued pre-send check (see campaigns.presend.request_check)."""
    return run_requested_check(campaign_id, requested_at)
