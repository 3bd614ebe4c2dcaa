"""What the delivery dashboard of a campaign shows: figures, charts, tables.

Everything here reads a bounded amount of data whatever the campaign's size:
the kept counts (campaigns.counters), one aggregate over the batches, at most
TIMELINE_ROWS timeline rows, and grouped counts of the failed and excluded
recipients that scan at most BREAKDOWN_SCAN rows each (beyond that the
breakdown is of the first BREAKDOWN_SCAN and says so), kept in the cache
under keys that change whenever the rows they count may have changed. The
admin views (campaigns.admin.dashboard) only arrange it.
"""

import math
from datetime import datetime, timedelta

from django.core.cache import cache
from django.db import connection
from django.db.models import Count, Q, Sum
from django.db.models.functions import Coalesce
from django.utils import timezone

from campaigns import counters
from campaigns.compliance import frequency
from campaigns.dispatch.batch_states import (
    BATCHES_SHOWN,
    STATES,
    batch_counts,
    batch_description,
    batch_state,
    when,
)
from campaigns.models import Batch, Campaign, CampaignTimeline, Recipient
from campaigns.models.states import REMOTE_PROCESSED
from campaigns.tracking import charts, click_figures, failures
from campaigns.tracking.attribution import campaign_replies
from config.lib.timezones import local_time
from config.lib.wording import counted

R = Recipient.Status
S = Campaign.Status
# Grouped counts look at no more rows than this (per breakdown).
BREAKDOWN_SCAN = 25_000
BREAKDOWN_ROWS = 40
# Breakdowns are kept in the cache this long, under keys that change with
# the rows they count (so a cached one is never out of date).
CACHE_S = 3600
FAILURES_CACHE_S = 60
# The most recent timeline rows read (3 statuses x 24 hours of minutes).
TIMELINE_ROWS = 3 * 24 * 60
TIMELINE_BUCKETS = 90
# The live counters: (key, label, help).
COUNTERS = (
    ("pending", "Not sent yet", "waiting here to be handed to Sinch"),
    ("submitted", "Awaiting receipt", "handed to Sinch, no delivery report yet"),
    ("queued", "Queued on channel", "at the operator or messaging app"),
    ("delivered", "Delivered", "reached the phone (read ones included)"),
    ("read", "Read", "opened, where the channel reports it"),
    ("failed", "Failed", "see the reasons below"),
    ("excluded", "Excluded", "never sent: see the reasons below"),
    ("cancelled", "Cancelled", "stopped before sending"),
)
# The progress bar's segments, in order: (key, label).
SEGMENTS = (
    ("delivered", "Delivered"),
    ("failed", "Failed"),
    ("queued", "Queued on channel"),
    ("submitted", "Awaiting receipt"),
    ("pending", "Not sent yet"),
    ("cancelled", "Cancelled"),
)


# --- the live figures ---------------------------------------------------------


def figures(campaign: Campaign) -> dict:
    """The counters, the progress and the funnel: two small queries."""
    kept = counters.counts(campaign.pk)
    batches = Batch.objects.filter(campaign=campaign, is_test=False).aggregate(
        handed=Coalesce(Sum("size", filter=Q(status=Batch.Status.ACCEPTED)), 0),
        processed=Coalesce(
            Sum(
                "size",
                filter=Q(
                    status=Batch.Status.ACCEPTED,
                    remote_status__in=REMOTE_PROCESSED,
                ),
            ),
            0,
        ),
        batches=Count("pk"),
    )
    c = {
        "pending": kept.get(R.PENDING, 0),
        "submitted": kept.get(R.SUBMITTED, 0),
        "queued": kept.get(R.QUEUED_ON_CHANNEL, 0),
        "delivered": kept.get(R.DELIVERED, 0) + kept.get(R.READ, 0),
        "read": kept.get(R.READ, 0),
        "failed": kept.get(R.FAILED, 0),
        "excluded": kept.get(R.EXCLUDED, 0),
        "cancelled": kept.get(R.CANCELLED, 0),
    }
    audience = sum(kept.values())
    to_send = audience - c["excluded"]
    expected = to_send - c["cancelled"]
    outcome = c["delivered"] + c["failed"]
    handed = batches["handed"]
    complete = expected > 0 and outcome >= expected
    segments = {key: c[key] for key, _ in SEGMENTS}
    segments["delivered"] = c["delivered"]
    return {
        "counts": c,
        "audience": audience,
        "to_send": to_send,
        "expected": expected,
        "expected_text": f"{expected:,}",
        "audience_text": f"{audience:,}",
        "outcome": outcome,
        "handed": handed,
        "processed": batches["processed"],
        "batches": batches["batches"],
        "percent_complete": _percent(outcome, expected, complete),
        "complete": complete,
        "progress": [
            {
                "key": key,
                "label": label,
                "count": segments[key],
                "text": f"{segments[key]:,}",
                "width": _width(segments[key], to_send),
            }
            for key, label in SEGMENTS
        ],
        "milestones": [
            {
                "key": "handed",
                "label": "Submitted to Sinch",
                "count": handed,
                "text": f"{handed:,}",
                "percent": _percent(handed, expected),
            },
            {
                "key": "processed",
                "label": "Processed by Sinch",
                "count": batches["processed"],
                "text": f"{batches['processed']:,}",
                "percent": _percent(batches["processed"], expected),
            },
            {
                "key": "delivered",
                "label": "Delivered",
                "count": c["delivered"],
                "text": f"{c['delivered']:,}",
                "percent": _percent(c["delivered"], expected),
            },
        ],
    }


