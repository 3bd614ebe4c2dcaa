"""Sinch's ingress queue: room for scheduled campaigns, and their waves.

Sinch queues at most 500,000 messages per app and drains them to the
channels at SINCH_DRAIN_RATE_PER_S (sinch.wire). Messages sent now count
against SINCH_MAX_IN_FLIGHT_MESSAGES while Sinch processes them
(campaigns.dispatch.in_flight); a scheduled batch counts against the same
cap **for its send time**: its messages enter the queue in the 5-minute slot
Sinch rounds its send_after up to, and leave it at the drain rate.

`plan_for` lays a scheduled campaign out in waves: the first at the send
time with the room left there (what other scheduled campaigns and the
messages in flight now leave of the cap, this slot and every later one),
each further wave once the previous has drained, in whole batches. A
campaign whose last wave would start more than SINCH_INGRESS_MAX_SPREAD_HOURS
after its send time, or after its ttl, is not launched (`Plan.problem`).
The launch page shows the plan, the launch stores it on the campaign
(`Campaign.ingress_waves`), the freeze gives each batch its wave's send time
(`Batch.wave_at`, kept by a replacement batch) and the drain sends it as
send_after.
"""

import math
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from django.conf import settings
from django.db.models import Count, Sum
from django.utils import timezone

from campaigns.compliance import send_times
from campaigns.compliance.quiet_hours import NO_RULES, Rules
from campaigns.dispatch import in_flight
from campaigns.models import Batch, Campaign
from campaigns.models.states import ACTIVE
from sinch import wire

SLOT = wire.SEND_AFTER_ROUNDING
EPOCH = datetime(2000, 1, 1, tzinfo=UTC)


def slot_of(moment: datetime) -> datetime:
    """The 5-minute mark Sinch rounds a send time up to."""
    return wire.rounded_send_after(moment)


def drain_rate() -> float:
    """Messages per second Sinch drains for the app."""
    return max(float(settings.SINCH_DRAIN_RATE_PER_S), 1e-6)


def cap() -> int:
    return max(0, settings.SINCH_MAX_IN_FLIGHT_MESSAGES)


class Queue:
    """The app's ingress queue as projected from now: messages arriving at
    slots, drained at `rate` per second."""

    def __init__(self, now: datetime, *, initial: int = 0, rate: float, limit: int):
        self.now = now
        self.rate = rate
        self.limit = limit
        self.loads: dict[datetime, int] = defaultdict(int)
        self.loads[now] += initial

    def add(self, at: datetime, messages: int) -> None:
        """`messages` due at `at` (they arrive at the slot Sinch rounds it to)."""
        self.loads[slot_of(at)] += messages

    def _trajectory(self, extra: datetime | None = None) -> list[tuple]:
        """(time, messages queued just after that time's arrivals) by time."""
        points = sorted(set(self.loads) | ({extra} if extra else set()))
        out, queued, last = [], 0.0, None
        for point in points:
            if last is not None:
                gone = self.rate * (point - last).total_seconds()
                queued = max(0.0, queued - gone)
            queued += self.loads.get(point, 0)
            out.append((point, queued))
            last = point
        return out

    def room_at(self, at: datetime) -> int:
        """Messages that may still arrive at `at` without the queue passing
        the limit then or later (what they add stays until the queue would
        have run empty)."""
        at = slot_of(at)
        trajectory = self._trajectory(at)
        room = None
        idle = 0.0
        previous = None
        for point, queued in trajectory:
            if point < at:
                previous = (point, queued)
                continue
            if room is None:
                room = self.limit - queued
            else:
                gone = self.rate * (point - previous[0]).total_seconds()
                idle += max(0.0, gone - previous[1])
                room = min(room, self.limit - queued + idle)
            previous = (point, queued)
        return max(0, int(room or 0))

    def drained_by(self, at: datetime) -> datetime:
        """When the messages queued at `at` (its arrivals included) are gone."""
        at = slot_of(at)
        queued = dict(self._trajectory(at)).get(at, 0.0)
        return at + timedelta(seconds=queued / self.rate)


@dataclass(frozen=True)
class Wave:
    """Batches sent at `at`; `group`: the send group (recipients of one send
    instant, campaigns.compliance.send_times) they belong to ("": the
    campaign's send time, as before send groups existed)."""

    at: datetime
    recipients: int
    batches: int
    group: str = ""

    def to_json(self) -> dict:
        data = {
            "at": self.at.isoformat(),
            "recipients": self.recipients,
            "batches": self.batches,
        }
        if self.group:
            data["group"] = self.group
        return data

    @classmethod
    def from_json(cls, data: dict) -> "Wave":
        return cls(
            datetime.fromisoformat(data["at"]),
            int(data.get("recipients", 0)),
            int(data.get("batches", 0)),
            str(data.get("group") or ""),
        )


