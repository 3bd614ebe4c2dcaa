"""Channel identities: phone numbers normalised to E.164, other ids cleaned."""

import functools
import re
from collections.abc import Callable

import phonenumbers
from django.conf import settings
from phonenumbers import PhoneMetadata, PhoneNumberFormat
from phonenumbers.phonenumberutil import REGION_CODE_FOR_NON_GEO_ENTITY

from sinch.channels import PHONE_CHANNELS

# ASCII digits only: other scripts' digits go through the full parse, which
# turns them into ASCII.
_E164 = re.compile(r"\+[1-9][0-9]{6,14}")
_JUNK = re.compile(r"[\s().\-/\u00a0\u2010-\u2015]")
_COUNTRY_CODES = phonenumbers.COUNTRY_CODE_TO_REGION_CODE


class InvalidIdentity(ValueError):
    """The value cannot be an identity on the channel; the message says why."""


def normalise_identity(
    channel: str,
    raw: str,
    default_region: str | None = None,
    *,
    international: bool = False,
) -> str:
    """Return the canonical identity for `channel`, or raise InvalidIdentity.

    `international`: bare digits of a phone number are read as a country code
    and number first ("15123456789" is +1 512...), and in `default_region`
    only when that is not a valid number; for identities Sinch reports.
    """
    value = (raw or "").strip()
    if not value:
        raise InvalidIdentity("empty")
    if channel in PHONE_CHANNELS:
        return normalise_phone(value, default_region, international=international)
    if len(value) > 128:
        raise InvalidIdentity("longer than 128 characters")
    if any(ch.isspace() or not ch.isprintable() for ch in value):
        raise InvalidIdentity("contains spaces or control characters")
    return value


