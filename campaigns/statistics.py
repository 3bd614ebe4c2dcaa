"""A campaign's figures: its real batches and recipients, never test sends.

Test sends (campaigns.test_send) write Batch and Recipient rows with
`is_test=True` on the same campaign. Every count, rate or dashboard of a
campaign goes through these functions (or filters `is_test=False` itself).
"""

from django.db.models import Count, QuerySet

from campaigns.models import Batch, Campaign, Recipient


def campaign_recipients(campaign: Campaign) -> QuerySet[Recipient]:
    """The campaign's recipients, test sends left out."""
    return Recipient.objects.filter(campaign=campaign, is_test=False)


def campaign_batches(campaign: Campaign) -> QuerySet[Batch]:
    """The campaign's batches, test sends left out."""
    return Batch.objects.filter(campaign=campaign, is_test=False)


def recipient_counts(campaign: Campaign) -> dict[str, int]:
    """Recipients per status (every Recipient.Status, zeros included)."""
    counts = dict.fromkeys(Recipient.Status.values, 0)
    for row in (
        campaign_recipients(campaign)
        .order_by()
        .values("status")
        .annotate(n=Count("id"))
    ):
        counts[row["status"]] = row["n"]
    return counts
