"""When each recipient's message goes: the campaign's time, their local time,
and their quiet hours.

`SendTimes(campaign, now).of(contact_zone, identity)` gives a recipient's
`SendTime`: the instant the message may arrive (None: now, for a campaign
sent when launched and a recipient inside their window), the zone whose
local time it is, how that zone was found, and whether quiet hours held it.

- A campaign sent when launched sends everyone inside their window now and
  holds the others until it opens.
- A scheduled campaign sends at its send time, or (quiet hours) at the
  recipient's next allowed moment.
- A local-time campaign (`send_in_local_time`) sends at the send time's
  wall-clock time (date and time in `send_time_zone`) in each recipient's
  zone; a recipient with several candidate zones uses the campaign's
  `multi_zone_rule`; a zone whose local time has passed at the launch is
  sent at the first allowed moment.

Quiet hours (campaigns.compliance.quiet_hours) hold marketing campaigns and
transactional ones not exempted. Answers are memoised per number prefix and
contact zone, so a million recipients cost a few dict lookups each.
`SendPlanSummary` counts them for the pre-send check: recipients per zone,
held ones, and the groups of one send instant the launch plans waves for.
"""

from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from django.utils import timezone
from phonenumbers.tzdata import TIMEZONE_LONGEST_PREFIX

from campaigns.compliance import exemptions, quiet_hours
from campaigns.compliance.quiet_hours import NO_RULES, Rules
from campaigns.models import Campaign
from contacts import time_zones as zone_data
from contacts.time_zones import RecipientZone, ZoneFinder

Rule = Campaign.MultiZoneRule
# Characters of an identity that decide its answer: "+" and the digits the
# time-zone data, the country lookup and prefix overrides read (the country of
# a shared calling code is looked up once per such prefix, on a whole number).
KEY_CHARS = 1 + TIMEZONE_LONGEST_PREFIX
# Identity prefixes remembered at most (a world-wide million has ~100,000).
KEY_CACHE = 20_000


@dataclass(frozen=True)
class SendTime:
    at: datetime | None  # None: now
    zone: str  # the zone whose local time applies
    recipient: RecipientZone
    rules: Rules
    held: bool = False  # quiet hours moved it
    passed: bool = False  # local time: the zone's send time had passed

    @property
    def local(self) -> datetime | None:
        """`at` on the recipient's wall clock."""
        if self.at is None:
            return None
        return self.at.astimezone(zone_data.zone(self.zone))


def fallback_zone(campaign: Campaign) -> str:
    """The zone of recipients with no known or inferable zone."""
    if zone_data.known_zone(campaign.fallback_time_zone):
        return campaign.fallback_time_zone
    return zone_data.default_fallback_zone(campaign.send_time_zone)


class SendTimes:
    """Send times of one campaign's recipients, at `now` (one walk)."""

    def __init__(self, campaign: Campaign, now: datetime | None = None) -> None:
        self.now = now or timezone.now()
        self.campaign = campaign
        self.fallback = fallback_zone(campaign)
        self.finder = ZoneFinder(self.fallback)
        self.quiet = exemptions.quiet_hours_apply(campaign)
        self.rule = campaign.multi_zone_rule
        self.local_wall = None
        if campaign.send_in_local_time and campaign.send_at is not None:
            self.local_wall = campaign.local_send_time
        self.reference = campaign.send_at or self.now
        self._by_key: dict[tuple[str, str], SendTime] = {}
        self._by_deciding: dict[tuple[str, str], SendTime] = {}
        # Proper prefixes of the quiet-hours prefix overrides (+1305: "1",
        # "13", "130"): a number starting so needs more digits to decide.
        self.stems = frozenset(
            prefix[:n]
            for prefix in (quiet_hours.policy().by_prefix if self.quiet else ())
            for n in range(len(prefix))
        )
        self._by_zone: dict[tuple, SendTime] = {}

    def of(self, contact_zone: str | None, identity: str | None) -> SendTime:
        """The send time of a recipient (the contact's `time_zone`, its
        identity on the campaign's channel)."""
        identity = identity or ""
        key = (contact_zone or "", identity[:KEY_CHARS] if identity[:1] == "+" else "")
        found = self._by_key.get(key)
        if found is None:
            # Numbers sharing the digits that decide the answer (often just
            # the area code) share one computation.
            deciding = (
                key[0],
                (zone_data.deciding_digits(key[1][1:], self.stems) if key[1] else ""),
            )
            found = self._by_deciding.get(deciding)
            if found is None:
                # Computed from the whole number: the country of a calling
                # code several countries share (+1, +44) is known only from a
                # valid number, never from its first digits; the key still
                # decides it.
                found = self._by_deciding[deciding] = self._compute(
                    key[0], identity if key[1] else ""
                )
            if len(self._by_key) >= KEY_CACHE:  # memory stays bounded
                self._by_key.clear()
            self._by_key[key] = found
        return found

    def _compute(self, contact_zone: str, prefix: str) -> SendTime:
        recipient = self.finder.find(contact_zone, prefix or None)
        main = self._main_zone(recipient)
        digits = prefix[1:]
        rules = (
            quiet_hours.rules_for(recipient, digits, main) if self.quiet else NO_RULES
        )
        memo = (recipient, main, rules)
        found = self._by_zone.get(memo)
        if found is None:
            found = self._by_zone[memo] = self._send_time(recipient, main, rules)
        return found

    def _main_zone(self, recipient: RecipientZone) -> str:
        if len(recipient.zones) == 1:
            return recipient.zones[0]
        if self.rule == Rule.FALLBACK:
            return self.fallback

        def offset(name: str):
            return self.reference.astimezone(zone_data.zone(name)).utcoffset()

        sign = -1 if self.rule == Rule.EAST else 1
        # Ties (two zones of one offset) go to the first name: stable answers.
        return min(recipient.zones, key=lambda name: (sign * offset(name), name))

    def _send_time(self, recipient: RecipientZone, main: str, rules: Rules) -> SendTime:
        passed = False
        if self.local_wall is not None:
            base = _instant(self.local_wall, main)
            if base <= self.now:
                base, passed = self.now, True
        else:
            base = self.campaign.send_at or self.now
        at: datetime | None = base
        held = False
        if not rules.always:
            allowed = rules.next_allowed(base)
            if allowed != quiet_hours.slot_of(base):
                at, held = allowed, True
        if at is not None and not held and (self.campaign.send_at is None or passed):
            at = None  # inside the window now: sent at once
        return SendTime(at, main, recipient, rules, held, passed)


