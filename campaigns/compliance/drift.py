"""The check still describes what is launched: the audience at the launch
against the audience at the last pre-send check.

People join and leave lists between the check and the launch. Within
LAUNCH_AUDIENCE_TOLERANCE (default 5 % or 100 people, whichever is larger)
the launch goes ahead; beyond it the check must be run again, so that its
figures (exclusions, cost, approval) describe the campaign that goes out.
"""

from dataclasses import dataclass

from django.conf import settings

from campaigns.authoring import presend
from campaigns.models import Campaign
from config.lib.tolerance import Tolerance, parse_tolerance


def tolerance() -> Tolerance:
    """LAUNCH_AUDIENCE_TOLERANCE, validated when the settings load."""
    return parse_tolerance(settings.LAUNCH_AUDIENCE_TOLERANCE)


@dataclass(frozen=True)
class Drift:
    checked: int  # audience members at the last pre-send check
    now: int  # audience members now (one COUNT)
    allowed: int  # the largest change the tolerance lets through

    @property
    def exceeded(self) -> bool:
        return abs(self.now - self.checked) > self.allowed

    @property
    def problem(self) -> str | None:
        if not self.exceeded:
            return None
        return (
            f"The audience changed from {self.checked:,} to {self.now:,} "
            f"{'person' if self.now == 1 else 'people'} since the pre-send check "
            f"(more than {tolerance()}): run it again."
        )


def audience_drift(campaign: Campaign) -> Drift | None:
    """The audience now against the last check's; None when never checked."""
    if not campaign.presend:
        return None
    checked = int(campaign.presend.get("audience") or 0)
    return Drift(
        checked=checked,
        now=presend.audience_size(campaign),
        allowed=tolerance().allowed(checked),
    )
