"""Time zones: the one rule for which names are zones, and send times (a
wall-clock time in a chosen IANA zone, stored as a UTC instant).

A zone is a name in zoneinfo's list of IANA zones (exactly spelled), minus
the names that are no place: "localtime" (whatever the server's clock is set
to), "Factory" (tzcode's placeholder) and "posixrules" (a template for POSIX
TZ strings). UTC and the fixed-offset Etc/GMT+N zones are places enough.
Every form field, model field, import column and setting checks names here.
"""

import difflib
from datetime import UTC, datetime
from functools import cache
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError, available_timezones

from django.core.exceptions import ValidationError

NOT_A_PLACE = frozenset({"localtime", "Factory", "posixrules"})


@cache
def zone_names() -> tuple[str, ...]:
    """Every zone name the product accepts, sorted."""
    return tuple(sorted(available_timezones() - NOT_A_PLACE))


@cache
def _known() -> frozenset[str]:
    return frozenset(zone_names())


def is_zone_name(name: str) -> bool:
    return name in _known()


@cache
def _by_lower() -> dict[str, str]:
    return {name.lower(): name for name in zone_names()}


def suggestions(text: str, n: int = 3) -> list[str]:
    """Known zones close to `text` (any case; "berlin" finds Europe/Berlin)."""
    lowered = text.strip().lower().replace(" ", "_")
    if lowered in _by_lower():
        return [_by_lower()[lowered]]
    city = [name for key, name in _by_lower().items() if key.endswith("/" + lowered)]
    close = difflib.get_close_matches(lowered, list(_by_lower()), n=n, cutoff=0.6)
    return list(dict.fromkeys(city + [_by_lower()[key] for key in close]))[:n]


def unknown_zone_message(name: str) -> str:
    message = (
        f'"{name}" is not a known time zone; use an IANA name such as Europe/Berlin'
    )
    hint = suggestions(name) if len(name) <= 100 else []
    if hint:
        message += f". Did you mean {hint[0]}?"
        if hint[1:]:
            message += f" Also close: {', '.join(hint[1:])}."
    else:
        message += " or America/New_York (type a city to search the list)."
    return message


def time_zone(name: str) -> ZoneInfo:
    """The zone called `name`; ValidationError unless it is a known zone."""
    if not is_zone_name(name):
        raise ValidationError(unknown_zone_message(name), code="unknown_time_zone")
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError, OSError) as exc:
        raise ValidationError(
            unknown_zone_message(name), code="unknown_time_zone"
        ) from exc


def validate_time_zone(name: str) -> None:
    """Field validator: an empty name is left to the field's `blank`/`required`."""
    if name:
        time_zone(name)


def send_instant(local: datetime, zone_name: str, *, now: datetime) -> datetime:
    """The aware instant of the naive wall-clock time `local` in `zone_name`.

    Raises ValidationError when the zone is unknown, when the time does not
    exist there (skipped by a daylight-saving change) or when it is not after
    `now`. An ambiguous time (clocks going back) takes its first occurrence.
    """
    zone = time_zone(zone_name)
    instant = local.replace(tzinfo=zone)
    try:
        # Round trip through UTC: astimezone() to the same zone is a no-op.
        exists = instant.astimezone(UTC).astimezone(zone).replace(tzinfo=None) == local
    except (OverflowError, ValueError):
        # Past 9999-12-31 23:59 in UTC (year 9999 west of Greenwich), or
        # before year 1 (east of it): no datetime can hold it.
        raise ValidationError(
            f"{local:%Y-%m-%d %H:%M} in {zone_name} is out of range: choose a "
            "date before the year 9999."
        ) from None
    if not exists:
        raise ValidationError(
            f"{local:%Y-%m-%d %H:%M} does not exist in {zone_name}: "
            "the clocks skip it for daylight saving time."
        )
    if instant <= now:
        raise ValidationError(
            f"{local:%Y-%m-%d %H:%M} {zone_name} is in the past; "
            "choose a later time or send now."
        )
    return instant


def local_time(instant: datetime, zone_name: str) -> datetime:
    """`instant` as a naive wall-clock time in `zone_name` (UTC if unknown)."""
    zone = ZoneInfo(zone_name) if is_zone_name(zone_name) else UTC
    try:
        return instant.astimezone(zone).replace(tzinfo=None)
    except OverflowError:  # within a day of datetime's range: shown in UTC
        return instant.astimezone(UTC).replace(tzinfo=None)
