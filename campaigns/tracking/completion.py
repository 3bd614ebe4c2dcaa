"""Campaigns whose every recipient has a final outcome are COMPLETED."""

from datetime import datetime

from django.db.models import Exists, OuterRef

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
    # One query: the campaign's status and its counts are read together, so a
    # campaign that becomes SUBMITTED meanwhile is never taken for done.
    waiting = CampaignCount.objects.filter(
        campaign=OuterRef("pk"), status__in=(R.PENDING, *WAITING), count__gt=0
    )
    counted = CampaignCount.objects.filter(campaign=OuterRef("pk"))
    done = Campaign.objects.filter(
        Exists(counted), ~Exists(waiting), status=Campaign.Status.SUBMITTED
    )
    return sum(
        transitions.complete(campaign_id)
        for campaign_id in done.values_list("pk", flat=True)
    )
