"""A contact's country, read from their numbers' E.164 prefixes.

A condition on the country becomes index range conditions on the stored
identity ("+33" <= identity < "+34"), never a call of phonenumbers per row.
The prefixes come from phonenumbers' metadata, compiled once per country:

- a country alone on its calling code: "+" and the code;
- a country sharing its code and named by leading digits (Jamaica: +1 658,
  +1 876): those digits, expanded from the metadata's pattern;
- a country sharing its code without leading digits (Canada, Jersey): the
  first digits of its number patterns, up to PREFIX_DIGITS, except those
  the country tried before it (phonenumbers' own order) could also own;
- the code's main country (the US for +1): the code minus all of those.

Numbers phonenumbers tells apart only past PREFIX_DIGITS digits go to the
country tried first, as phonenumbers would for an ambiguous number.
"""

import functools
import re
import re._parser as sre_parse  # the standard library's regex parser
from re._constants import (
    ANY,
    BRANCH,
    CATEGORY,
    CATEGORY_DIGIT,
    IN,
    LITERAL,
    MAX_REPEAT,
    MIN_REPEAT,
    NEGATE,
    RANGE,
    SUBPATTERN,
)

import phonenumbers
from phonenumbers import COUNTRY_CODE_TO_REGION_CODE, PhoneMetadata

PREFIX_DIGITS = 5
NUMBER_TYPES = (
    "fixed_line",
    "mobile",
    "toll_free",
    "premium_rate",
    "shared_cost",
    "personal_number",
    "voip",
    "pager",
    "uan",
    "voicemail",
)
DIGITS = "0123456789"


def is_known_country(code: str) -> bool:
    """Whether `code` (any case) is a region phonenumbers knows."""
    return code.upper() in phonenumbers.SUPPORTED_REGIONS


def country_choices() -> list[list[str]]:
    """[[code, "Name (code)"], ...] sorted by name, for the editor."""
    choices = [
        [code, f"{country_name(code)} ({code})"]
        for code in phonenumbers.SUPPORTED_REGIONS
    ]
    return sorted(choices, key=lambda choice: choice[1])


def country_name(code: str) -> str:
    """The English name phonenumbers' locale data gives `code`, else `code`."""
    from phonenumbers.geodata.locale import LOCALE_DATA

    names = LOCALE_DATA.get(code.upper(), {})
    name = names.get("en", "")
    while name.startswith("*"):  # "*aa": the same as language "aa"
        name = names.get(name[1:], "")
    return name or code.upper()


@functools.cache
def country_prefixes(country: str) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """(prefixes, exceptions): a number is in `country` when it starts with
    one of the prefixes and none of the exceptions ("+1", ...)."""
    country = country.upper()
    metadata = PhoneMetadata.metadata_for_region(country)
    if metadata is None:
        return (), ()
    code = metadata.country_code
    regions = COUNTRY_CODE_TO_REGION_CODE.get(code, ())
    if len(regions) == 1:
        return (f"+{code}",), ()
    owned = _owned_prefixes(code)
    if metadata.main_country_for_code:
        others = sorted(
            p for region, ps in owned.items() if region != country for p in ps
        )
        return (f"+{code}",), tuple(f"+{code}{p}" for p in _minimal(others))
    return tuple(f"+{code}{p}" for p in _minimal(owned.get(country, []))), ()


def _merged(prefixes: set[str], others: list[str]) -> set[str]:
    """Replaces siblings ("2042" ... "2049") by their parent ("204") when no
    other country's pattern can start with the missing ones ("2040")."""
    merged = set(prefixes)
    for length in range(max(map(len, merged), default=0), 1, -1):
        parents = {prefix[:-1] for prefix in merged if len(prefix) == length}
        for parent in parents:
            missing = [parent + d for d in DIGITS if parent + d not in merged]
            if not any(_can_start(p, m) for m in missing for p in others):
                merged -= {parent + digit for digit in DIGITS}
                merged.add(parent)
    return merged


