"""SMS encoding, segment counts and suspicious parameter values (pre-send warnings).

No database: these are the pure building blocks of the pre-send check.
"""

import random

import pytest

from campaigns.authoring import sms, suspicious

# --- encoding ----------------------------------------------------------------


def test_plain_ascii_text_is_gsm7():
    info = sms.analyse("Hi Anna, your code is 1234. Reply STOP to opt out!")
    assert info.encoding == sms.GSM7
    assert info.ucs2_chars == ()


def test_every_character_of_the_gsm_basic_table_keeps_gsm7_at_one_septet_each():
    info = sms.analyse(sms.GSM7_BASIC)
    assert info.encoding == sms.GSM7
    assert info.units == len(sms.GSM7_BASIC) == 127


@pytest.mark.parametrize("char", list("éèùìòÇÉÄÖÑÜäöñüàÅåØøÆæß£¥§¿¡ΔΦΓΛΩΠΨΣΘΞ¤@$_"))
def test_accented_and_greek_letters_of_the_gsm_table_stay_gsm7(char):
    assert sms.analyse(f"Caf{char}").encoding == sms.GSM7


# \u2019 \u201c: typographic quotes; \u00a0: no-break space.
@pytest.mark.parametrize(
    "char", [*"êâîôûëïçáíóúÁÍÓÚÈÊ`\tœ—…", "\u2019", "\u201c", "\u00a0"]
)
def test_characters_outside_the_gsm_table_force_ucs2(char):
    info = sms.analyse(f"Caf{char}")
    assert info.encoding == sms.UCS2
    assert info.ucs2_chars == (char,)


def test_e_acute_is_gsm_but_e_circumflex_forces_ucs2():
    assert sms.encoding("café") == sms.GSM7
    assert sms.encoding("crêpe") == sms.UCS2


def test_the_characters_forcing_ucs2_are_listed_once_in_order_of_appearance():
    text = "Grüße — «crêpe» et crêpe — ça 😀"
    assert sms.ucs2_characters(text) == ("—", "«", "ê", "»", "ç", "😀")


def test_extension_characters_keep_gsm7_but_count_two_septets():
    for char in sms.GSM7_EXTENSION:
        info = sms.analyse(f"a{char}b")
        assert info.encoding == sms.GSM7
        assert info.units == 4
    assert sms.analyse("Price: 5€ [{^~|\\}]").units == 9 + 2 * 9


# --- GSM-7 segments ------------------------------------------------------------


def test_empty_text_needs_no_segment():
    assert sms.segments("") == 0


def test_160_gsm_characters_fit_one_sms_and_161_need_two():
    assert sms.segments("a" * 160) == 1
    assert sms.segments("a" * 161) == 2


def test_a_concatenated_gsm_message_carries_153_characters_per_part():
    assert sms.segments("a" * 306) == 2
    assert sms.segments("a" * 307) == 3
    assert sms.segments("a" * 459) == 3
    assert sms.segments("a" * 460) == 4


def test_extension_characters_count_double_against_the_single_sms_limit():
    assert sms.analyse("a" * 158 + "€").segments == 1  # 160 septets
    assert sms.analyse("a" * 159 + "€").segments == 2  # 161 septets
    assert sms.segments("{}" * 80) == 3  # 160 characters, 320 septets


def test_a_part_boundary_never_splits_an_escape_sequence():
    # 152 septets, then "€" (2 septets) would straddle the end of part 1: it
    # moves whole to part 2, so 306 septets need 3 parts instead of 2.
    text = "a" * 152 + "€" + "a" * 152
    assert sms.analyse(text).units == 306
    assert sms.segments(text) == 3
    # The same length without a straddling escape fits two parts.
    assert sms.segments("€" + "a" * 304) == 2


def test_only_extension_characters_fill_parts_of_76_characters():
    assert sms.segments("€" * 80) == 1  # 160 septets
    assert sms.segments("€" * 81) == 2  # 162 septets: 76 + 5 characters
    assert sms.segments("€" * 152) == 2
    assert sms.segments("€" * 153) == 3  # 306 septets, but 76 per part


# --- UCS-2 segments ------------------------------------------------------------


def test_70_ucs2_characters_fit_one_sms_and_71_need_two():
    assert sms.segments("ê" * 70) == 1
    assert sms.segments("ê" * 71) == 2


def test_a_concatenated_ucs2_message_carries_67_characters_per_part():
    assert sms.segments("ê" * 134) == 2
    assert sms.segments("ê" * 135) == 3