def normalise_phone(
    raw: str, default_region: str | None = None, *, international: bool = False
) -> str:
    """Return `raw` as E.164 ("+15551230001"), or raise InvalidIdentity.

    Accepts what people type and what files carry: spaces, dashes, dots,
    brackets, a "tel:" prefix, "00" or "+" for the international prefix,
    national numbers (read in `default_region`), and a country code without
    "+" as Sinch callbacks send it. Bare digits are read in `default_region`
    first (what people type), or as "+digits" first when `international`
    (what Sinch sends): with region DE, "15123456789" is a German mobile
    number typed nationally, but the US number +15123456789 from Sinch.
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
    # What people type ("+1 201 555-0123", "(201) 555-0123"): once compact,
    # most numbers need no full parse either.
    if _E164.fullmatch(compact):
        # As given, it failed the fast path above already.
        fast = _valid_e164(compact) if compact != value else None
    elif compact.isascii() and compact.isdigit() and not international:
        fast = _valid_national(compact, region)
    else:
        fast = None
    if fast:
        return fast
    candidates = [compact]
    if compact.isdigit() and len(compact) >= 8:
        if international:
            candidates.insert(0, "+" + compact)
        else:
            candidates.append("+" + compact)
    for candidate in candidates:
        try:
            number = phonenumbers.parse(candidate, region)
        except phonenumbers.NumberParseException:
            continue
        if _is_valid_number(number):
            return phonenumbers.format_number(number, PhoneNumberFormat.E164)
    raise InvalidIdentity("not a valid phone number")


def stored_e164(value: str) -> str | None:
    """`value` when it is a valid number written as stored (E.164, nothing
    to clean up): then normalise_phone would return it as it is. None: ask
    normalise_phone. For walks over stored identities (a launch reads a
    million), which need no clean-up and no default region."""
    return _valid_e164(value) if _E164.fullmatch(value) else None


def _valid_e164(value: str) -> str | None:
    """Validate an already-E.164 string without the cost of a full parse.

    phonenumbers.parse dominates bulk imports; for "+<digits>" input the split
    into country code and national number is unambiguous (country codes are
    prefix-free), so only the validity check remains. Anything it rejects goes
    through the full parser, which handles national prefixes and oddities.
    """
    found = _code_of(value[1:4])
    if found is None:
        return None
    size, code = found
    national = value[1 + size :]
    nsn = national
    if national[0] == "0":
        # The national significant number as phonenumbers spells it: leading
        # zeros kept (italian_leading_zero), then the digits as an integer
        # (the same digits, but for a number of zeros only).
        zeros = len(national) - len(national.lstrip("0"))
        nsn = "0" * zeros + str(int(national))
    return value if _country_rule(code)(nsn) else None


def _valid_national(digits: str, region: str) -> str | None:
    """A national number's E.164 form, when phonenumbers would read `digits`
    in `region` as the region's country code and these very digits: when
    they start with none of the international prefix, the national prefix
    and the country code, which the full parse may strip. None: parse it."""
    rule = _national_rule(region)
    if rule is None:
        return None
    code, *prefixes = rule
    if digits.startswith(code) or any(p.match(digits) for p in prefixes):
        return None
    return _valid_e164("+" + code + digits)


@functools.cache
def _national_rule(region: str) -> tuple[str, *tuple[re.Pattern[str], ...]] | None:
    """(country code, the patterns of the leading digits a parse in `region`
    may strip); None for a region phonenumbers does not know."""
    metadata = PhoneMetadata.metadata_for_region(region, None)
    if metadata is None:
        return None
    prefixes = (
        metadata.international_prefix,
        metadata.national_prefix_for_parsing or metadata.national_prefix,
    )
    return str(metadata.country_code), *(re.compile(p) for p in prefixes if p)


@functools.cache
def _code_of(first_digits: str) -> tuple[int, int] | None:
    """(length, country code) of the code a number's first three digits
    start with (codes are prefix-free); None when none does."""
    for size in (1, 2, 3):
        code = int(first_digits[:size])
        if code in _COUNTRY_CODES:
            return size, code
    return None


# --- validity -----------------------------------------------------------------
# phonenumbers.is_valid_number tries a dozen metadata patterns one by one, each
# looked up through re's cache (~20 us a number). The functions below compute
# the same answer from the same metadata, with the patterns of each number
# length joined into one compiled expression (~1 us).

# The order only decides how soon a match is found: most numbers are mobile.
_TYPE_DESCS = (
    "fixed_line",
    "premium_rate",
    "toll_free",
    "shared_cost",
    "voip",
    "personal_number",
    "pager",
    "uan",
    "voicemail",
)
_Rule = tuple[frozenset[int] | None, re.Pattern[str]] | None


def _is_valid_number(number: phonenumbers.PhoneNumber) -> bool:
    """Same result as phonenumbers.is_valid_number(number)."""
    nsn = phonenumbers.national_significant_number(number)
    return _country_rule(number.country_code)(nsn)


def _desc_rule(desc) -> _Rule:
    """A PhoneNumberDesc as (allowed lengths or None for any, pattern)."""
    if desc is None or not desc.national_number_pattern:
        return None
    lengths = frozenset(desc.possible_length) if desc.possible_length else None
    return lengths, re.compile(desc.national_number_pattern)


class _RegionRule:
    """`_number_type_helper(nsn, metadata) != UNKNOWN`: the general pattern and
    at least one number type (mobile only when it differs from fixed line)."""

    def __init__(self, metadata):
        self.metadata = metadata
        self.general = _desc_rule(metadata.general_desc)
        names = list(_TYPE_DESCS)
        if not metadata.same_mobile_and_fixed_line_pattern:
            names.insert(0, "mobile")
        self.types = [r for r in (_desc_rule(getattr(metadata, n)) for n in names) if r]
        self.by_length: dict[int, re.Pattern[str] | None] = {}

    def __call__(self, nsn: str) -> bool:
        size = len(nsn)
        try:
            joined = self.by_length[size]
        except KeyError:
            joined = self.by_length[size] = self._for_length(size)
        return joined is not None and joined.fullmatch(nsn) is not None

    def _for_length(self, size: int) -> re.Pattern[str] | None:
        """One expression for numbers of `size` digits: the general pattern
        (a lookahead over the whole number) and any of the types' patterns
        allowed at that length; None when no number of that length is valid."""
        if self.general is None:
            return None
        lengths, general = self.general
        if lengths is not None and size not in lengths:
            return None
        alternatives = [
            f"(?:{pattern.pattern})"
            for lengths, pattern in self.types
            if lengths is None or size in lengths
        ]
        if not alternatives:
            return None
        return re.compile(f"(?=(?:{general.pattern})\\Z)(?:{'|'.join(alternatives)})")


def _never(nsn: str) -> bool:
    return False


def _region_validity(code: int, region: str) -> Callable[[str], bool]:
    """is_valid_number_for_region for numbers with country code `code`."""
    metadata = PhoneMetadata.metadata_for_region_or_calling_code(code, region.upper())
    if metadata is None or (
        region != REGION_CODE_FOR_NON_GEO_ENTITY
        and code != phonenumbers.country_code_for_valid_region(region)
    ):
        return _never
    return _RegionRule(metadata)


@functools.cache
def _country_rule(code: int) -> Callable[[str], bool]:
    """is_valid_number for a country code: find the region as
    region_code_for_number does, then validate for that region."""
    regions = _COUNTRY_CODES.get(code)
    if not regions:
        return _never
    if len(regions) == 1:
        return _region_validity(code, regions[0])
    candidates = []
    for region in regions:
        metadata = PhoneMetadata.metadata_for_region(region.upper(), None)
        if metadata is None:
            continue
        leading = metadata.leading_digits
        validity = _region_validity(code, region)
        # Usually the region is found with the very rule that validates it.
        same = isinstance(validity, _RegionRule) and validity.metadata is metadata
        candidates.append(
            (
                re.compile(leading) if leading is not None else None,
                validity if same else _RegionRule(metadata),
                validity,
            )
        )

    def valid(nsn: str) -> bool:
        for leading, selector, validity in candidates:
            if leading is not None:
                if leading.match(nsn):
                    return validity(nsn)
            elif selector(nsn):
                return selector is validity or validity(nsn)
        return False

    return valid


def phone_search_term(term: str) -> str | None:
    """The E.164 form of a search term when it reads as a phone number."""
    if not any(ch.isdigit() for ch in term):
        return None
    try:
        return normalise_phone(term)
    except InvalidIdentity:
        return None