@functools.cache
def _owned_prefixes(code: int) -> dict[str, list[str]]:
    """Non-main region -> national prefixes it owns, for a shared code."""
    regions = COUNTRY_CODE_TO_REGION_CODE[code]
    metadata = {r: PhoneMetadata.metadata_for_region(r) for r in regions}
    owned: dict[str, list[str]] = {}
    for position, region in enumerate(regions):
        md = metadata[region]
        if md is None or md.main_country_for_code:
            continue
        if md.leading_digits:
            owned[region] = sorted(_expand(md.leading_digits, PREFIX_DIGITS))
            continue
        earlier = [
            p for r in regions[:position] if metadata[r] for p in _patterns(metadata[r])
        ]
        others = [
            p
            for r in regions
            if r != region and metadata[r]
            for p in _patterns(metadata[r])
        ]
        own = {
            prefix
            for prefix in _expand_all(_patterns(md), PREFIX_DIGITS)
            if not any(_can_start(p, prefix) for p in earlier)
        }
        owned[region] = sorted(_merged(own, others))
    return owned


def _patterns(metadata) -> list[str]:
    if metadata.leading_digits:
        return [f"(?:{metadata.leading_digits})\\d*"]
    found = []
    for kind in NUMBER_TYPES:
        desc = getattr(metadata, kind, None)
        if desc is not None and desc.national_number_pattern:
            found.append(desc.national_number_pattern)
    return found


def _expand_all(patterns: list[str], digits: int) -> set[str]:
    prefixes: set[str] = set()
    for pattern in patterns:
        prefixes |= _expand(pattern, digits)
    return prefixes


def _minimal(prefixes: list[str]) -> list[str]:
    """Drops prefixes that a shorter one in the list already covers."""
    kept: list[str] = []
    for prefix in sorted(set(prefixes)):
        if not kept or not prefix.startswith(kept[-1]):
            kept.append(prefix)
    return kept


def _expand(pattern: str, digits: int) -> set[str]:
    """The strings of up to `digits` characters that start a match of
    `pattern` (or are a whole match when shorter)."""
    return set(_seq(list(sre_parse.parse(pattern)), 0, "", digits))


def _seq(items: list, index: int, prefix: str, limit: int):
    if len(prefix) >= limit or index == len(items):
        yield prefix[:limit]
        return
    for produced in _item(items[index], prefix, limit):
        yield from _seq(items, index + 1, produced, limit)


def _item(item, prefix: str, limit: int):
    op, av = item
    if op in (LITERAL, IN, ANY):
        for char in _chars(op, av):
            yield prefix + char
    elif op == SUBPATTERN:
        yield from _seq(list(av[-1]), 0, prefix, limit)
    elif op == BRANCH:
        for branch in av[1]:
            yield from _seq(list(branch), 0, prefix, limit)
    elif op in (MAX_REPEAT, MIN_REPEAT):
        low, high, body = av
        yield from _repeat(list(body), low, high, prefix, limit, 0)
    else:  # anchors and the like consume nothing
        yield prefix


def _repeat(body: list, low: int, high: int, prefix: str, limit: int, done: int):
    if done >= low or len(prefix) >= limit:
        yield prefix
    if done < high and len(prefix) < limit:
        for produced in _seq(body, 0, prefix, limit):
            if produced != prefix:  # an empty repetition would loop forever
                yield from _repeat(body, low, high, produced, limit, done + 1)


def _chars(op, av) -> str:
    if op == LITERAL:
        return chr(av)
    if op == ANY:
        return DIGITS
    chars, negate = set(), False
    for kind, value in av:
        if kind == LITERAL:
            chars.add(chr(value))
        elif kind == RANGE:
            chars.update(chr(c) for c in range(value[0], value[1] + 1))
        elif kind == CATEGORY and value == CATEGORY_DIGIT:
            chars.update(DIGITS)
        elif kind == NEGATE:
            negate = True
    if negate:
        chars = set(DIGITS) - chars
    return "".join(sorted(c for c in chars if c in DIGITS))


def _can_start(pattern: str, prefix: str) -> bool:
    """Whether some match of `pattern` starts with `prefix` (or is a prefix
    of it): `prefix` is among the pattern's expansions to its length."""
    return prefix in _expansions(pattern, len(prefix)) or any(
        prefix.startswith(p) for p in _short_matches(pattern, len(prefix))
    )


@functools.cache
def _expansions(pattern: str, digits: int) -> frozenset[str]:
    return frozenset(_expand(pattern, digits))


@functools.cache
def _short_matches(pattern: str, digits: int) -> tuple[str, ...]:
    compiled = re.compile(pattern)
    return tuple(
        p
        for p in _expansions(pattern, digits)
        if len(p) < digits and compiled.fullmatch(p)
    )