@dataclass
class Plan:
    """A scheduled campaign's waves; `problem` says why it may not go."""

    send_at: datetime
    recipients: int
    waves: list[Wave] = field(default_factory=list)
    finish_at: datetime | None = None
    room: int = 0
    problem: str = ""

    @property
    def staggered(self) -> bool:
        return len(self.waves) > 1

    def to_json(self) -> list[dict]:
        return [wave.to_json() for wave in self.waves]


def current_queue(
    now: datetime, *, exclude: int | None = None, rate: float | None = None
) -> Queue:
    """The queue as the launched campaigns leave it: the messages in flight
    now (batches sent without a wave) and every wave of the scheduled
    campaigns still active (`exclude`: a campaign's own id)."""
    rate = rate or drain_rate()
    queue = Queue(
        now,
        initial=in_flight.in_flight_messages(without_waves=True),
        rate=rate,
        limit=cap(),
    )
    since = now - timedelta(seconds=cap() / rate) - SLOT
    # A campaign sent when launched has waves only for recipients held by
    # quiet hours.
    campaigns = Campaign.objects.filter(status__in=ACTIVE).exclude(
        send_at__isnull=True, ingress_waves=[]
    )
    if exclude is not None:
        campaigns = campaigns.exclude(pk=exclude)
    for send_at, waves, presend in campaigns.values_list(
        "send_at", "ingress_waves", "presend"
    ):
        planned = [Wave.from_json(w) for w in waves or []]
        if not planned and send_at is None:
            continue
        if not planned:  # launched before waves existed: all at its send time
            ok = (presend or {}).get("ok") or 0
            planned = [Wave(send_at, ok, math.ceil(ok / wire.MAX_RECIPIENTS))]
        for wave in planned:
            if wave.at >= since:
                queue.add(wave.at, wave.recipients)
    return queue


