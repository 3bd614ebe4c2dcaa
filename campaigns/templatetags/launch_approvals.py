"""Template tags for the admin home: launch requests waiting for a Sender."""

from django import template

from campaigns.models import Campaign, LaunchApproval

register = template.Library()
SHOWN = 10


@register.simple_tag
def waiting_launch_requests() -> list[LaunchApproval]:
    """The requests waiting for a decision (oldest first, the first few)."""
    return list(
        LaunchApproval.objects.filter(
            withdrawn_at__isnull=True,
            decision=LaunchApproval.Decision.PENDING,
            campaign__status=Campaign.Status.DRAFT,
        )
        .select_related("campaign", "requested_by")
        .order_by("requested_at")[:SHOWN]
    )
