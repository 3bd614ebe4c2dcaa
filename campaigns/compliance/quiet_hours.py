"""Quiet hours: when a marketing message may arrive, in the recipient's time.

The policy (settings, parsed once per distinct value, errors naming the bad
entry): a daily window QUIET_HOURS ("08:00-21:00", start included, end
excluded), QUIET_HOURS_OVERRIDES by number prefix, IANA zone or ISO country
(the most specific wins: prefix, then zone, then country, then the default)
and QUIET_HOURS_HOLIDAYS per country (quiet all day).

A recipient's `Rules` hold one `Constraint` per candidate zone: a message may
arrive at an instant only when it is inside the window in every one of them.
`Rules.next_allowed(instant)` is the first 5-minute slot at or after the
instant (Sinch rounds send_after up to 5 minutes, so the rounded time is what
arrives) that all constraints allow; daylight-saving days follow zoneinfo.
Recipients outside their window are held until then, never dropped.
"""

import re
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from functools import cache

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured

from contacts import time_zones as zone_data
from contacts.time_zones import RecipientZone
from sinch.wire import SEND_AFTER_ROUNDING as SLOT
from sinch.wire import rounded_send_after as slot_of

DAY_MINUTES = 24 * 60
# Searched this far ahead for a moment every candidate zone allows; past it,
# the candidates share no window and the recipient's main zone decides.
SEARCH_DAYS = 14

_WINDOW = re.compile(r"^\s*(\d{1,2}):(\d{2})\s*-\s*(\d{1,2}):(\d{2})\s*$")
_COUNTRY = re.compile(r"^[A-Z]{2}$")
_PREFIX = re.compile(r"^\+\d{1,9}$")


@dataclass(frozen=True, order=True)
class Window:
    """Minutes after local midnight: [start, end)."""

    start: int
    end: int

    def __str__(self) -> str:
        return f"{_hhmm(self.start)}-{_hhmm(self.end)}"

    @property
    def always(self) -> bool:
        return self.start == 0 and self.end == DAY_MINUTES


@dataclass(frozen=True, order=True)
class Constraint:
    """The window in one zone, and the country whose holidays apply there."""

    zone: str
    start: int
    end: int
    country: str = ""

    def to_json(self) -> list:
        return [self.zone, self.start, self.end, self.country]

    @classmethod
    def from_json(cls, data: list) -> "Constraint":
        return cls(str(data[0]), int(data[1]), int(data[2]), str(data[3] or ""))


@dataclass(frozen=True)
class Policy:
    default: Window
    by_prefix: dict[str, Window]
    by_zone: dict[str, Window]
    by_country: dict[str, Window]
    holidays: dict[str, frozenset[date]]

    def window_for(self, zone: str, country: str, digits: str) -> Window:
        """The window of the most specific override (prefix > zone > country)."""
        for length in self.prefix_lengths:
            found = self.by_prefix.get(digits[:length]) if digits else None
            if found is not None:
                return found
        return self.by_zone.get(zone) or self.by_country.get(country) or self.default

    @property
    def prefix_lengths(self) -> list[int]:
        return sorted({len(p) for p in self.by_prefix}, reverse=True)

    def holidays_of(self, country: str) -> frozenset[date]:
        return self.holidays.get(country, frozenset())


def parse_window(text: str, what: str) -> Window:
    """ "HH:MM-HH:MM" as a Window; ImproperlyConfigured naming `what` if bad."""
    match = _WINDOW.match(text or "")
    problem = ""
    if not match:
        problem = 'is not of the form "HH:MM-HH:MM", e.g. "08:00-21:00"'
    else:
        h1, m1, h2, m2 = (int(g) for g in match.groups())
        start, end = h1 * 60 + m1, h2 * 60 + m2
        if m1 > 59 or m2 > 59 or start >= DAY_MINUTES or end > DAY_MINUTES:
            problem = "has a time that does not exist (00:00 to 24:00)"
        elif start >= end:
            problem = (
                "must end after it starts on the same day (a window across "
                "midnight is not supported)"
            )
        else:
            return Window(start, end)
    raise ImproperlyConfigured(f"{what}: {text!r} {problem}.")


def parse_policy(default: str, overrides: str, holidays: str) -> Policy:
    """The policy from the three settings' texts (ImproperlyConfigured when
    one of their entries is wrong, naming it)."""
    policy = Policy(parse_window(default, "QUIET_HOURS"), {}, {}, {}, {})
    for entry in _entries(overrides):
        key, sep, value = entry.partition("=")
        key = key.strip()
        what = f"QUIET_HOURS_OVERRIDES entry {entry!r}"
        if not sep:
            raise ImproperlyConfigured(f"{what}: write KEY=HH:MM-HH:MM.")
        window = parse_window(value, what)
        if _PREFIX.match(key):
            policy.by_prefix[key[1:]] = window
        elif _COUNTRY.match(key):
            policy.by_country[key] = window
        elif "/" in key and zone_data.known_zone(key):
            policy.by_zone[key] = window
        else:
            raise ImproperlyConfigured(
                f"{what}: {key!r} is neither an ISO country code (US), a number "
                "prefix (+1305) nor a known IANA time zone (America/Chicago)."
            )
    for entry in _entries(holidays):
        country, sep, dates = entry.partition("=")
        country = country.strip()
        what = f"QUIET_HOURS_HOLIDAYS entry {entry!r}"
        if not sep or not _COUNTRY.match(country):
            raise ImproperlyConfigured(
                f"{what}: write COUNTRY=YYYY-MM-DD;YYYY-MM-DD with an ISO country "
                "code such as US."
            )
        days = set(policy.holidays.get(country, ()))
        for text in filter(None, (d.strip() for d in dates.split(";"))):
            try:
                days.add(date.fromisoformat(text))
            except ValueError:
                raise ImproperlyConfigured(
                    f"{what}: {text!r} is not a date (YYYY-MM-DD)."
                ) from None
        policy.holidays[country] = frozenset(days)
    return policy


