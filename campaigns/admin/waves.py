"""A campaign's send waves as the pages show them: the waves a scheduled
launch will go out in (the launch page), and a launched campaign's waves by
time zone (campaign page, dashboard)."""

from django.conf import settings

from campaigns.compliance import display
from campaigns.dispatch import ingress
from campaigns.dispatch.batch_states import when
from campaigns.models import Campaign


def waves_context(plan: ingress.Plan | None, zone: str) -> dict | None:
    """A scheduled campaign's waves for a page (None: sent when launched)."""
    if plan is None:
        return None
    return {
        "waves": [
            {"at": when(w.at, zone), "recipients": w.recipients, "batches": w.batches}
            for w in plan.waves
        ],
        "staggered": plan.staggered,
        "finish_at": when(plan.finish_at, zone),
        "room": plan.room,
        "cap": settings.SINCH_MAX_IN_FLIGHT_MESSAGES,
        "rate": settings.SINCH_DRAIN_RATE_PER_S,
        "problem": plan.problem,
    }


def launched_local_waves(campaign: Campaign) -> list[dict] | None:
    """A launched campaign's waves by zone (campaign page, dashboard), or None
    when it goes at one instant."""
    if not display.shows_local_waves(campaign):
        return None
    waves = ingress.waves_of(campaign)
    plan = ingress.Plan(send_at=campaign.send_at, recipients=0, waves=waves)
    return display.wave_rows(campaign, plan)
