"""The home page's calendar of scheduled and held campaigns.

A week or a month of days (weeks start on Monday), each with the campaigns
that send on it: a campaign shows on its send day, and one whose sending
is spread into waves (each recipient's local time, quiet hours, Sinch's
queue) shows on every day one of its waves goes out. Days are those of the
campaign's send time zone (UTC when it has none). Held campaigns show with
why: paused, waiting for a launch approval, or held here by quiet hours.

One query over the campaigns that may fall in the range (capped); nothing
reads recipients or batches.
"""

import calendar as stdlib_calendar
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta

from django.db.models import Exists, OuterRef, Q
from django.utils import timezone

from campaigns.models import Campaign, LaunchApproval
from config.lib.timezones import local_time

S = Campaign.Status
WEEK, MONTH = "week", "month"
VIEWS = (WEEK, MONTH)
# The most campaigns one calendar page reads.
CAP = 500
# A campaign's waves rarely run longer than this after its send time: the
# query looks this far back for campaigns still sending into the range.
WAVES_SPAN = timedelta(days=8)
SHOWN_STATES = (S.SCHEDULED, S.LAUNCHING, S.SUBMITTING, S.PAUSED, S.SUBMITTED)


@dataclass
class Entry:
    pk: int
    name: str
    state: str  # scheduled, sending, paused, approval, quiet-hours, wave
    label: str
    time: str


@dataclass
class Day:
    day: date
    today: bool
    in_month: bool
    entries: list[Entry] = field(default_factory=list)


@dataclass
class Calendar:
    view: str
    anchor: date
    start: date
    end: date  # exclusive
    title: str
    prev: date
    next: date
    today: date
    weeks: list[list[Day]]
    count: int
    capped: bool


def parse(view: str | None, day: str | None, today: date) -> tuple[str, date]:
    """The view and the day asked for in the query string; bad input falls
    back to this week / today."""
    view = view if view in VIEWS else WEEK
    try:
        anchor = date.fromisoformat(day) if day else today
    except ValueError:
        anchor = today
    return view, anchor


def _range(view: str, anchor: date) -> tuple[date, date, date, date, str]:
    """(first shown day, end exclusive, prev anchor, next anchor, title)."""
    if view == MONTH:
        first = anchor.replace(day=1)
        days = stdlib_calendar.monthrange(first.year, first.month)[1]
        after = first + timedelta(days=days)
        start = first - timedelta(days=first.weekday())
        end = after + timedelta(days=(7 - after.weekday()) % 7)
        prev = (first - timedelta(days=1)).replace(day=1)
        return start, end, prev, after, f"{first:%B %Y}"
    start = anchor - timedelta(days=anchor.weekday())
    end = start + timedelta(days=7)
    last = end - timedelta(days=1)
    title = f"Week of {start:%d %b} to {last:%d %b %Y}"
    return start, end, start - timedelta(days=7), end, title


def _candidates(start: date, end: date):
    """Campaigns that may send in [start, end): one query, capped."""
    lo = datetime.combine(start, datetime.min.time(), tzinfo=UTC)
    lo -= timedelta(days=1)  # a send day in a zone ahead of UTC
    hi = datetime.combine(end, datetime.min.time(), tzinfo=UTC)
    hi += timedelta(days=1)
    waiting = LaunchApproval.objects.filter(
        campaign=OuterRef("pk"),
        withdrawn_at__isnull=True,
        decision=LaunchApproval.Decision.PENDING,
    )
    in_range = Q(send_at__gte=lo, send_at__lt=hi)
    still_sending = Q(send_at__gte=lo - WAVES_SPAN, send_at__lt=hi) & ~Q(
        ingress_waves=[]
    )
    shown = Q(status__in=SHOWN_STATES) | Q(status=S.DRAFT, awaiting=True)
    return (
        Campaign.objects.annotate(awaiting=Exists(waiting))
        .filter(shown, in_range | still_sending)
        .order_by("send_at", "pk")
        .only(
            "pk",
            "name",
            "status",
            "send_at",
            "send_time_zone",
            "send_in_local_time",
            "ingress_waves",
        )[: CAP + 1]
    )


def _wave_times(campaign: Campaign) -> list[datetime]:
    times = []
    for wave in campaign.ingress_waves or []:
        try:
            times.append(datetime.fromisoformat(wave["at"]))
        except (KeyError, TypeError, ValueError):
            continue
    return times


def entries_of(campaign: Campaign, now: datetime) -> dict[date, Entry]:
    """The days `campaign` sends on, each with how it shows that day."""
    zone = campaign.send_time_zone or "UTC"
    send_day = local_time(campaign.send_at, zone).date() if campaign.send_at else None
    if campaign.status == S.DRAFT:
        state, label = "approval", "waiting for launch approval"
    elif campaign.status == S.PAUSED:
        state, label = "paused", "paused"
    elif campaign.status == S.SCHEDULED and (
        campaign.send_at is None or campaign.send_at > now
    ):
        state, label = "scheduled", "scheduled"
    else:
        state, label = "sending", "sending"
    days: dict[date, Entry] = {}
    if send_day is not None:
        at = local_time(campaign.send_at, zone)
        days[send_day] = Entry(
            campaign.pk, campaign.name, state, label, f"{at:%H:%M} {zone}"
        )
    for at in _wave_times(campaign):
        local = local_time(at, zone)
        if local.date() in days:
            continue
        if campaign.status == S.PAUSED:
            wave_state, wave_label = "paused", "paused (wave)"
        elif campaign.send_in_local_time:
            wave_state, wave_label = "wave", "local-time wave"
        else:
            wave_state, wave_label = "quiet-hours", "held by quiet hours"
        days[local.date()] = Entry(
            campaign.pk, campaign.name, wave_state, wave_label, f"{local:%H:%M} {zone}"
        )
    return days


def build(view: str, anchor: date, now: datetime | None = None) -> Calendar:
    now = now or timezone.now()
    today = timezone.localdate(now)
    start, end, prev, nxt, title = _range(view, anchor)
    month = anchor.month if view == MONTH else None
    all_days = {
        start + timedelta(days=i): Day(
            start + timedelta(days=i),
            today=start + timedelta(days=i) == today,
            in_month=month is None or (start + timedelta(days=i)).month == month,
        )
        for i in range((end - start).days)
    }
    found = list(_candidates(start, end))
    capped = len(found) > CAP
    shown = set()
    for campaign in found[:CAP]:
        for day, entry in entries_of(campaign, now).items():
            if day in all_days:
                all_days[day].entries.append(entry)
                shown.add(campaign.pk)
    ordered = [all_days[d] for d in sorted(all_days)]
    weeks = [ordered[i : i + 7] for i in range(0, len(ordered), 7)]
    return Calendar(
        view, anchor, start, end, title, prev, nxt, today, weeks, len(shown), capped
    )