def test_an_emoji_counts_two_utf16_units():
    info = sms.analyse("😀" * 35)
    assert info.encoding == sms.UCS2
    assert info.units == 70
    assert info.segments == 1
    assert sms.segments("😀" * 35 + "a") == 2


def test_a_part_boundary_never_splits_an_emoji():
    # 66 units, then an emoji (2): it moves to part 2.
    text = "ê" * 66 + "😀" + "ê" * 66
    assert sms.analyse(text).units == 134
    assert sms.segments(text) == 3
    assert sms.segments("😀" + "ê" * 132) == 2


def test_one_ucs2_character_turns_a_long_gsm_text_into_more_segments():
    assert sms.segments("a" * 150) == 1
    assert sms.segments("a" * 149 + "ê") == 3


# --- max parts ----------------------------------------------------------------


def test_a_message_over_the_max_number_of_parts_is_flagged_too_long():
    assert sms.analyse("a" * 306, max_parts=2).too_long is False
    assert sms.analyse("a" * 307, max_parts=2).too_long is True
    assert sms.analyse("ê" * 71, max_parts=1).too_long is True
    assert sms.analyse("a" * 159 + "€", max_parts=1).too_long is True


def test_without_a_max_number_of_parts_nothing_is_too_long():
    assert sms.analyse("a" * 10_000).too_long is False


# --- histogram ------------------------------------------------------------------


def test_the_segment_histogram_says_how_many_recipients_need_each_count():
    counts = [1] * 5 + [2] * 312 + [3]
    assert sms.histogram_lines(counts) == [
        "5 recipients need 1 segment",
        "312 recipients need 2 segments",
        "1 recipient needs 3 segments",
    ]


# --- suspicious values ------------------------------------------------------------


@pytest.mark.parametrize(
    "value", ["None", "null", "NULL", "nan", "NaN", "undefined", "#N/A", "n/a"]
)
def test_values_a_spreadsheet_writes_for_missing_data_are_suspicious(value):
    assert suspicious.problems(value) == [f'{suspicious.MISSING_MARKER} ("{value}")']


@pytest.mark.parametrize("value", [None, ""])
def test_a_missing_or_empty_value_is_reported_empty(value):
    assert suspicious.problems(value) == [suspicious.EMPTY]


def test_a_value_of_only_spaces_is_reported_blank():
    assert suspicious.problems("  \t") == [suspicious.BLANK]


@pytest.mark.parametrize("value", [" Anna", "Anna ", "Anna\n", "\u00a0Anna"])
def test_leading_or_trailing_whitespace_is_suspicious(value):
    assert suspicious.problems(value) == [suspicious.EDGE_SPACES]


def test_a_left_over_placeholder_is_suspicious():
    assert suspicious.problems("${first_name}") == [suspicious.PLACEHOLDER_LEFT]


def test_every_reason_of_one_value_is_reported():
    assert suspicious.problems(" None ") == [
        suspicious.EDGE_SPACES,
        f'{suspicious.MISSING_MARKER} ("None")',
    ]


@pytest.mark.parametrize(
    "value", ["Anna", "Nancy", "Nonetheless", "0", "N/A street 4", "$5", "{x}"]
)
def test_ordinary_values_are_not_suspicious(value):
    assert suspicious.problems(value) == []
    assert suspicious.is_suspicious(value) is False


def _reference_segments(text: str) -> int:
    """Character-by-character packing, the obvious (slow) way."""
    info = sms.analyse(text)
    if info.encoding == sms.GSM7:
        single, part = sms.GSM7_SINGLE, sms.GSM7_PART
        sizes = [2 if c in sms.GSM7_EXTENSION else 1 for c in text]
    else:
        single, part = sms.UCS2_SINGLE, sms.UCS2_PART
        sizes = [2 if ord(c) > 0xFFFF else 1 for c in text]
    if sum(sizes) <= single:
        return 1 if text else 0
    parts, used = 1, 0
    for size in sizes:
        if used + size > part:
            parts, used = parts + 1, 0
        used += size
    return parts


@pytest.mark.parametrize("alphabet", ["ab€{", "ab€{ê", "aê😀", "a😀"])
def test_segment_counts_match_character_by_character_packing(alphabet):
    rng = random.Random(alphabet)
    for _ in range(300):
        text = "".join(rng.choice(alphabet) for _ in range(rng.randrange(0, 700)))
        assert sms.segments(text) == _reference_segments(text), text
