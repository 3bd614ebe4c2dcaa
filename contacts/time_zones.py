"""A recipient's time zone: known, inferred from the number, or assumed.

In order: the contact's own `time_zone` when zoneinfo knows it; else the
zones phonenumbers' time-zone data gives for the number (one zone for most
area codes, e.g. +1 312 -> America/Chicago; several for a country or an area
spanning zones; its "Etc/Unknown" counts as none); else the campaign's
fallback zone. `ZoneFinder.find` answers with the candidates and how they were
found, for display and for the quiet-hours policy.

Speed: a million recipients pass through here at the pre-send check and again
at the freeze. The time-zone data is a table keyed by number prefixes of at
most TIMEZONE_LONGEST_PREFIX digits, looked up longest prefix first (what
`phonenumbers.timezone.time_zones_for_geographical_number` does after
formatting a parsed number to E.164); identities are stored in E.164 already,
so the table is read without parsing, and answers are cached on that many
leading digits (exact). Only the country of a number whose calling code
several countries share (+1, +7, +44, ...) needs a parse: that is cached too.
"""

from dataclasses import dataclass
from functools import cache
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import phonenumbers
from django.conf import settings
from phonenumbers.tzdata import TIMEZONE_DATA, TIMEZONE_LONGEST_PREFIX

from config.lib.timezones import is_zone_name
from sinch.channels import PHONE_CHANNELS

UNKNOWN_ZONE = "Etc/Unknown"

CONTACT = "contact"
AREA_CODE = "area_code"
COUNTRY = "country"
FALLBACK = "fallback"

SOURCE_LABELS = {
    CONTACT: "the contact's time zone",
    AREA_CODE: "inferred from area code",
    COUNTRY: "inferred from country code",
    FALLBACK: "fallback zone",
}

# Longest ISO calling code (e.g. 1, 49, 358).
CALLING_CODE_DIGITS = 3
# NANP numbers (+1) belong to one country per area code: +1 and 3 digits.
NANP_COUNTRY_DIGITS = 4


@dataclass(frozen=True)
class RecipientZone:
    """Where a recipient is in time.

    `zones`: the candidate IANA zones (one in most cases), in a stable order;
    `source`: how they were found (CONTACT, AREA_CODE, COUNTRY, FALLBACK);
    `prefix`: the number prefix the data matched ("1312"), "" otherwise;
    `country`: the number's ISO country ("US"), "" when unknown.
    """

    zones: tuple[str, ...]
    source: str
    prefix: str = ""
    country: str = ""

    @property
    def zone_text(self) -> str:
        if len(self.zones) <= 3:
            return ", ".join(self.zones)
        return f"{', '.join(self.zones[:3])} and {len(self.zones) - 3} more"

    @property
    def source_text(self) -> str:
        """How the zone was found, in words ("inferred from area code +1 312")."""
        label = SOURCE_LABELS[self.source]
        if self.source in (AREA_CODE, COUNTRY) and self.prefix:
            code = calling_code(self.prefix)
            rest = self.prefix[len(code) :]
            label += f" +{code}" + (f" {rest}" if rest else "")
        if self.source in (AREA_CODE, COUNTRY) and len(self.zones) > 1:
            label += f" ({len(self.zones)} possible zones)"
        return label

    def __str__(self) -> str:
        return f"{self.zone_text} — {self.source_text}"


def known_zone(name: str) -> bool:
    """zoneinfo knows `name` (an empty name or Etc/Unknown: no)."""
    return bool(name) and name != UNKNOWN_ZONE and _zone_or_none(name) is not None


@cache
def _zone_or_none(name: str) -> ZoneInfo | None:
    if not is_zone_name(name):
        return None
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return None


def zone(name: str) -> ZoneInfo:
    """The ZoneInfo of a known zone name (cached: a million calls are cheap)."""
    found = _zone_or_none(name)
    if found is None:
        raise ValueError(f"unknown time zone {name!r}")
    return found


def calling_code(digits: str) -> str:
    """The ITU calling code at the start of an E.164 number's digits."""
    for length in range(1, CALLING_CODE_DIGITS + 1):
        code = digits[:length]
        if int(code or 0) in phonenumbers.COUNTRY_CODE_TO_REGION_CODE:
            return code
    return ""


@cache
def _data_stems() -> frozenset[str]:
    """Every proper prefix of a key of the time-zone data ("" included)."""
    return frozenset(key[:n] for key in TIMEZONE_DATA for n in range(len(key)))


