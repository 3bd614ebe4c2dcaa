"""The frequency cap's rules: how FREQUENCY_CAP is written, and the window test.

A rule is COUNT/LENGTH, LENGTH a whole number of days (``7d``) or hours
(``12h``): at most COUNT marketing messages per person in any rolling window
of LENGTH. Several rules are separated by commas (``2/7d,1/1d``); an empty
value turns the cap off. The module imports nothing from the product, so the
settings can validate the value at start-up (config.settings).

Windows are half-open, [start, start + LENGTH): two messages exactly LENGTH
apart are never in the same window, so a campaign sent every day at 10:00
keeps to ``1/1d``.
"""

import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta

RULE = re.compile(r"^(\d+)\s*/\s*(\d+)\s*([dh])$", re.IGNORECASE)
UNITS = {"d": ("day", timedelta(days=1)), "h": ("hour", timedelta(hours=1))}


class CapRuleError(ValueError):
    """FREQUENCY_CAP cannot be read; the message names the bad rule."""


@dataclass(frozen=True)
class CapRule:
    """At most `limit` messages per person in any window of `length`."""

    limit: int
    length: timedelta
    text: str  # as written in the setting, normalised: "2/7d"
    period: str  # in words: "7 days"

    @property
    def key(self) -> str:
        """The problem key of the members it excludes (pre-send summary)."""
        return f"frequency_cap:{self.text}"

    @property
    def label(self) -> str:
        """The reason an excluded recipient shows."""
        s = "" if self.limit == 1 else "s"
        return f"frequency cap: {self.limit} marketing message{s} in {self.period}"

    def describe(self) -> str:
        return f"at most {self.limit} per {self.period}"

    def is_broken_by(self, times: Iterable[datetime], at: datetime) -> bool:
        """Whether a message at `at` would break the rule, given the other
        messages' `times`: True when some window of `length` that contains
        `at` already holds `limit` of them (before and after `at` alike)."""
        near = sorted(t for t in times if at - self.length < t < at + self.length)
        if len(near) < self.limit:
            return False
        # A window [start, start + length) holds `at` when at - length <
        # start <= at. Sliding the start, the count only drops just after the
        # start passes a message: the fullest window starts at a message up
        # to `at`, or at `at` itself (it then holds what follows `at`).
        starts = [t for t in near if t <= at] + [at]
        most = 0
        for start in starts:
            end = start + self.length
            most = max(most, sum(1 for t in near if start <= t < end))
        return most >= self.limit


def parse_cap(value: str) -> list[CapRule]:
    """The rules of a FREQUENCY_CAP value, in the order written.

    Raises CapRuleError naming the rule that cannot be read, or a period
    given twice. An empty value (or only spaces) is no rule: no cap.
    """
    rules: list[CapRule] = []
    seen: dict[timedelta, str] = {}
    for raw in (value or "").split(","):
        text = raw.strip()
        if not text:
            if not value.strip():
                continue
            raise CapRuleError(
                f"FREQUENCY_CAP: {value!r} has an empty rule (a comma too many)."
            )
        match = RULE.match(text)
        if not match:
            raise CapRuleError(
                f"FREQUENCY_CAP: {text!r} is not a rule. Write COUNT/LENGTH with "
                "the length in days (d) or hours (h), several separated by "
                'commas, e.g. "2/7d,1/1d"; leave it empty for no cap.'
            )
        limit, amount, unit = int(match[1]), int(match[2]), match[3].lower()
        if limit < 1 or amount < 1:
            raise CapRuleError(
                f"FREQUENCY_CAP: {text!r}: the count and the length must be at "
                "least 1 (to send no marketing at all, leave the audience empty)."
            )
        name, step = UNITS[unit]
        length = step * amount
        normal = f"{limit}/{amount}{unit}"
        if length in seen:
            raise CapRuleError(
                f"FREQUENCY_CAP: {seen[length]!r} and {normal!r} cap the same "
                "period: keep one."
            )
        seen[length] = normal
        period = f"{amount} {name}" + ("" if amount == 1 else "s")
        rules.append(CapRule(limit, length, normal, period))
    return rules
