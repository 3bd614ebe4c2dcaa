"""Campaigns whose every recipient has a final outcome are COMPLETED."""

from datetime import datetime

from campaigns import transitions
from campaigns.models import Campaign, CampaignCount, Recipient
from campaigns.models.states import WAITING

R = Recipient.Status


def complete_finished_campaigns(now: datetime | None = None) -> int:
    """SUBMITTED -> COMPLETED once every recipient has a final outcome.

    Read from the kept counts: nobody left not yet sent, handed to Sinch, or
    queued on a channel (a READ may still follow a DELIVERED: that changes
    figures, not the campaign's state). Returns how many campaigns completed.
    """
    open_statuses = (R.PENDING, *WAITING)
    waiting = set(
        CampaignCount.objects.filter(
            status__in=open_statuses,
            count__gt=0,
            campaign__status=Campaign.Status.SUBMITTED,
        ).values_list("campaign_id", flat=True)
    )
    done = Campaign.objects.filter(status=Campaign.Status.SUBMITTED).exclude(
        pk__in=waiting
    )
    done = done.filter(counts__isnull=False).distinct()
    return sum(
        transitions.complete(campaign_id)
        for campaign_id in done.values_list("pk", flat=True)
    )
