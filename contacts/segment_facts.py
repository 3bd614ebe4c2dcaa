"""What segments count from on the contact row itself: `Contact.segment_facts`.

A segment's live count at 1,000,000 contacts cannot afford to join the
identities once per consent or country condition. So each contact carries
the facts those conditions read, as tokens between bars, derived from the
contact's live (not retired) identities only:

- "@FR": a live phone-channel identity in France, by the same prefix rule a
  country condition used on the identities (contacts.countries);
  "@+": a live phone-channel identity that is a number at all;
- "SMS:MARKETING:OPTED_IN": a live SMS identity in that consent state, one
  token per channel, purpose and state held.

No number, name or text: country codes, channels and states only (erasure
refreshes the row like any other change; an erased contact keeps at most
"…:OPTED_OUT" tokens and never matches a segment anyway).

Kept fresh by the identity model itself: ChannelIdentity.save() and its
queryset's update(), bulk_update() and bulk_create() call `refresh` for the
contacts they touch; the import's raw inserts call it for their chunk.
`rebuild` recomputes every contact (the data migration and the command
`rebuild_segment_facts`, which `--check` turns into a drift report).
"""

import functools
from collections import defaultdict
from collections.abc import Iterable

from django.apps import apps
from phonenumbers import COUNTRY_CODE_TO_REGION_CODE

from sinch.channels import PHONE_CHANNELS

PURPOSES = ("MARKETING", "TRANSACTIONAL")
CHUNK = 5000


def country_token(country: str) -> str:
    return f"|@{country.upper()}|"


NUMBER_TOKEN = "|@+|"


def consent_token(channel: str, purpose: str, state: str) -> str:
    return f"|{channel}:{purpose.upper()}:{state}|"


def facts_of(identities: Iterable[tuple]) -> str:
    """The facts text of a contact whose live identities are `identities`,
    as (channel, identity, marketing_consent, transactional_consent)."""
    tokens = set()
    for channel, identity, marketing, transactional in identities:
        for purpose, state in zip(PURPOSES, (marketing, transactional), strict=True):
            tokens.add(f"{channel}:{purpose}:{state}")
        if channel in PHONE_CHANNELS and identity.startswith("+"):
            tokens.add("@+")
            tokens.update(f"@{region}" for region in regions_of(identity))
    return "|" + "|".join(sorted(tokens)) + "|" if tokens else ""


def facts_of_one(channel: str, identity: str, marketing: str, transactional: str):
    """facts_of([(channel, identity, marketing, transactional)]): a contact
    with one identity, as most contacts an import creates. The text depends
    on the number's regions only, so it is made once per few hundred rows."""
    phone = channel in PHONE_CHANNELS and identity.startswith("+")
    regions = regions_of(identity) if phone else None
    return _facts_of_one(channel, regions, marketing, transactional)


@functools.lru_cache(maxsize=4096)
def _facts_of_one(
    channel: str, regions: frozenset[str] | None, marketing: str, transactional: str
) -> str:
    tokens = {
        f"{channel}:{purpose}:{state}"
        for purpose, state in zip(PURPOSES, (marketing, transactional), strict=True)
    }
    if regions is not None:
        tokens.add("@+")
        tokens.update(f"@{region}" for region in regions)
    return "|" + "|".join(sorted(tokens)) + "|"


def regions_of(number: str) -> frozenset[str]:
    """The regions whose prefix rule (countries.country_prefixes) takes
    `number`: those of its calling code (calling codes are prefix-free).
    Prefixes are short: the answer depends on the number's head alone, as
    long as the longest prefix or exception of its calling code (a few
    hundred distinct heads for a whole file, so the cache holds them)."""
    return _regions_of_head(number[: _head_length(number[:4])])