def _entries(text: str) -> list[str]:
    return [e.strip() for e in (text or "").split(",") if e.strip()]


@cache
def _policy(default: str, overrides: str, holidays: str) -> Policy:
    return parse_policy(default, overrides, holidays)


def policy() -> Policy:
    """The policy of the current settings (parsed once per distinct value)."""
    return _policy(
        settings.QUIET_HOURS,
        settings.QUIET_HOURS_OVERRIDES,
        settings.QUIET_HOURS_HOLIDAYS,
    )


@dataclass(frozen=True)
class Rules:
    """What a recipient's quiet hours allow: every constraint at once.

    Hashable (a million recipients share a few Rules: memoise on them); the
    union of two Rules allows what both allow (a wave of several zones).
    """

    constraints: tuple[Constraint, ...]
    main: str = ""  # the zone that decides when the candidates share no window

    def union(self, other: "Rules") -> "Rules":
        merged = tuple(sorted(set(self.constraints) | set(other.constraints)))
        return Rules(merged, self.main or other.main)

    @property
    def always(self) -> bool:
        return all(
            c.start == 0 and c.end == DAY_MINUTES and not _holidays(c.country)
            for c in self.constraints
        )

    def allows(self, instant: datetime) -> bool:
        """Whether a message arriving at `instant` (a slot) is allowed."""
        return all(_opening(c, instant) is None for c in self.constraints)

    def next_allowed(self, instant: datetime) -> datetime:
        """The first slot at or after `instant` that every constraint allows."""
        found = _search(self.constraints, slot_of(instant))
        if found is None and self.main:  # no common window: the main zone's
            main = tuple(c for c in self.constraints if c.zone == self.main)
            found = _search(main, slot_of(instant))
        return found or slot_of(instant)

    def to_json(self) -> list:
        return [c.to_json() for c in self.constraints]

    @classmethod
    def from_json(cls, data: list) -> "Rules":
        return cls(tuple(Constraint.from_json(c) for c in data or []))


NO_RULES = Rules(())


def rules_for(recipient: RecipientZone, digits: str = "", main: str = "") -> Rules:
    """The quiet-hours rules of a recipient (`digits`: its E.164 number's
    digits, for prefix overrides; `main`: its main zone)."""
    current = policy()
    country = recipient.country if recipient.country in current.holidays else ""
    constraints = set()
    for name in recipient.zones:
        window = current.window_for(name, recipient.country, digits)
        constraints.add(Constraint(name, window.start, window.end, country))
    return Rules(
        tuple(sorted(constraints)),
        main,
    )


def next_allowed(
    instant: datetime, recipient: RecipientZone, digits: str = ""
) -> datetime:
    """The first 5-minute slot at or after `instant` inside the recipient's
    window in every candidate zone (see `Rules.next_allowed`)."""
    return rules_for(recipient, digits, recipient.zones[0]).next_allowed(instant)


def _holidays(country: str) -> frozenset[date]:
    return policy().holidays_of(country) if country else frozenset()


def _search(constraints, at: datetime) -> datetime | None:
    """The first slot from `at` on that all `constraints` allow, or None
    within SEARCH_DAYS. Each round moves to the latest opening any
    constraint asks for, so it ends."""
    limit = at + timedelta(days=SEARCH_DAYS)
    while at <= limit:
        later = [o for o in (_opening(c, at) for c in constraints) if o is not None]
        if not later:
            return at
        at = slot_of(max(later))
    return None


def _opening(c: Constraint, at: datetime) -> datetime | None:
    """None when `c` allows a message at `at`; else the next instant its
    window opens (its zone's wall clock: a skipped or repeated hour as
    zoneinfo says)."""
    tz = zone_data.zone(c.zone)
    local = at.astimezone(tz)
    minutes = local.hour * 60 + local.minute
    holidays = _holidays(c.country)
    today = local.date()
    if today not in holidays and c.start <= minutes < c.end:
        return None
    opens_today = today not in holidays and minutes < c.start
    day = today if opens_today else today + timedelta(days=1)
    while day in holidays:
        day += timedelta(days=1)
    return _wall_clock(day, c.start, tz, after=at)


def _wall_clock(day: date, minutes: int, tz, *, after: datetime) -> datetime:
    """The first instant after `after` whose wall-clock time in `tz` on `day`
    is `minutes` after midnight, or later that day when that time is skipped
    (clocks going forward: the window opens as they jump)."""
    wanted = datetime.combine(day, time(minutes // 60, minutes % 60), tzinfo=tz)
    instant = wanted.astimezone(UTC)
    if instant.astimezone(tz).replace(tzinfo=None) == wanted.replace(tzinfo=None):
        return max(instant, after + SLOT) if instant <= after else instant
    # Skipped: the first slot from the earlier reading whose local time is past.
    probe = slot_of(wanted.replace(fold=1).astimezone(UTC))
    while probe.astimezone(tz).date() == day and (
        probe.astimezone(tz).hour * 60 + probe.astimezone(tz).minute < minutes
    ):
        probe += SLOT
    return probe


def _hhmm(minutes: int) -> str:
    return f"{minutes // 60:02d}:{minutes % 60:02d}"
