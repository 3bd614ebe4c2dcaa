"""Channel identities: phone numbers normalised to E.164, other ids cleaned."""

import random

import phonenumbers
import pytest
from phonenumbers import PhoneNumberFormat, PhoneNumberType

from contacts.phones import (
    InvalidIdentity,
    normalise_identity,
    normalise_phone,
    stored_e164,
)

DE_MOBILE = "+4915123456789"
US_NUMBER = "+12015550123"
GB_MOBILE = "+447400123456"


@pytest.mark.parametrize(
    "raw",
    [
        "+4915123456789",
        "  +4915123456789  ",
        "+49 151 23456789",
        "+49-151-2345-6789",
        "+49.151.234.567.89",
        "+49 (151) 23456789",
        "+49 (0)151 23456789",
        "+49 (0) 151 / 234 567 89",
        "tel:+49-151-23456789",
        "TEL:+4915123456789",
        "0049 151 23456789",
        "0049-151-23456789",
        "4915123456789",
        "49 151 23456789",
        # unicode spaces: no-break, thin, narrow no-break, ideographic
        "+49\u00a0151\u2009234\u202f56789",
        "\u3000+4915123456789",
        # unicode dashes: en, non-breaking hyphen, em, minus sign
        "+49\u2013151\u2011234\u201456789",
        "+49\u2212151\u221223456789",
    ],
)
def test_international_formats_normalise_to_e164(raw):
    assert normalise_phone(raw) == DE_MOBILE


@pytest.mark.parametrize(
    ("region", "raw", "expected"),
    [
        ("US", "(201) 555-0123", US_NUMBER),
        ("US", "201-555-0123", US_NUMBER),
        ("US", "201.555.0123", US_NUMBER),
        ("US", "1 201 555 0123", US_NUMBER),
        ("US", "+1 (201) 555-0123", US_NUMBER),
        ("US", "447400123456", GB_MOBILE),
        ("GB", "07400 123456", GB_MOBILE),
        ("GB", "07400-123-456", GB_MOBILE),
        ("GB", "020 7946 0018", "+442079460018"),
        ("GB", "+44 (0)20 7946 0018", "+442079460018"),
        ("GB", "12015550123", US_NUMBER),
        ("GB", "0012015550123", US_NUMBER),
    ],
)
def test_national_numbers_use_the_default_region_setting(
    settings, region, raw, expected
):
    settings.PHONE_DEFAULT_REGION = region
    assert normalise_phone(raw) == expected
    assert normalise_identity("SMS", raw) == expected


def test_an_explicit_region_overrides_the_setting(settings):
    settings.PHONE_DEFAULT_REGION = "US"
    assert normalise_phone("07400 123456", "GB") == GB_MOBILE
    assert normalise_identity("WHATSAPP", "07400 123456", "GB") == GB_MOBILE


def _digits(text: str, zero: int) -> str:
    """`text` with its ASCII digits written in the script whose zero is `zero`."""
    return text.translate({ord("0") + i: chr(zero + i) for i in range(10)})


FULLWIDTH, ARABIC_INDIC = 0xFF10, 0x0660


@pytest.mark.parametrize(
    "raw",
    [
        "+" + _digits("4915123456789", FULLWIDTH),
        "+" + _digits("4915123456789", ARABIC_INDIC),
        # An ASCII country code, then the national part in fullwidth digits.
        "+4" + _digits("915123456789", FULLWIDTH),
        "+49" + _digits("15123456789", FULLWIDTH),
    ],
    ids=["fullwidth", "arabic-indic", "mixed-after-+4", "mixed-after-+49"],
)
def test_unicode_digits_come_out_as_ascii_e164(raw):
    assert normalise_phone(raw) == DE_MOBILE


@pytest.mark.parametrize(
    "raw",
    [
        "+1234",
        "12345",
        "+49 151",
        "abc",
        "hello world",
        "phone: n/a",
        "+49 151 2345678a",
        "+1 201 555 012",
        "+1 201 555 01234",
        "+44 7400 1234",
        "+999123456789",
        "00",
        "+",
        "tel:",
    ],
)
def test_invalid_phone_numbers_are_rejected(settings, raw):
    settings.PHONE_DEFAULT_REGION = "US"
    with pytest.raises(InvalidIdentity, match="not a valid phone number"):
        normalise_identity("SMS", raw)


