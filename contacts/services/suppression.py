"""Suppression: which numbers may never be given consent or a message again.

The one rule is `is_suppressed`: a number is suppressed when its owner was
erased (its keyed hash, see contacts.services.erasure, is on file; a phone
number on any phone channel), or when it belongs to a retired identity that
was opted out. The other functions are its bulk forms, for the paths that
check many numbers at once.

How the paths use it:
- creation paths (admin add and inline, replace number, the importer, which
  holds the hashes as a walk does (`ErasedNumbers`) and adds those erased
  since before each chunk, and contacts created by an inbound message)
  refuse a suppressed number;
- consent recording refuses an opt-in for one;
- the send paths (campaigns.authoring.audience: pre-send check, launch
  freeze, test send, the re-check before each Sinch call) exclude a live
  identity whose number was erased. Refusing creation alone is not enough
  there: a number can be live on WhatsApp for one contact when its owner is
  erased on SMS, and rows written before this rule were never checked. The
  check stays bulk, with no second copy of the hashes to keep in step
  (erasure keeps them in the identity column): a walk over a whole audience
  loads them once (`ErasedNumbers`; few: one per erased identity) and hashes
  each opted-in number in memory, and only when there are any; a few numbers
  (preview, test send) are looked up in one query on the identity index; the
  re-check of a batch asks only for owners erased since the launch (an index
  probe that finds nobody almost always).
"""

from collections.abc import Iterable
from datetime import datetime, timedelta

from django.db.models import Q
from django.utils import timezone

from config.lib.bulk import batched
from config.lib.lookups import matching
from contacts.models import ChannelIdentity, ConsentState, Contact
from contacts.services.erasure import ERASED_PREFIX, keyed_hasher


class SuppressedIdentityError(ValueError):
    """The number is suppressed; the message says why (shown to the user)."""


CLOCK_MARGIN = timedelta(minutes=10)


def _erased_hashes(**erased) -> set[str]:
    """The hashed identities of the contacts matching `erased` (a condition on
    `erased_at`): first those contacts, from the partial index
    contact_erased_at (nobody, almost always: then nothing more is asked),
    then their identities by the contact index. As one query with a
    subquery, PostgreSQL read every identity when the statistics lagged
    behind an import (50 ms for each chunk of 1,000,000)."""
    erased_ids = list(Contact.objects.filter(**erased).values_list("pk", flat=True))
    hashes: set[str] = set()
    for part in batched(erased_ids, 5000):  # within SQLite's query variables
        hashes.update(
            ChannelIdentity.objects.filter(
                contact_id__in=part, identity__startswith=ERASED_PREFIX
            ).values_list("identity", flat=True)
        )
    return hashes


def _live(identities: Iterable[str | None]) -> list[str]:
    return [i for i in identities if i and not i.startswith(ERASED_PREFIX)]


def erased_numbers(
    channel: str, identities: Iterable[str | None], *, since: datetime | None = None
) -> set[str]:
    """Those of `identities` (on `channel`) whose number was erased; one
    indexed query for all of them. None and erased hashes are skipped.

    `since`: only numbers whose owner was erased since then (the re-check of
    a launched campaign: its freeze saw the others), with a margin for the
    clocks of other machines; one index probe that finds nobody almost always,
    and then nothing is hashed.
    """
    live = _live(identities)
    if since is not None:
        recent = _erased_hashes(erased_at__gte=since - CLOCK_MARGIN)
        hashed = keyed_hasher(channel) if recent and live else None
        return {i for i in live if hashed(i) in recent} if hashed else set()
    hashed = keyed_hasher(channel)
    by_hash = {hashed(identity): identity for identity in live}
    found = matching(ChannelIdentity, "identity", list(by_hash))
    return {by_hash[value] for value, _ in found}


class ErasedNumbers:
    """The erased numbers' hashes, loaded once, for a walk over an audience
    or an import; `refresh` adds those erased since."""

    def __init__(self) -> None:
        # Found through the erased contacts' (partial) index: one hash per
        # erased identity, few next to an audience.
        self.loaded_at = timezone.now()
        self.hashes = _erased_hashes(erased_at__isnull=False)

    def refresh(self) -> None:
        """Add the numbers whose owners were erased since the last load, with
        a margin for the clocks of other machines (an import does, before
        each chunk): one probe of the erased contacts' index."""
        since = self.loaded_at - CLOCK_MARGIN
        self.loaded_at = timezone.now()
        self.hashes |= _erased_hashes(erased_at__gte=since)

    def among_pairs(self, pairs: Iterable[tuple[str, str]]) -> set[tuple[str, str]]:
        """Those (channel, identity) `pairs` whose number was erased (an
        import's chunk: one keyed HMAC per channel, none while nobody was
        ever erased)."""
        if not self.hashes:
            return set()
        by_channel: dict[str, list[str]] = {}
        for channel, identity in pairs:
            by_channel.setdefault(channel, []).append(identity)
        return {
            (channel, identity)
            for channel, identities in by_channel.items()
            for identity in self.among(channel, identities)
        }

    def among(self, channel: str, identities: Iterable[str | None]) -> set[str]:
        """Those of `identities` (on `channel`) whose number was erased."""
        if not self.hashes:
            return set()
        hashed, hashes = keyed_hasher(channel), self.hashes
        return {i for i in _live(identities) if hashed(i) in hashes}


def is_suppressed(channel: str, identity: str) -> bool:
    """Whether `identity` on `channel` may never be given consent or a message:
    its owner was erased, or it is a retired identity that was opted out."""
    if erased_numbers(channel, [identity]):
        return True
    opted_out = Q(marketing_consent=ConsentState.OPTED_OUT) | Q(
        transactional_consent=ConsentState.OPTED_OUT
    )
    retired = ChannelIdentity.objects.filter(
        channel=channel, identity=identity, retired_at__isnull=False
    )
    return retired.filter(opted_out).exists()