def _instant(wall: datetime, zone_name: str) -> datetime:
    """The naive wall-clock time `wall` in `zone_name` as a UTC instant (a
    time the clocks skip reads as the same time after the change)."""
    return wall.replace(tzinfo=zone_data.zone(zone_name)).astimezone(UTC)


NOW = "now"


def group_key(at: datetime | None) -> str:
    """How a send instant names its group ("now": sent at once)."""
    return at.isoformat() if at is not None else NOW


@dataclass
class _Group:
    recipients: int = 0
    held: int = 0
    zones: Counter = field(default_factory=Counter)
    # Distinct Rules by identity: SendTimes hands out one object per answer.
    rules: dict[int, Rules] = field(default_factory=dict)

    def union(self) -> Rules:
        merged = NO_RULES
        for rules in self.rules.values():
            merged = merged.union(rules)
        return merged


class SendPlanSummary:
    """Counts of send times, as the pre-send check stores them.

    `add` only counts the (memoised, so few) SendTime objects; the zones and
    groups are tallied from those counts when read.
    """

    def __init__(self) -> None:
        self._counts: dict[int, int] = {}
        self._objects: dict[int, SendTime] = {}

    def add(self, send_time: SendTime) -> None:
        key = id(send_time)
        count = self._counts.get(key)
        if count is None:
            self._objects[key] = send_time
            self._counts[key] = 1
        else:
            self._counts[key] = count + 1

    def _tally(self) -> None:
        self.zones: dict[str, dict[str, Any]] = {}
        self.groups: dict[datetime | None, _Group] = {}
        for key, n in self._counts.items():
            send_time = self._objects[key]
            entry = self.zones.get(send_time.zone)
            if entry is None:
                entry = self.zones[send_time.zone] = {
                    "recipients": 0,
                    "held": 0,
                    "sources": Counter(),
                    "held_until": None,
                    "passed": 0,
                }
            entry["recipients"] += n
            entry["sources"][send_time.recipient.source] += n
            if send_time.passed:
                entry["passed"] += n
            group = self.groups.get(send_time.at)
            if group is None:
                group = self.groups[send_time.at] = _Group()
            group.recipients += n
            group.zones[send_time.zone] += n
            group.rules.setdefault(id(send_time.rules), send_time.rules)
            if send_time.held:
                group.held += n
                entry["held"] += n
                until = entry["held_until"]
                if until is None or send_time.at > until:
                    entry["held_until"] = send_time.at

    def to_json(self) -> dict[str, Any]:
        self._tally()
        zones = {
            name: {
                "recipients": e["recipients"],
                "held": e["held"],
                "passed": e["passed"],
                "held_until": e["held_until"].isoformat() if e["held_until"] else None,
                "sources": dict(e["sources"]),
            }
            for name, e in sorted(self.zones.items(), key=lambda i: -i[1]["recipients"])
        }
        groups = [
            {
                "key": group_key(at),
                "at": at.isoformat() if at else None,
                "recipients": g.recipients,
                "held": g.held,
                "zones": dict(g.zones.most_common(20)),
                "rules": g.union().to_json(),
            }
            for at, g in sorted(
                self.groups.items(), key=lambda i: (i[0] is not None, i[0] or 0)
            )
        ]
        return {
            "zones": zones,
            "groups": groups,
            "held": sum(g.held for g in self.groups.values()),
        }


@dataclass(frozen=True)
class Group:
    """A stored group of recipients with one send instant."""

    key: str
    at: datetime | None
    recipients: int
    rules: Rules

    @classmethod
    def from_json(cls, data: dict) -> "Group":
        at = datetime.fromisoformat(data["at"]) if data.get("at") else None
        return cls(
            data.get("key") or group_key(at),
            at,
            int(data.get("recipients") or 0),
            Rules.from_json(data.get("rules") or []),
        )


def stored_groups(campaign: Campaign) -> list[Group] | None:
    """The send groups of the last pre-send check (None: a check from
    before send groups were stored)."""
    plan = (campaign.presend or {}).get("send_times")
    if not plan or "groups" not in plan:
        return None
    return [Group.from_json(g) for g in plan["groups"]]