@pytest.mark.parametrize("raw", ["", "   ", "\t\n", None])
def test_an_empty_identity_is_rejected_on_every_channel(raw):
    for channel in ("SMS", "WHATSAPP", "MESSENGER", "TELEGRAM"):
        with pytest.raises(InvalidIdentity, match="empty"):
            normalise_identity(channel, raw)


@pytest.mark.parametrize("channel", ["SMS", "WHATSAPP", "RCS", "MMS", "VIBERBM"])
def test_every_phone_channel_normalises_numbers(channel):
    assert normalise_identity(channel, "+49 (0)151 2345-6789") == DE_MOBILE


@pytest.mark.parametrize(
    ("channel", "raw"),
    [
        ("MESSENGER", "1234567890123456"),
        ("INSTAGRAM", "17841400000000000"),
        ("TELEGRAM", "@some_user"),
        ("LINE", "U4af4980629abcdef0123456789abcdef"),
        ("APPLEBC", "urn:mbid:AQAAY5mV8Z0"),
        ("MESSENGER", "+4915123456789"),  # not a phone channel: kept as given
        ("TELEGRAM", "0049-151"),
    ],
)
def test_non_phone_channels_keep_the_identity_as_given(channel, raw):
    assert normalise_identity(channel, raw) == raw
    assert normalise_identity(channel, f"  {raw}\n") == raw


@pytest.mark.parametrize(
    "raw",
    [
        "psid with space",
        "tab\tinside",
        "null\x00byte",
        "bell\x07",
        "escape\x1b[31m",
        "nbsp\u00a0inside",
        "zero\u200bwidth",
        "line\nbreak",
    ],
)
def test_non_phone_identities_with_spaces_or_control_characters_are_rejected(raw):
    with pytest.raises(InvalidIdentity, match="spaces or control characters"):
        normalise_identity("MESSENGER", raw)


def test_non_phone_identities_longer_than_the_column_are_rejected():
    assert normalise_identity("TELEGRAM", "x" * 128) == "x" * 128
    with pytest.raises(InvalidIdentity, match="longer than 128"):
        normalise_identity("TELEGRAM", "x" * 129)


_TYPES = [
    PhoneNumberType.MOBILE,
    PhoneNumberType.FIXED_LINE,
    PhoneNumberType.TOLL_FREE,
    PhoneNumberType.VOIP,
    PhoneNumberType.PERSONAL_NUMBER,
    PhoneNumberType.UAN,
]


def _near_examples(seed: int, per_type: int):
    """(region, its metadata, the example, digits, roll) near every region's
    example numbers: three digits varied, and by `roll` one digit fewer
    (below 0.1) or more (below 0.2); the callers use the rest of `roll`."""
    rng = random.Random(seed)
    for region in sorted(phonenumbers.SUPPORTED_REGIONS):
        metadata = phonenumbers.PhoneMetadata.metadata_for_region(region)
        for kind in _TYPES:
            example = phonenumbers.example_number_for_type(region, kind)
            if example is None:
                continue
            national = phonenumbers.national_significant_number(example)
            for _ in range(per_type):
                digits = list(national)
                for i in rng.sample(range(len(digits)), min(3, len(digits))):
                    digits[i] = str(rng.randint(0, 9))
                roll = rng.random()
                if roll < 0.1:
                    digits.pop()
                elif roll < 0.2:
                    digits.append(str(rng.randint(0, 9)))
                yield region, metadata, example, digits, roll


def _generated_e164_numbers(seed: int = 20240611):
    """E.164 strings near every region's example numbers, valid and not.

    Digits are varied; some get one digit fewer or more, some the region's
    national prefix after the country code ("+49 0151..."), which the full
    parser strips.
    """
    for _, metadata, example, digits, roll in _near_examples(seed, 5):
        if 0.2 <= roll < 0.3 and metadata.national_prefix:
            digits.insert(0, metadata.national_prefix)
        yield "+" + str(example.country_code) + "".join(digits)


