"""Selectors over clicks: unique human clickers, per campaign, link, recipient, time.

A "clicker" is a recipient who opened one of their short links at least once
as a person (preview fetchers and test sends never count). Each function is
one query served by an index of campaigns.models.links.Click.
"""

from datetime import datetime

from django.db.models import Count, Min, Q, QuerySet
from django.db.models.functions import Trunc

from campaigns.models import Click, TrackedLink


def human_clicks(campaign_id: int) -> QuerySet:
    return Click.objects.filter(
        campaign_id=campaign_id, is_test=False, is_preview=False
    )


def unique_clickers(campaign_id: int) -> int:
    """How many recipients of the campaign clicked (index click_campaign_people)."""
    return human_clicks(campaign_id).values("recipient_id").distinct().count()


def click_counts(campaign_id: int) -> dict[str, int]:
    """{"clicks": human clicks, "clickers": unique, "previews": preview fetches}."""
    base = Click.objects.filter(campaign_id=campaign_id, is_test=False)
    people = base.filter(is_preview=False)
    return {
        "clicks": people.count(),
        "clickers": people.values("recipient_id").distinct().count(),
        "previews": base.filter(is_preview=True).count(),
    }


def clickers_per_link(campaign_id: int) -> list[dict]:
    """Per tracked link, in the message's order: its parameter and target,
    unique human clickers, human clicks and preview fetches (one grouped
    query)."""
    people = Q(is_preview=False)
    counts = {
        row["link_id"]: row
        for row in Click.objects.filter(campaign_id=campaign_id, is_test=False)
        .values("link_id")
        .annotate(
            clickers=Count("recipient_id", distinct=True, filter=people),
            clicks=Count("id", filter=people),
            previews=Count("id", filter=Q(is_preview=True)),
        )
        .order_by()
    }
    return [
        {
            "parameter": link.parameter,
            "target": link.target,
            **{
                key: counts.get(link.pk, {}).get(key, 0)
                for key in ("clickers", "clicks", "previews")
            },
        }
        for link in TrackedLink.objects.filter(campaign_id=campaign_id).only(
            "pk", "parameter", "target"
        )
    ]


def people_clicks(recipients) -> QuerySet:
    """The clicks made on these recipients' short links by the person, not a
    preview fetcher (index click_recipient). `recipients` is ids or a
    subquery of Recipient pks; test sends are kept, for callers that show
    them."""
    return Click.objects.filter(recipient_id__in=recipients, is_preview=False)


def recipient_clicks(recipient_ids) -> dict[int, tuple[int, datetime]]:
    """{recipient id: (human clicks, time of the first)} for those who
    clicked: one grouped query."""
    rows = (
        people_clicks(recipient_ids)
        .values("recipient_id")
        .annotate(n=Count("id"), first=Min("clicked_at"))
        .order_by()
    )
    return {row["recipient_id"]: (row["n"], row["first"]) for row in rows}


def clicks_over_time(
    campaign_id: int, unit: str = "hour"
) -> list[tuple[datetime, int]]:
    """(start of each hour/day, human clicks) (index click_time)."""
    rows = (
        human_clicks(campaign_id)
        .annotate(at=Trunc("clicked_at", unit))
        .values("at")
        .annotate(n=Count("id"))
        .order_by("at")
    )
    return [(row["at"], row["n"]) for row in rows]
