"""Settings values with a unit: an amount of money and an audience tolerance.

Parsed when the settings load, so a bad value stops the start with a message
naming the setting and what is wrong, instead of surfacing at a launch.
"""

from dataclasses import dataclass
from decimal import Decimal, InvalidOperation

from django.core.exceptions import ImproperlyConfigured


def parse_amount(name: str, text: str) -> Decimal | None:
    """`text` as a non-negative amount ("50", "12.50"); None when empty."""
    text = text.strip()
    if not text:
        return None
    try:
        amount = Decimal(text)
    except InvalidOperation:
        amount = None
    if amount is None or not amount.is_finite() or amount < 0:
        raise ImproperlyConfigured(
            f"{name} must be an amount such as 50 or 12.50, or empty (got {text!r})."
        )
    return amount


@dataclass(frozen=True)
class Tolerance:
    """How much a count may change: `percent` of it or `people`, the larger."""

    percent: Decimal
    people: int

    def allowed(self, base: int) -> int:
        """The largest change of `base` that is still within the tolerance."""
        return max(int(Decimal(base) * self.percent / 100), self.people)

    def exceeded(self, before: int, now: int) -> bool:
        return abs(now - before) > self.allowed(before)

    def __str__(self) -> str:
        parts = []
        if self.percent:
            parts.append(f"{self.percent.normalize():f} %")
        if self.people or not parts:
            parts.append(
                f"{self.people:,} {'person' if self.people == 1 else 'people'}"
            )
        return " or ".join(parts) + (", whichever is larger" if len(parts) > 1 else "")


def parse_tolerance(text: str) -> Tolerance:
    """ "5%,100" (5 % or 100 people, whichever is larger), "5%", "100" or "0".

    Raises ValueError saying what is wrong.
    """
    percent, people = None, None
    for part in (p.strip() for p in text.split(",")):
        if part.endswith("%"):
            if percent is not None:
                raise ValueError(f"two percentages in {text!r}; give one")
            try:
                percent = Decimal(part[:-1].strip())
            except InvalidOperation:
                percent = Decimal(-1)
            if not percent.is_finite() or not 0 <= percent <= 100:
                raise ValueError(
                    f"{part!r} is not a percentage from 0% to 100% (in {text!r})"
                )
        else:
            if people is not None:
                raise ValueError(f"two numbers of people in {text!r}; give one")
            if not part.isdigit():
                raise ValueError(
                    f"{part!r} is neither a percentage (5%) nor a number of "
                    f'people (100) (in {text!r}; e.g. "5%,100")'
                )
            people = int(part)
    return Tolerance(percent=percent or Decimal(0), people=people or 0)
