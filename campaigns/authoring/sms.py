"""SMS encoding and segment count of a rendered text (GSM 03.38 / 3GPP TS 23.038).

A text goes out as GSM-7 when every character is in the GSM 03.38 default
alphabet or its extension table; otherwise the whole message is UCS-2.

- GSM-7: 160 septets in a single SMS, 153 per part of a concatenated one. The
  extension-table characters (form feed ^ { } \\ [ ] ~ | €) are sent as ESC +
  character, so they count 2 septets, and a part never ends between the two.
- UCS-2: 70 UTF-16 code units in a single SMS, 67 per part. A character outside
  the Basic Multilingual Plane (most emoji) is a surrogate pair: 2 units, never
  split across parts.

National language shift tables (Turkish, Spanish, Portuguese, Indian) are not
used: like most aggregators, Sinch sends such text as UCS-2.

`analyse` is meant for a million messages: about 1.5 µs for a typical 120-char
GSM text (one regular-expression scan in C finds every non-basic character)
and about 4 µs for UCS-2 text. Part boundaries are found per part, not per
character, so long texts with emoji or extension characters stay cheap.
"""

import re
from collections import Counter
from collections.abc import Iterable
from typing import NamedTuple

from sinch import wire
from sinch.placeholders import strings

GSM7 = "GSM-7"
UCS2 = "UCS-2"

GSM7_SINGLE, GSM7_PART = 160, 153
UCS2_SINGLE, UCS2_PART = 70, 67

# The default alphabet, in table order (0x00-0x7F), without 0x1B (ESC, the
# escape to the extension table, which is not a character of its own).
GSM7_BASIC = (
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ"
    " !\"#¤%&'()*+,-./0123456789:;<=>?"
    "¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§"
    "¿abcdefghijklmnopqrstuvwxyzäöñüà"
)
# The extension table: each costs 2 septets (ESC + code).
GSM7_EXTENSION = "\f^{}\\[]~|€"

_EXTENSION = frozenset(GSM7_EXTENSION)
# Anything outside the basic set: extension characters or ones forcing UCS-2.
_NOT_BASIC = re.compile(
    "[^" + "".join(f"\\u{ord(c):04x}" for c in GSM7_BASIC) + "]"
).findall


class SmsInfo(NamedTuple):
    """How a text travels as SMS.

    `units` are septets for GSM-7 and UTF-16 code units for UCS-2.
    `ucs2_chars` are the characters that force UCS-2, distinct, in order of
    first appearance (empty for GSM-7). `too_long` is True when `segments`
    exceeds the max_parts given to `analyse`. An empty text needs 0 segments.
    """

    encoding: str
    units: int
    segments: int
    ucs2_chars: tuple[str, ...]
    too_long: bool


