"""What a refused campaign page says (shown by config.lib.forbidden)."""

from campaigns.models import Campaign
from contacts.roles import refusal

VIEW_PERM = "campaigns.view_campaign"
CHANGE_PERM = "campaigns.change_campaign"

__all__ = ["CHANGE_PERM", "VIEW_PERM", "change_refusal", "refusal"]


def change_refusal(user, campaign: Campaign, doing: str) -> str:
    """Why `user` may not `doing` ("run a pre-send check") on `campaign`:
    their role, or, for one who may change drafts, the campaign's status."""
    if user.has_perm(CHANGE_PERM) and campaign.status != Campaign.Status.DRAFT:
        return (
            f"Only a draft can be changed: this campaign is "
            f"{campaign.get_status_display().lower()}, so nobody can {doing} now."
        )
    return refusal(CHANGE_PERM, doing)