@functools.lru_cache(maxsize=1024)
def _head_length(start: str) -> int:
    """How much of a number starting with `start` ("+" and 3 digits) the
    prefix rules of its calling code can read (at most HEAD)."""
    for digits in (1, 2, 3):
        code = start[1 : 1 + digits]
        if code.isdigit() and int(code) in COUNTRY_CODE_TO_REGION_CODE:
            rules = [
                text
                for _, (prefixes, exceptions) in _rules(int(code))
                for text in (*prefixes, *(exceptions or ()))
            ]
            return min(HEAD, max(map(len, rules), default=HEAD))
    return HEAD


# Longer than any prefix or exception countries.country_prefixes gives
# (at most "+" and 3 + PREFIX_DIGITS digits; eight seen, e.g. "+3906698").
HEAD = 12


@functools.lru_cache(maxsize=100_000)
def _regions_of_head(number: str) -> frozenset[str]:
    for digits in (1, 2, 3):
        code = number[1 : 1 + digits]
        if code.isdigit() and int(code) in COUNTRY_CODE_TO_REGION_CODE:
            return frozenset(
                region
                for region, (prefixes, exceptions) in _rules(int(code))
                if number.startswith(prefixes)
                and not (exceptions and number.startswith(exceptions))
            )
    return frozenset()


@functools.cache
def _rules(code: int) -> tuple:
    from contacts.countries import country_prefixes

    return tuple(
        (region, country_prefixes(region))
        for region in COUNTRY_CODE_TO_REGION_CODE[code]
        if country_prefixes(region)[0]
    )


def _models(models=None):
    """(Contact, ChannelIdentity): the current ones, or a migration's."""
    if models is not None:
        return models
    return apps.get_model("contacts", "Contact"), apps.get_model(
        "contacts", "ChannelIdentity"
    )


def computed(contact_ids: Iterable[int], models=None) -> dict[int, str]:
    """The facts text each contact should have now (every id given)."""
    _, ChannelIdentity = _models(models)
    ids = sorted(contact_ids)
    rows = defaultdict(list)
    live = ChannelIdentity.objects.filter(retired_at=None)
    if ids and ids[-1] - ids[0] < 2 * len(ids):  # dense (a rebuild): a range
        live = live.filter(contact_id__gte=ids[0], contact_id__lte=ids[-1])
    else:
        live = live.filter(contact_id__in=ids)
    for contact_id, *identity in live.values_list(
        "contact_id",
        "channel",
        "identity",
        "marketing_consent",
        "transactional_consent",
    ):
        rows[contact_id].append(identity)
    return {pk: facts_of(rows.get(pk, ())) for pk in ids}


def refresh(contact_ids: Iterable[int], models=None) -> None:
    """Recompute the facts of these contacts: one UPDATE per distinct text
    (a chunk of contacts shares a few), CHUNK contacts at a time."""
    Contact, _ = _models(models)
    ids = sorted({int(pk) for pk in contact_ids if pk is not None})
    for start in range(0, len(ids), CHUNK):
        by_text = defaultdict(list)
        for pk, text in computed(ids[start : start + CHUNK], models).items():
            by_text[text].append(pk)
        for text, pks in by_text.items():
            Contact.objects.filter(pk__in=pks).exclude(segment_facts=text).update(
                segment_facts=text
            )


def rebuild(*, every: int = CHUNK, models=None) -> int:
    """Recompute every contact's facts; returns how many contacts."""
    Contact, _ = _models(models)

    done, last = 0, 0
    while True:
        ids = list(
            Contact.objects.filter(pk__gt=last)
            .order_by("pk")
            .values_list("pk", flat=True)[:every]
        )
        if not ids:
            return done
        refresh(ids, models)
        done, last = done + len(ids), ids[-1]


def drift(*, every: int = CHUNK) -> list[int]:
    """Contacts whose stored facts differ from a recomputation (none when
    every path kept them fresh)."""
    Contact, _ = _models()

    drifted, last = [], 0
    while True:
        stored = dict(
            Contact.objects.filter(pk__gt=last)
            .order_by("pk")
            .values_list("pk", "segment_facts")[:every]
        )
        if not stored:
            return drifted
        fresh = computed(stored)
        drifted += [pk for pk, text in stored.items() if fresh[pk] != text]
        last = max(stored)
