"""Send times: a wall-clock time in a chosen IANA zone, stored as a UTC instant."""

from datetime import UTC, datetime
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from django.core.exceptions import ValidationError


def time_zone(name: str) -> ZoneInfo:
    """The zone called `name`; ValidationError when zoneinfo does not know it."""
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise ValidationError(
            f'"{name}" is not a known time zone; use an IANA name such as '
            "Europe/Berlin or America/New_York."
        ) from exc


def validate_time_zone(name: str) -> None:
    """Model-field validator: an empty name is left to the field's `blank`."""
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
    # Round trip through UTC: astimezone() to the same zone is a no-op.
    if instant.astimezone(UTC).astimezone(zone).replace(tzinfo=None) != local:
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
    try:
        zone = ZoneInfo(zone_name or "UTC")
    except (ZoneInfoNotFoundError, ValueError):
        zone = ZoneInfo("UTC")
    return instant.astimezone(zone).replace(tzinfo=None)