def _percent(n: int, of: int, complete: bool = False) -> int:
    """A whole percentage that says 100 only when it is all."""
    if of <= 0:
        return 0
    if complete or n >= of:
        return 100
    return min(99, round(100 * n / of))


def _width(n: int, of: int) -> float:
    return round(100 * n / of, 2) if of > 0 else 0.0


def funnel_steps(fig: dict) -> list[charts.Step]:
    """Statuses reached, from the current ones: a read message was delivered,
    a delivered one was queued on its channel."""
    c = fig["counts"]
    return [
        charts.Step("submitted", "Submitted", fig["handed"], "accepted by Sinch"),
        charts.Step(
            "queued",
            "Queued on channel",
            c["queued"] + c["delivered"],
            "reached the operator or app",
        ),
        charts.Step("delivered", "Delivered", c["delivered"], "reached the phone"),
        charts.Step("read", "Read", c["read"], "where the channel reports it"),
    ]


def funnel_svg(fig: dict, campaign: Campaign | None = None, *, links=None):
    """The funnel; with `campaign`, its Clicked step when it has tracked
    links (`links`: whether it has, when the caller knows)."""
    steps = funnel_steps(fig)
    if campaign is not None:
        if links is None:
            links = click_figures.has_tracked_links(campaign.pk)
        if links:
            steps.append(
                click_figures.clicked_step(campaign.pk, fig["counts"]["delivered"])
            )
    return charts.funnel(steps)


# --- the timeline -------------------------------------------------------------