def deciding_digits(digits: str, stems: frozenset[str] = frozenset()) -> str:
    """The leading digits of a number that decide its zones and its country
    (and, with `stems` holding the proper prefixes of other prefix keys, e.g.
    quiet-hours overrides, which of those apply): no key of the time-zone
    data starts with them and is longer. +1 201 200 0001 and +1 201 250 0000
    share "1201" (New Jersey's area code decides both the zone and the US)."""
    code = calling_code(digits)
    if len(phonenumbers.COUNTRY_CODE_TO_REGION_CODE.get(int(code or 0), ())) > 1:
        length = NANP_COUNTRY_DIGITS if code == "1" else TIMEZONE_LONGEST_PREFIX
    else:
        length = len(code)
    data = _data_stems()
    # A longer data key that starts with the number starts with every
    # shorter part of it too: the first part that is no stem decides.
    while length < len(digits) and is_stem(digits[:length], data, stems):
        length += 1
    return digits[:length]


def is_stem(part: str, data: frozenset[str], stems: frozenset[str]) -> bool:
    return part in data or part in stems


def default_fallback_zone(send_time_zone: str = "") -> str:
    """DEFAULT_RECIPIENT_TIME_ZONE, else `send_time_zone`, else UTC."""
    for name in (settings.DEFAULT_RECIPIENT_TIME_ZONE, send_time_zone):
        if known_zone(name):
            return name
    return "UTC"


class ZoneFinder:
    """Finds recipients' zones, caching per number prefix and contact zone.

    One finder per walk of an audience (`fallback`: the campaign's zone for
    recipients with no other answer).
    """

    def __init__(self, fallback: str) -> None:
        self.fallback = RecipientZone((fallback,), FALLBACK)
        self._by_contact_zone: dict[str, str | None] = {}
        self._by_digits: dict[str, RecipientZone | None] = {}
        self._countries: dict[str, str] = {}

    def find(self, contact_zone: str | None, identity: str | None) -> RecipientZone:
        """The zone of a recipient with the contact's `time_zone` and the
        channel `identity` (E.164 for phone channels)."""
        digits = _digits(identity)
        if contact_zone:
            name = self._by_contact_zone.get(contact_zone, "")
            if name == "":
                name = self._by_contact_zone[contact_zone] = (
                    contact_zone if known_zone(contact_zone) else None
                )
            if name is not None:
                country = self._country(digits) if digits else ""
                return RecipientZone((name,), CONTACT, "", country)
        if digits:
            key = digits[:TIMEZONE_LONGEST_PREFIX]
            found = self._by_digits.get(key, False)
            if found is False:
                found = self._by_digits[key] = self._infer(digits)
            if found is not None:
                return found
        return self.fallback

    def _infer(self, digits: str) -> RecipientZone | None:
        for length in range(min(TIMEZONE_LONGEST_PREFIX, len(digits)), 0, -1):
            prefix = digits[:length]
            names = TIMEZONE_DATA.get(prefix)
            if names is None:
                continue
            known = tuple(n for n in names if known_zone(n))
            if not known:
                return None
            code = calling_code(digits)
            source = AREA_CODE if len(prefix) > len(code) else COUNTRY
            return RecipientZone(known, source, prefix, self._country(digits))
        return None

    def _country(self, digits: str) -> str:
        """The ISO country of a number: its calling code's only country, or
        (a shared code) the country phonenumbers finds for it, per prefix."""
        code = calling_code(digits)
        if not code:
            return ""
        regions = phonenumbers.COUNTRY_CODE_TO_REGION_CODE.get(int(code), ())
        if len(regions) == 1:
            return "" if regions[0] == "001" else regions[0]
        key = digits[: NANP_COUNTRY_DIGITS if code == "1" else TIMEZONE_LONGEST_PREFIX]
        country = self._countries.get(key)
        if country is None:
            try:
                number = phonenumbers.parse("+" + digits)
                country = phonenumbers.region_code_for_number(number) or ""
            except phonenumbers.NumberParseException:
                country = ""
            if country:  # an invalid number says nothing about its prefix
                self._countries[key] = country
        return country


def _digits(identity: str | None) -> str:
    """The digits of an E.164 identity ("" for anything else)."""
    if identity and identity.startswith("+") and identity[1:].isdigit():
        return identity[1:]
    return ""


def zone_of_contact(contact) -> RecipientZone:
    """A contact's zone as a campaign without its own fallback zone would see
    it (for the contact page): from the contact, else the number of its
    oldest live phone identity, else DEFAULT_RECIPIENT_TIME_ZONE or UTC."""
    identity = (
        contact.identities.filter(channel__in=PHONE_CHANNELS, retired_at__isnull=True)
        .order_by("pk")
        .values_list("identity", flat=True)
        .first()
    )
    return ZoneFinder(default_fallback_zone()).find(contact.time_zone, identity)
