"""Consent dates as people write them, and consent words in several languages.

Dates: ISO 8601 (2026-12-31, 2026-12-31T09:00:00Z) always; 31.12.2026 (dots
are day first everywhere they are used); 31/12/2026, 12/31/2026, 31-12-2026
with an optional time (09:30 or 09:30:00) and two-digit years. A slash or
dash date whose day and month could be swapped (03/04/2026) needs the file's
date order (day first or month first); without one it is an error that says
so. A date that can only be read the other way than the chosen order is an
error too: it means the order chosen does not fit the file.
"""

import calendar
import re
import unicodedata
from datetime import UTC, datetime, time

from django.utils import timezone
from django.utils.dateparse import parse_date, parse_datetime

DAY_FIRST = "DMY"
MONTH_FIRST = "MDY"
_ORDER_NAMES = {DAY_FIRST: "day first", MONTH_FIRST: "month first"}
_LOCAL = re.compile(
    r"(\d{1,2})([./-])(\d{1,2})\2(\d{4}|\d{2})"
    r"(?:[ T,]+(\d{1,2}):(\d{2})(?::(\d{2}))?)?"
)


class DateError(ValueError):
    """The value is not a date we can read; the message says why."""


def parse_when(raw: str, order: str = "") -> datetime:
    """A consent date or date-time; naive values are taken as UTC."""
    try:
        value = parse_datetime(raw) or (
            datetime.combine(parse_date(raw), time()) if parse_date(raw) else None
        )
    except ValueError:
        value = None
    if value is None:
        value = _parse_local(raw.strip(), order)
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    if value > timezone.now():
        raise DateError(f"consent date {raw!r} is in the future")
    return value


def _parse_local(raw: str, order: str) -> datetime:
    match = _LOCAL.fullmatch(raw)
    if not match:
        raise DateError(
            f"consent date {raw!r} not understood (use 2026-12-31, 31.12.2026, "
            "31/12/2026 or 12/31/2026 with the file's date order, or "
            "2026-12-31T09:00:00Z)"
        )
    a, sep, b, year, hour, minute, second = match.groups()
    first, second_part = int(a), int(b)
    if sep == "." or first > 12 >= second_part:
        read_as = DAY_FIRST
    elif second_part > 12 >= first:
        read_as = MONTH_FIRST
    elif first == second_part:
        read_as = order or DAY_FIRST  # either way the same day
    elif order:
        read_as = order
    else:
        raise DateError(
            f"consent date {raw!r} is ambiguous ({first} {_month(second_part)} or "
            f"{_month(first)} {second_part}?): choose the file's date order, day "
            "first or month first"
        )
    if sep != "." and order and read_as != order:
        raise DateError(
            f"consent date {raw!r} can only be read {_ORDER_NAMES[read_as]}, but "
            f"the file's date order is {_ORDER_NAMES[order]}: check the date "
            "order chosen for this file"
        )
    day, month = (first, second_part) if read_as == DAY_FIRST else (second_part, first)
    full_year = int(year)
    if len(year) == 2:
        # A consent date is in the past: 26 is 2026 in 2026, 99 is 1999.
        full_year += 2000 if 2000 + full_year <= timezone.now().year else 1900
    try:
        return datetime(
            full_year,
            month,
            day,
            int(hour or 0),
            int(minute or 0),
            int(second or 0),
            tzinfo=UTC,
        )
    except ValueError as exc:
        raise DateError(f"consent date {raw!r} is not a real date ({exc})") from None


def _month(number: int) -> str:
    if 1 <= number <= 12:
        return calendar.month_name[number]
    return str(number)


# --- consent words ------------------------------------------------------------

OPT_IN_WORDS = [
    "yes",
    "y",
    "true",
    "t",
    "1",
    "x",
    "opt_in",
    "optin",
    "opted_in",
    "in",
    "subscribed",
    "subscribe",
    "consent",
    "consented",
    "agreed",
    "agree",
    "accepted",
    "granted",
    "given",
    "oui",
    "ja",
    "j",
    "si",
    "s",
    "sim",
    "da",
    "tak",
    "ano",
    "jah",
    "kylla",
    "igen",
    "evet",
]
OPT_OUT_WORDS = [
    "no",
    "n",
    "false",
    "f",
    "0",
    "opt_out",
    "optout",
    "opted_out",
    "out",
    "unsubscribed",
    "unsubscribe",
    "stop",
    "declined",
    "refused",
    "withdrawn",
    "revoked",
    "non",
    "nein",
    "nee",
    "nao",
    "nej",
    "nei",
    "ne",
    "nie",
    "nem",
    "ei",
    "hayir",
]
_SEPARATORS = re.compile(r"[\s_\-.]+")


def word_key(raw: str) -> str:
    """A consent word as looked up: case, accents and separators forgiven
    ("Opt-In", "opt in", "OPT_IN" and "optin." are alike; "Sí" is "si")."""
    plain = unicodedata.normalize("NFKD", raw.strip().casefold())
    plain = "".join(ch for ch in plain if not unicodedata.combining(ch))
    return _SEPARATORS.sub("_", plain).strip("_")
