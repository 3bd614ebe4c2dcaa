"""A Sinch outage during dispatch: waited out, never a failure.

Connection refused, a connect timeout, a 5xx, or Sinch's auth server not
answering the token request mean Sinch could not be asked, not that it
refused the batch. Such a batch goes back to PENDING without using up one of
its DISPATCH_MAX_ATTEMPTS (that budget is for batches whose worker kept
dying), not before a delay that grows with the outage; the drain loop that
met the outage stops (the periodic tick starts loops again once batches are
due), so that an outage costs one call a minute or so, not one per batch.
The outage is recorded once for everybody (sinch.models.Outage) and the
campaign page, the campaign list and the health page say "Sinch unreachable
since 10:02, retrying" until Sinch answers again. A 429 is not an outage
(Sinch answered) and keeps its own rule: wait Retry-After, no attempt used.
"""

from datetime import datetime, timedelta

from django.utils import timezone

from campaigns.models import Batch, Campaign
from campaigns.models.states import CLAIMABLE
from sinch import models as sinch_models
from sinch.errors import (
    SinchError,
    SinchServerError,
    SinchTransportError,
    SinchUncertainOutcomeError,
)

BatchStatus = Batch.Status
# The wait before a batch is tried again grows with the outage, within these.
FIRST_WAIT_S = 5.0
LONGEST_WAIT_S = 60.0
# An outage nothing has met for this long is no longer shown as going on
# (nothing tried Sinch since: no campaign was dispatching).
SHOWN_FOR = timedelta(minutes=15)


def is_outage(error: SinchError) -> bool:
    """True for an error that says Sinch could not be reached or answer
    (connection refused or lost, timeouts, 5xx, the auth server down)."""
    return isinstance(
        error, SinchTransportError | SinchServerError | SinchUncertainOutcomeError
    )


def wait_s(down_since: datetime | None, now: datetime | None = None) -> float:
    """Seconds before a batch that met the outage is tried again: half the
    outage's length so far, within FIRST_WAIT_S and LONGEST_WAIT_S."""
    if down_since is None:
        return FIRST_WAIT_S
    lasted = ((now or timezone.now()) - down_since).total_seconds()
    return max(FIRST_WAIT_S, min(LONGEST_WAIT_S, lasted / 2))


def reason(since: datetime) -> str:
    """The words shown while Sinch cannot be reached."""
    return f"Sinch unreachable since {timezone.localtime(since):%H:%M}, retrying"


def current(now: datetime | None = None) -> sinch_models.Outage | None:
    """The outage going on (met in the last SHOWN_FOR), or None."""
    outage = sinch_models.current_outage()
    now = now or timezone.now()
    if outage is None or outage.last_at is None or now - outage.last_at > SHOWN_FOR:
        return None
    return outage


def campaign_reason(campaign: Campaign) -> str:
    """ "Sinch unreachable since 10:02, retrying" for a campaign whose batches
    wait for Sinch to answer again; "" otherwise."""
    if campaign.status not in CLAIMABLE:
        return ""
    outage = current()
    if outage is None:
        return ""
    waiting = Batch.objects.filter(
        campaign=campaign,
        is_test=False,
        status__in=(BatchStatus.PENDING, BatchStatus.UNCERTAIN),
    ).exists()
    return (
        f"{reason(outage.down_since)} (last error: {outage.last_error})"
        if (waiting)
        else ""
    )