def analyse(text: str, max_parts: int | None = None) -> SmsInfo:
    """Encoding, length and segment count of `text`.

    `max_parts` is the most parts the message may have (e.g. the campaign's
    SMS_MAX_NUMBER_OF_MESSAGE_PARTS channel property); None means no limit.
    """
    odd = _NOT_BASIC(text)
    if not odd:
        units = len(text)
        if units <= GSM7_SINGLE:
            segments = 1 if units else 0
        else:
            segments = -(-units // GSM7_PART)
        return SmsInfo(
            GSM7, units, segments, (), max_parts is not None and segments > max_parts
        )
    distinct = dict.fromkeys(odd)
    forcing = tuple(c for c in distinct if c not in _EXTENSION)
    if forcing:
        utf16 = text.encode("utf-16-le")
        units = len(utf16) >> 1
        if units <= UCS2_SINGLE:
            segments = 1
        elif units == len(text):
            segments = -(-units // UCS2_PART)
        else:
            segments = _ucs2_parts(utf16, units)
        return SmsInfo(
            UCS2,
            units,
            segments,
            forcing,
            max_parts is not None and segments > max_parts,
        )
    units = len(text) + len(odd)  # every odd character is an extension one
    if units <= GSM7_SINGLE:
        segments = 1
    else:
        septets = text  # ESC before each extension character (all of `distinct`)
        for char in distinct:
            septets = septets.replace(char, "\x1b" + char)
        segments = _gsm7_parts(septets)
    return SmsInfo(
        GSM7, units, segments, (), max_parts is not None and segments > max_parts
    )


def encoding(text: str) -> str:
    """GSM7 or UCS2."""
    return analyse(text).encoding


def ucs2_characters(text: str) -> tuple[str, ...]:
    """The characters of `text` that force UCS-2, distinct, in order of appearance."""
    return analyse(text).ucs2_chars


def segments(text: str, max_parts: int | None = None) -> int:
    """The number of SMS parts `text` is sent as."""
    return analyse(text, max_parts).segments


def histogram_lines(segment_counts: Iterable[int]) -> list[str]:
    """One sentence per segment count, fewest segments first.

    >>> histogram_lines([1, 2, 2])
    ['1 recipient needs 1 segment', '2 recipients need 2 segments']
    """
    lines = []
    for parts, people in sorted(Counter(segment_counts).items()):
        who = "1 recipient needs" if people == 1 else f"{people:,} recipients need"
        lines.append(f"{who} {parts} segment{'' if parts == 1 else 's'}")
    return lines


def _gsm7_parts(septets: str) -> int:
    """Parts of a concatenated GSM-7 message; `septets` has ESC before each
    extension character. A part ending on an ESC leaves it to the next part."""
    total, start, parts = len(septets), 0, 0
    while total - start > GSM7_PART:
        end = start + GSM7_PART
        if septets[end - 1] == "\x1b":
            end -= 1
        start = end
        parts += 1
    return parts + 1


def _ucs2_parts(utf16: bytes, units: int) -> int:
    """Parts of a concatenated UCS-2 message (`utf16`: little-endian code
    units). A part ending on a high surrogate leaves it to the next part."""
    start, parts = 0, 0
    while units - start > UCS2_PART:
        end = start + UCS2_PART
        if 0xD8 <= utf16[2 * end - 1] <= 0xDB:  # high byte of unit end - 1
            end -= 1
        start = end
        parts += 1
    return parts + 1


def sms_strings(message: dict) -> list[str]:
    """The texts an SMS recipient gets for a Sinch `message`, in order.

    An estimate: Sinch sends text and media natively and converts the other
    kinds to plain text without documenting the layout. Counted here: every
    text a recipient would read (titles, descriptions, the choices' titles,
    links and phone numbers, a location's map link of wire.SMS_LOCATION_LINK's
    form), never postback data, ids, times or types. An omni template's text
    is kept at Sinch, so only its parameter values count (an underestimate).
    A message's own SMS override replaces it.
    """
    payload = (message.get("explicit_channel_message") or {}).get("SMS")
    if isinstance(payload, str):
        return [payload]
    override = (message.get("explicit_channel_omni_message") or {}).get("SMS")
    if isinstance(override, dict) and override:
        return sms_strings(override)
    texts: list[str] = []
    for kind, content in message.items():
        if kind in _LAYOUTS and isinstance(content, dict):
            _LAYOUTS[kind](content, texts)
    return texts


def _add(texts: list[str], *values) -> None:
    texts.extend(v for v in values if isinstance(v, str))


def _text(content: dict, texts: list[str]) -> None:
    _add(texts, content.get("text"))


def _media(content: dict, texts: list[str]) -> None:
    _add(texts, content.get("url"))


def _choices(choices, texts: list[str]) -> None:
    for choice in choices or ():
        for kind, content in choice.items():
            if kind == "text_message":
                _add(texts, content.get("text"))
            elif kind == "location_message":
                _location(content, texts)
            elif isinstance(content, dict):
                _add(
                    texts,
                    content.get("title"),
                    content.get("url"),
                    content.get("phone_number"),
                    content.get("fallback_url"),
                )


def _card(content: dict, texts: list[str]) -> None:
    _add(texts, content.get("title"), content.get("description"))
    _add(texts, (content.get("media_message") or {}).get("url"))
    _choices(content.get("choices"), texts)


def _choice(content: dict, texts: list[str]) -> None:
    _add(texts, (content.get("text_message") or {}).get("text"))
    _choices(content.get("choices"), texts)


def _carousel(content: dict, texts: list[str]) -> None:
    for card in content.get("cards") or ():
        _card(card, texts)
    _choices(content.get("choices"), texts)


def _location(content: dict, texts: list[str]) -> None:
    _add(texts, content.get("title"), content.get("label"))
    point = content.get("coordinates") or {}
    if "latitude" in point and "longitude" in point:
        texts.append(wire.SMS_LOCATION_LINK.format(**point))


def _list(content: dict, texts: list[str]) -> None:
    _add(texts, content.get("title"), content.get("description"))
    _add(texts, (content.get("media") or {}).get("url"))
    for section in content.get("sections") or ():
        _add(texts, section.get("title"))
        for item in section.get("items") or ():
            choice = item.get("choice") or {}
            _add(texts, choice.get("title"), choice.get("description"))


def _contact_info(content: dict, texts: list[str]) -> None:
    _add(texts, (content.get("name") or {}).get("full_name"))
    for phone in content.get("phone_numbers") or ():
        _add(texts, phone.get("phone_number"))
    for email in content.get("email_addresses") or ():
        _add(texts, email.get("email_address"))
    _add(texts, (content.get("organization") or {}).get("company"))
    for url in content.get("urls") or ():
        _add(texts, url.get("url"))


def _template(content: dict, texts: list[str]) -> None:
    if "channel_template" in content:
        texts.extend(strings(content["channel_template"]))
    omni = content.get("omni_template") or content.get("template_reference")
    if isinstance(omni, dict):
        _add(texts, *(omni.get("parameters") or {}).values())


_LAYOUTS = {
    "text_message": _text,
    "media_message": _media,
    "card_message": _card,
    "choice_message": _choice,
    "carousel_message": _carousel,
    "location_message": _location,
    "list_message": _list,
    "contact_info_message": _contact_info,
    "template_message": _template,
    "template_reference": _template,
}