def timeline_svg(campaign: Campaign):
    """Delivered, read and failed receipts over time (the latest day at most)."""
    rows = list(
        CampaignTimeline.objects.filter(
            campaign=campaign, status__in=(R.DELIVERED, R.READ, R.FAILED)
        )
        .order_by("-minute")
        .values_list("minute", "status", "count")[:TIMELINE_ROWS]
    )
    if not rows:
        return charts.timeline([], [], "per minute")
    first, last = rows[-1][0], rows[0][0]
    span = int((last - first).total_seconds() // 60) + 1
    size = max(1, math.ceil(span / TIMELINE_BUCKETS))
    n = math.ceil(span / size)
    values = {s: [0] * n for s in (R.DELIVERED, R.READ, R.FAILED)}
    for minute, status, count in rows:
        values[status][int((minute - first).total_seconds() // 60) // size] += count
    zone = campaign.send_time_zone
    labels = [
        f"{local_time(first + timedelta(minutes=i * size), zone):%H:%M}"
        for i in range(n)
    ]
    unit = "per minute" if size == 1 else f"per {size} minutes"
    if zone and zone != "UTC":
        unit += f" ({zone} time)"
    else:
        unit += " (UTC)"
    return charts.timeline(
        labels,
        [
            charts.Series("delivered", "Delivered", values[R.DELIVERED]),
            charts.Series("read", "Read", values[R.READ]),
            charts.Series("failed", "Failed", values[R.FAILED]),
        ],
        unit,
    )


# --- breakdowns ---------------------------------------------------------------


def _grouped(campaign: Campaign, status: str, field: str, total: int):
    """Counts of the campaign's `status` rows by `field`, biggest first, over at
    most BREAKDOWN_SCAN rows; and whether the scan was cut short.

    One query over a LIMITed derived table (a `pk IN (... LIMIT)` makes
    PostgreSQL scan the whole table); `field` is one of two column names.
    """
    assert field in ("failure_code", "reason")
    table = Recipient._meta.db_table
    example = ", MAX(reason)" if field == "failure_code" else ""
    inner = ", reason" if field == "failure_code" else ""
    # A campaign's excluded recipients are in no batch (the freeze and the
    # re-check leave them out): sought as such in the recipient_by_campaign
    # index, instead of reading every row for its status (no index has it).
    unbatched = "AND batch_id IS NULL " if status == R.EXCLUDED else ""
    sql = (
        f"SELECT {field}, COUNT(*) AS n{example} FROM ("
        f"SELECT {field}{inner} FROM {table} "
        f"WHERE campaign_id = %s {unbatched}AND status = %s AND is_test = %s "
        f"LIMIT %s) AS scanned GROUP BY {field} ORDER BY n DESC, {field} LIMIT %s"
    )
    with connection.cursor() as cursor:
        cursor.execute(
            sql, [campaign.pk, status, False, BREAKDOWN_SCAN, BREAKDOWN_ROWS]
        )
        rows = [tuple(row) for row in cursor.fetchall()]
    return rows, total > BREAKDOWN_SCAN


def _cached(campaign: Campaign, key: str, compute, seconds: int = CACHE_S):
    """`compute()`, kept in the cache under `key` (which names its inputs)."""
    launched = campaign.launched_at.isoformat() if campaign.launched_at else ""
    key = f"dashboard:{campaign.pk}:{launched}:{key}:{BREAKDOWN_SCAN}"
    value = cache.get(key)
    if value is None:
        value = compute()
        cache.set(key, value, seconds)
    return value


def failure_breakdown(campaign: Campaign, failed: int) -> dict:
    """Failures by reason code, explained, with their class."""
    if not failed:
        return {"rows": [], "sampled": False, "scanned": 0}
    # Failures change with every receipt (a later success may follow one):
    # the key holds the count and the time of the campaign's latest receipt;
    # a late receipt (older than that) shows within FAILURES_CACHE_S.
    stamp = campaign.last_receipt_at.isoformat() if campaign.last_receipt_at else ""
    rows, sampled = _cached(
        campaign,
        f"failures:{failed}:{stamp}",
        lambda: _grouped(campaign, R.FAILED, "failure_code", failed),
        FAILURES_CACHE_S,
    )
    scanned = min(failed, BREAKDOWN_SCAN)
    out = []
    for code, n, example in rows:
        kind = failures.describe(code)
        out.append(
            {
                "code": code or failures.BATCH_FAILED,
                "label": kind.label,
                "explanation": kind.explanation,
                "class": kind.class_label,
                "transient": kind.is_transient,
                "detail": example if not code else "",
                "count": n,
                "text": f"{n:,}",
                "percent": _percent_text(n, scanned),
                "filter_code": code,
            }
        )
    return {"rows": out, "sampled": sampled, "scanned": scanned}


def exclusion_breakdown(campaign: Campaign, excluded: int) -> dict:
    if not excluded:
        return {"rows": [], "sampled": False, "scanned": 0}
    # EXCLUDED is final: the same count is the same rows.
    rows, sampled = _cached(
        campaign,
        f"exclusions:{excluded}",
        lambda: _grouped(campaign, R.EXCLUDED, "reason", excluded),
    )
    scanned = min(excluded, BREAKDOWN_SCAN)
    return {
        "rows": [
            {
                "reason": reason or "no reason given",
                "count": n,
                "text": f"{n:,}",
                "percent": _percent_text(n, scanned),
            }
            for reason, n in rows
        ],
        "sampled": sampled,
        "scanned": scanned,
    }


def cap_excluded(campaign: Campaign, excluded: int, exclusions: dict) -> int:
    """How many recipients the frequency cap excluded at the freeze: from
    the breakdown when it saw every exclusion and every reason, else one
    exact count over the campaign's EXCLUDED rows, cached like the breakdown."""
    if not exclusions["sampled"] and len(exclusions["rows"]) < BREAKDOWN_ROWS:
        return sum(
            row["count"]
            for row in exclusions["rows"]
            if frequency.is_cap_reason(row["reason"])
        )
    return _cached(
        campaign,
        f"cap-excluded:{excluded}",
        lambda: frequency.excluded_count(campaign),
    )


def _percent_text(n: int, of: int) -> str:
    if not of:
        return ""
    value = 100 * n / of
    return f"{value:.0f} %" if value >= 1 else "< 1 %"


# --- batches ------------------------------------------------------------------


def batch_overview(campaign: Campaign, now: datetime | None = None) -> dict:
    """Batch counts by state (the dispatch page's wording) and the first rows."""
    now = now or timezone.now()
    zone = campaign.send_time_zone
    counts = batch_counts(campaign, now)
    total = sum(n for n, _ in counts.values())
    rows = [
        {
            "batch": b,
            "state": batch_state(b, now),
            "description": batch_description(b, zone, now),
        }
        for b in Batch.objects.filter(campaign=campaign, is_test=False).order_by(
            "sequence"
        )[:BATCHES_SHOWN]
    ]
    return {
        "total": total,
        "counts": [
            {"state": s, "batches": counts[s.key][0], "messages": counts[s.key][1]}
            for s in STATES
            if counts[s.key][0]
        ],
        "rows": rows,
        "more": max(0, total - len(rows)),
    }


# --- the whole page and the live update --------------------------------------


def stalled_note(campaign: Campaign) -> str:
    return campaign.receipts_stalled


def headline(campaign: Campaign, fig: dict) -> str:
    """One sentence on where the campaign stands."""
    c = fig["counts"]
    if campaign.status == S.DRAFT:
        return "Not launched yet."
    if campaign.status == S.LAUNCHING:
        return "Freezing the recipients; sending starts when that is done."
    if fig["expected"] <= 0:
        if c["cancelled"]:
            return "Cancelled before any message was sent."
        return "No message to send: every recipient was excluded."
    if fig["complete"]:
        return (
            f"Finished: every message has an outcome — {c['delivered']:,} "
            f"delivered, {c['failed']:,} failed."
        )
    waiting = fig["expected"] - fig["outcome"]
    return (
        f"{fig['outcome']:,} of {counted(fig['expected'], 'message')} "
        f"{'has' if 1 in (fig['outcome'], fig['expected']) else 'have'} an outcome; "
        f"waiting for {waiting:,}."
    )


def live(campaign: Campaign) -> dict:
    """What the page's script polls: figures and both charts, as JSON data."""
    fig = figures(campaign)
    zone = campaign.send_time_zone
    return {
        "status": campaign.status,
        "status_label": campaign.get_status_display(),
        "headline": headline(campaign, fig),
        "counts": fig["counts"],
        "percent_complete": fig["percent_complete"],
        "complete": fig["complete"],
        "progress": fig["progress"],
        "milestones": fig["milestones"],
        "funnel_svg": str(funnel_svg(fig, campaign)),
        "timeline_svg": str(timeline_svg(campaign)),
        "stalled": stalled_note(campaign),
        "last_receipt": when(campaign.last_receipt_at, zone) or "none yet",
        "updated": f"{local_time(timezone.now(), zone):%H:%M:%S}",
    }


def page(campaign: Campaign) -> dict:
    """Everything the dashboard page shows."""
    fig = figures(campaign)
    zone = campaign.send_time_zone
    c = fig["counts"]
    exclusions = exclusion_breakdown(campaign, c["excluded"])
    link_clicks = click_figures.dashboard_clicks(campaign, c["delivered"])
    return {
        "fig": fig,
        "headline": headline(campaign, fig),
        "counters": [
            {
                "key": key,
                "label": label,
                "help": help,
                "count": c[key],
                "text": f"{c[key]:,}",
            }
            for key, label, help in COUNTERS
        ],
        "funnel_svg": funnel_svg(fig, campaign, links=link_clicks is not None),
        "clicks": link_clicks,
        "timeline_svg": timeline_svg(campaign),
        "failures": failure_breakdown(campaign, c["failed"]),
        "exclusions": exclusions,
        "cap_excluded": cap_excluded(campaign, c["excluded"], exclusions),
        "replies": campaign_replies(campaign.pk),
        "batches": batch_overview(campaign),
        "stalled": stalled_note(campaign),
        "last_receipt": when(campaign.last_receipt_at, zone) or "none yet",
        "launched_at": when(campaign.launched_at, zone),
        "send_time": when(campaign.send_at, zone),
        "updated": f"{local_time(timezone.now(), zone):%H:%M:%S}",
    }
