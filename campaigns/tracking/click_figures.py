"""What the dashboard shows of a campaign's tracked links: the funnel's
Clicked step, the clicks over time and the table of links.

Only campaigns with tracked links show any of it (one probe of
TrackedLink's campaign index). Clicks count as campaigns.tracking.clicks
counts them: people only, test sends never; preview fetchers (messaging
apps and carriers drawing a link preview) are counted apart, per link.
Each figure is one grouped query over an index of Click, bounded by the
campaign's links or its hours of clicks, never by its recipients.
"""

from datetime import datetime, timedelta

from campaigns.models import Campaign, TrackedLink
from campaigns.tracking import charts, clicks
from config.lib.timezones import local_time

# Clicks spread over more hours than this are drawn per day.
HOURLY_UP_TO = 72


def has_tracked_links(campaign_id: int) -> bool:
    return TrackedLink.objects.filter(campaign_id=campaign_id).exists()


def rate_text(clickers: int, delivered: int) -> str:
    """Unique clickers as a share of the delivered messages: "12 %"."""
    if delivered <= 0:
        return "—"
    value = 100 * clickers / delivered
    if 0 < value < 1:
        return "< 1 %"
    return f"{min(100, round(value))} %"


def clicked_step(campaign_id: int, delivered: int) -> charts.Step:
    """The funnel's last step: the people who opened a link at least once."""
    clickers = clicks.unique_clickers(campaign_id)
    return charts.Step(
        "clicked",
        "Clicked",
        clickers,
        f"{rate_text(clickers, delivered)} of delivered; people, once each",
    )


def link_rows(campaign_id: int) -> list[dict]:
    """Per tracked link: target, clickers, clicks and preview fetches."""
    return clicks.clickers_per_link(campaign_id)


def _buckets(rows: list[tuple[datetime, int]]) -> tuple[list[datetime], list[int], str]:
    """Hourly counts with their gaps as zero, or daily ones past HOURLY_UP_TO
    hours; the starts of the buckets, their counts and the unit."""
    first, last = rows[0][0], rows[-1][0]
    hours = int((last - first).total_seconds() // 3600) + 1
    size, unit = (1, "per hour") if hours <= HOURLY_UP_TO else (24, "per day")
    n = (hours + size - 1) // size
    values = [0] * n
    for at, count in rows:
        values[int((at - first).total_seconds() // 3600) // size] += count
    starts = [first + timedelta(hours=i * size) for i in range(n)]
    return starts, values, unit


def clicks_chart(campaign: Campaign):
    """People's clicks per hour (per day over longer spans), in the
    campaign's time zone."""
    rows = clicks.clicks_over_time(campaign.pk, "hour")
    if not rows:
        return charts.timeline(
            [],
            [],
            "per hour",
            counted="clicks",
            empty="No clicks yet",
            title="Clicks over time",
        )
    starts, values, unit = _buckets(rows)
    zone = campaign.send_time_zone
    shape = "%d %b %H:00" if unit == "per hour" else "%d %b"
    labels = [f"{local_time(at, zone):{shape}}" for at in starts]
    unit += f" ({zone} time)" if zone and zone != "UTC" else " (UTC)"
    return charts.timeline(
        labels,
        [charts.Series("clicks", "Clicks", values)],
        unit,
        counted="clicks",
        empty="No clicks yet",
        title="Clicks over time",
    )


def dashboard_clicks(campaign: Campaign, delivered: int) -> dict | None:
    """The dashboard's clicks section; None for a campaign without tracked
    links (nothing of it is shown)."""
    if not has_tracked_links(campaign.pk):
        return None
    counts = clicks.click_counts(campaign.pk)
    return {
        "clickers": counts["clickers"],
        "clicks": counts["clicks"],
        "previews": counts["previews"],
        "rate": rate_text(counts["clickers"], delivered),
        "chart": clicks_chart(campaign),
        "links": link_rows(campaign.pk),
    }
