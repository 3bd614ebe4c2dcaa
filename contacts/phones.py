"""Channel identities: phone numbers normalised to E.164, other ids cleaned."""

import re

import phonenumbers
from django.conf import settings
from phonenumbers import PhoneNumberFormat

from sinch.channels import PHONE_CHANNELS

_E164 = re.compile(r"\+[1-9]\d{6,14}")
_JUNK = re.compile(r"[\s().\-/\u00a0\u2010-\u2015]")
_COUNTRY_CODES = phonenumbers.COUNTRY_CODE_TO_REGION_CODE


class InvalidIdentity(ValueError):
    """The value cannot be an identity on the channel; the message says why."""


def normalise_identity(channel: str, raw: str, default_region: str | None = None) -> str:
    """Return the canonical identity for `channel`, or raise InvalidIdentity."""
    value = (raw or "").strip()
    if not value:
        raise InvalidIdentity("empty")
    if channel in PHONE_CHANNELS:
        return normalise_phone(value, default_region)
    if len(value) > 128:
        raise InvalidIdentity("longer than 128 characters")
    if any(ch.isspace() or not ch.isprintable() for ch in value):
        raise InvalidIdentity("contains spaces or control characters")
    return value


def normalise_phone(raw: str, default_region: str | None = None) -> str:
    """Return `raw` as E.164 ("+15551230001"), or raise InvalidIdentity.

    Accepts what people type and what files carry: spaces, dashes, dots,
    brackets, a "tel:" prefix, "00" or "+" for the international prefix,
    national numbers (read in `default_region`), and a country code without
    "+" as Sinch callbacks send it.
    """
    value = raw.strip()
    if _E164.fullmatch(value):
        fast = _valid_e164(value)
        if fast:
            return fast
    if value.lower().startswith("tel:"):
        value = value[4:]
    compact = _JUNK.sub("", value)
    if compact.startswith("00"):
        compact = "+" + compact[2:]
    region = default_region or settings.PHONE_DEFAULT_REGION
    candidates = [compact]
    if compact.isdigit() and len(compact) >= 8:
        candidates.append("+" + compact)
    for candidate in candidates:
        try:
            number = phonenumbers.parse(candidate, region)
        except phonenumbers.NumberParseException:
            continue
        if phonenumbers.is_valid_number(number):
            return phonenumbers.format_number(number, PhoneNumberFormat.E164)
    raise InvalidIdentity("not a valid phone number")


def _valid_e164(value: str) -> str | None:
    """Validate an already-E.164 string without the cost of a full parse.

    phonenumbers.parse dominates bulk imports; for "+<digits>" input the split
    into country code and national number is unambiguous (country codes are
    prefix-free), so only the validity check remains. Anything it rejects goes
    through the full parser, which handles national prefixes and oddities.
    """
    for size in (1, 2, 3):
        code = int(value[1 : 1 + size])
        if code in _COUNTRY_CODES:
            break
    else:
        return None
    national = value[1 + size :]
    number = phonenumbers.PhoneNumber(country_code=code, national_number=int(national))
    zeros = len(national) - len(national.lstrip("0"))
    if zeros:
        number.italian_leading_zero = True
        if zeros > 1:
            number.number_of_leading_zeros = zeros
    if phonenumbers.is_valid_number(number):
        return value
    return None


def phone_search_term(term: str) -> str | None:
    """The E.164 form of a search term when it reads as a phone number."""
    if not any(ch.isdigit() for ch in term):
        return None
    try:
        return normalise_phone(term)
    except InvalidIdentity:
        return None