def plan_waves(
    recipients: int,
    send_at: datetime,
    queue: Queue,
    *,
    latest: datetime | None = None,
    group: str = "",
    rules: Rules = NO_RULES,
) -> Plan:
    """Lay `recipients` out in waves from `send_at` on, adding them to `queue`.

    Each wave takes the room left in its slot, in whole batches; the next is
    tried once it has drained (at least one slot later), and never in the
    quiet hours of its recipients (`rules`: it moves to the next slot they
    allow). `latest`: no wave may start after it (the plan then has a
    problem and stops). The waves are tagged with `group`.
    """
    plan = Plan(send_at=send_at, recipients=recipients)
    plan.room = queue.room_at(send_at)
    left = recipients
    batches_left = math.ceil(recipients / wire.MAX_RECIPIENTS)
    at = send_at
    while left > 0:
        slot = slot_of(at)
        if latest is not None and slot > slot_of(latest):
            plan.problem = _too_long(plan, left)
            return plan
        fit = min(queue.room_at(slot) // wire.MAX_RECIPIENTS, batches_left)
        if fit == 0:
            at = _allowed(slot + SLOT, rules)
            continue
        count = min(fit * wire.MAX_RECIPIENTS, left)
        queue.add(slot, count)
        plan.waves.append(Wave(at if not plan.waves else slot, count, fit, group))
        left -= count
        batches_left -= fit
        plan.finish_at = queue.drained_by(slot)
        at = _allowed(slot + max(SLOT, timedelta(seconds=count / queue.rate)), rules)
    return plan


def _allowed(at: datetime, rules: Rules) -> datetime:
    """`at`, or the next slot quiet hours allow when it falls in them."""
    if rules.always or rules.allows(slot_of(at)):
        return at
    return rules.next_allowed(at)


def latest_start(campaign: Campaign, start: datetime | None = None) -> datetime:
    """No wave of the campaign (of its group starting at `start`, default
    the send time) may start after this."""
    spread = timedelta(hours=settings.SINCH_INGRESS_MAX_SPREAD_HOURS)
    if campaign.ttl_seconds:
        spread = min(spread, timedelta(seconds=campaign.ttl_seconds))
    return (start or campaign.send_at) + spread


def plan_for(campaign: Campaign, now: datetime | None = None) -> Plan | None:
    """The waves the campaign would go in if launched now (None for a
    campaign sent when launched with nobody held by quiet hours: the
    in-flight cap paces it).

    Each send group of the pre-send check (recipients of one send instant:
    local time, quiet hours) is planned from its own instant on; a group
    sent at once ("now") of a scheduled campaign from now on.
    """
    now = now or timezone.now()
    groups = send_times.stored_groups(campaign)
    if groups is None:  # a check from before send groups: all at the send time
        if campaign.send_at is None:
            return None
        ok = (campaign.presend or {}).get("ok") or 0
        groups = [send_times.Group("", campaign.send_at, ok, NO_RULES)]
    if campaign.send_at is None:
        groups = [g for g in groups if g.at is not None]
        if not groups:
            return None
    queue = current_queue(now, exclude=campaign.pk)
    plan = Plan(send_at=campaign.send_at or now, recipients=0)
    for n, group in enumerate(sorted(groups, key=lambda g: g.at or now)):
        start = max(group.at or now, now)
        part = plan_waves(
            group.recipients,
            start,
            queue,
            latest=latest_start(campaign, start),
            group=group.key,
            rules=group.rules,
        )
        plan.recipients += group.recipients
        plan.waves.extend(part.waves)
        if n == 0:
            plan.room = part.room
        if part.finish_at and (
            plan.finish_at is None or part.finish_at > plan.finish_at
        ):
            plan.finish_at = part.finish_at
        if part.problem and not plan.problem:
            plan.problem = part.problem
    return plan


def _too_long(plan: Plan, left: int) -> str:
    placed = plan.recipients - left
    hours = settings.SINCH_INGRESS_MAX_SPREAD_HOURS
    return (
        f"Sinch's queue has no room for this campaign in time: at most "
        f"{settings.SINCH_MAX_IN_FLIGHT_MESSAGES:,} messages may wait at Sinch "
        f"(SINCH_MAX_IN_FLIGHT_MESSAGES), drained at "
        f"{settings.SINCH_DRAIN_RATE_PER_S:g} per second, and other scheduled "
        f"campaigns share it. In waves, {placed:,} of {plan.recipients:,} "
        f"recipients would go within {hours:g} hours "
        "(SINCH_INGRESS_MAX_SPREAD_HOURS) of the send time"
        " or within the campaign's ttl. Choose a later or quieter send time, "
        "a longer ttl, or a smaller audience."
    )


# --- the freeze and the drain -----------------------------------------------


def waves_of(campaign: Campaign) -> list[Wave]:
    return [Wave.from_json(w) for w in campaign.ingress_waves or []]


def wave_for(
    campaign: Campaign,
    sequence: int,
    group: str = "",
    *,
    start: datetime | None = None,
    rules: Rules = NO_RULES,
) -> datetime | None:
    """The send time of the campaign's batch number `sequence` (1, 2, ...)
    of send group `group` ("": the campaign's send time; `start`: the
    group's instant, None for "now"): its wave's, in order. A batch beyond
    the plan (the audience grew, or the group is new since the pre-send
    check) gets the next slot with room from `start` on that quiet hours
    (`rules`) allow, added to the plan. None: sent at once."""
    if campaign.send_at is None and start is None:
        return None  # sent when launched: the in-flight cap paces it
    default = group_of(campaign, "")
    group = group or default
    waves = waves_of(campaign)
    if not waves and group == default:
        return campaign.send_at
    seen = 0
    for wave in waves:
        if group_of(campaign, wave.group) != group:
            continue
        seen += wave.batches
        if sequence <= seen:
            return wave.at
    if start is None and group == default:
        start = campaign.send_at
    return _extend(campaign, waves, group, start, rules)


def group_of(campaign: Campaign, group: str) -> str:
    """A wave's group: its own, or (stored before groups) the send time's."""
    if group:
        return group
    return campaign.send_at.isoformat() if campaign.send_at else send_times.NOW


def _extend(
    campaign: Campaign,
    waves: list[Wave],
    group: str,
    start: datetime | None,
    rules: Rules,
) -> datetime:
    now = timezone.now()
    queue = current_queue(now, exclude=campaign.pk)
    for wave in waves:
        queue.add(wave.at, wave.recipients)
    mine = [w for w in waves if group_of(campaign, w.group) == group]
    last = mine[-1] if mine else None
    begin = max(last.at if last else (start or now), now)
    extra = plan_waves(wire.MAX_RECIPIENTS, _allowed(begin, rules), queue, rules=rules)
    extra_wave = extra.waves[0]
    if last is not None and slot_of(extra_wave.at) == slot_of(last.at):
        merged = Wave(
            last.at, last.recipients + extra_wave.recipients, last.batches + 1
        )
        waves[waves.index(last)] = Wave(
            merged.at, merged.recipients, merged.batches, last.group
        )
        at = last.at
    else:
        at = extra_wave.at if last is None else slot_of(extra_wave.at)
        waves.append(Wave(at, extra_wave.recipients, 1, group))
    campaign.ingress_waves = [w.to_json() for w in waves]
    Campaign.objects.filter(pk=campaign.pk).update(ingress_waves=campaign.ingress_waves)
    return at


def record_frozen(campaign: Campaign) -> None:
    """After the freeze: each wave holds the recipients actually frozen (two
    groups' waves at one time share its batches: the first keeps them)."""
    if not campaign.ingress_waves:
        return
    frozen = {
        at: (n, batches)
        for at, n, batches in Batch.objects.filter(campaign=campaign, is_test=False)
        .values("wave_at")
        .annotate(n=Sum("size"), batches=Count("pk"))
        .values_list("wave_at", "n", "batches")
    }
    waves = []
    for wave in waves_of(campaign):
        n, batches = frozen.pop(wave.at, (0, 0))
        if n:
            waves.append(Wave(wave.at, n, batches, wave.group))
    campaign.ingress_waves = [w.to_json() for w in waves]
    Campaign.objects.filter(pk=campaign.pk).update(ingress_waves=campaign.ingress_waves)