def _full_parse(value: str) -> str | None:
    try:
        number = phonenumbers.parse(value, None)
    except phonenumbers.NumberParseException:
        return None
    if not phonenumbers.is_valid_number(number):
        return None
    return phonenumbers.format_number(number, PhoneNumberFormat.E164)


def test_the_e164_fast_path_agrees_with_the_full_phonenumbers_parse():
    numbers = list(dict.fromkeys(_generated_e164_numbers()))
    assert len(numbers) > 2000
    disagreements = []
    valid = 0
    for value in numbers:
        try:
            ours = normalise_phone(value)
        except InvalidIdentity:
            ours = None
        theirs = _full_parse(value)
        valid += theirs is not None
        if ours != theirs:
            disagreements.append((value, ours, theirs))
    assert disagreements == []
    # The sample must exercise both outcomes to mean anything.
    assert 500 < valid < len(numbers) - 200


def test_numbers_written_with_spaces_get_the_same_answer_as_phonenumbers():
    disagreements = []
    for value in dict.fromkeys(_generated_e164_numbers(seed=5)):
        spaced = f"{value[:3]} {value[3:7]} {value[7:]}"
        try:
            ours = normalise_phone(spaced)
        except InvalidIdentity:
            ours = None
        theirs = _full_parse(value)
        if ours != theirs:
            disagreements.append((spaced, ours, theirs))
    assert disagreements == []


def _generated_national_numbers(seed: int = 7):
    """(region, digits) as people type numbers in their own country: near
    every region's example numbers, with digits varied, one fewer or more,
    and some with the national prefix, the country code or the
    international prefix in front."""
    for region, metadata, example, digits, roll in _near_examples(seed, 4):
        if 0.2 <= roll < 0.35 and metadata.national_prefix:
            digits.insert(0, metadata.national_prefix)
        elif 0.35 <= roll < 0.45:
            digits.insert(0, str(example.country_code))
        elif 0.45 <= roll < 0.5 and metadata.preferred_international_prefix:
            digits.insert(0, metadata.preferred_international_prefix)
        yield region, "".join(digits)


def _full_parse_in(region: str, digits: str) -> str | None:
    """What normalise_phone promises for bare digits: read in the region
    first, then as "+digits"; the full phonenumbers parse for each."""
    for candidate in [digits, "+" + digits] if len(digits) >= 8 else [digits]:
        try:
            number = phonenumbers.parse(candidate, region)
        except phonenumbers.NumberParseException:
            continue
        if phonenumbers.is_valid_number(number):
            return phonenumbers.format_number(number, PhoneNumberFormat.E164)
    return None


def test_national_numbers_of_every_region_get_the_same_answer_as_phonenumbers():
    cases = list(dict.fromkeys(_generated_national_numbers()))
    # Belarus's national prefix is 8: phonenumbers strips it from
    # "8102450911" and finds the rest invalid, although +375 8102450911
    # would be a valid number.
    cases.append(("BY", "8102450911"))
    assert len(cases) > 2000
    disagreements = []
    valid = 0
    for region, digits in cases:
        for typed in (digits, f"({digits[:3]}) {digits[3:6]}-{digits[6:]}"):
            try:
                ours = normalise_phone(typed, region)
            except InvalidIdentity:
                ours = None
            theirs = _full_parse_in(region, digits)
            valid += theirs is not None
            if ours != theirs:
                disagreements.append((region, typed, ours, theirs))
    assert disagreements == []
    # Both outcomes, or the comparison means little.
    assert 1000 < valid < 2 * len(cases) - 500


def test_a_stored_number_is_checked_as_the_full_normalisation_checks_it():
    # A launch reads each number as stored: stored_e164 answers as
    # normalise_phone would, or leaves the number to it (None).
    answered = 0
    for value in dict.fromkeys(_generated_e164_numbers(seed=11)):
        try:
            full = normalise_phone(value)
        except InvalidIdentity:
            full = None
        stored = stored_e164(value)
        assert stored is None or stored == full == value, value
        answered += stored is not None
    assert answered > 500
    # Written otherwise, a number is left to the full normalisation.
    for typed in (
        "+1 201 555 0123",
        "tel:+12015550123",
        "0012015550123",
        " +12015550123",
    ):
        assert stored_e164(typed) is None
        assert normalise_phone(typed) == "+12015550123"
