"""Which recipient a batch processing report names, checked when it can be.

A processing report names a failed recipient by its position in the batch
(`message_index`), whose base Sinch has not confirmed
(sinch.wire.PROCESSING_REPORT_INDEX_BASE). When an entry also names the
recipient's channel identity, the recipient at the 0-based and at the 1-based
reading of the index are both compared with it (`recipient_identities`: any
of the recipient's identities) and the one that matches is taken; if neither
matches, the entry is a mismatch: kept with the reason, never applied, so a
failure is never put on the wrong person. Without an identity the wire guess
is trusted.
"""

import logging
from collections.abc import Iterable
from dataclasses import dataclass

from campaigns.models import Recipient
from sinch import wire

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Resolved:
    """A report entry's recipient (`recipient_id`), or why there is none."""

    recipient_id: int | None = None
    mismatch: str = ""  # the entry names someone else: stored, not applied


def recipient_identities(rows: Iterable[tuple]) -> dict[int, set[tuple[str, str]]]:
    """Every (channel, identity) each recipient can be reached on, from rows
    of (recipient id, identity, campaign channel[, fallback identities]).

    The one place that says who a recipient is: a recipient reached on a
    fallback channel under another identity adds that pair here (its
    `fallback_identities`, [[channel, identity], ...]).
    """
    found: dict[int, set[tuple[str, str]]] = {}
    for recipient_id, identity, channel, *fallbacks in rows:
        mine = found.setdefault(recipient_id, set())
        mine.add((channel, identity))
        for pairs in fallbacks:
            mine.update((c, i) for c, i in pairs or ())
    return found


def same_person(reported: tuple[str, str], identities: set[tuple[str, str]]) -> bool:
    """Whether the reported (channel, identity) is one of `identities`.

    Identities are compared without the "+" Sinch leaves out of phone
    numbers; the channel is not compared, because one value names one person
    on any channel and a fallback channel may report it."""
    value = _plain(reported[1])
    return any(_plain(identity) == value for _, identity in identities)


def _plain(identity: str) -> str:
    identity = identity.strip()
    bare = identity.lstrip("+")
    return bare if bare.isdigit() else identity


def resolve(reports: list) -> dict[tuple[int, int], Resolved]:
    """{(event id, entry number): Resolved} for the entries of `reports`
    ((event id, BatchProcessingReport, received at) tuples) that carry an
    index; two queries whatever their number."""
    wanted: set[tuple[str, int]] = set()
    for _, report, _ in reports:
        for failure in report.failures:
            for position in _positions(failure):
                wanted.add((report.batch_id, position))
    if not wanted:
        return {}
    batch_ids = {b for b, _ in wanted}
    indexes = {i for _, i in wanted}
    rows = list(
        Recipient.objects.filter(
            batch__sinch_batch_id__in=batch_ids, index__in=indexes
        ).values_list(
            "batch__sinch_batch_id",
            "index",
            "id",
            "identity",
            "campaign__channel",
            "fallback_identities",
        )
    )
    at = {(sinch_id, index): rid for sinch_id, index, rid, *_ in rows}
    identities = recipient_identities(row[2:] for row in rows)
    resolved: dict[tuple[int, int], Resolved] = {}
    for event_id, report, _ in reports:
        for n, failure in enumerate(report.failures):
            candidates = [
                (p, at[(report.batch_id, p)])
                for p in _positions(failure)
                if (report.batch_id, p) in at
            ]
            resolved[(event_id, n)] = _pick(failure, candidates, identities)
    return resolved


def _positions(failure) -> list[int]:
    """0-based positions the entry may mean, the wire guess first."""
    if failure.message_index is None:
        return []
    bases = [wire.PROCESSING_REPORT_INDEX_BASE]
    if failure.channel_identity is not None:
        bases += [b for b in wire.PROCESSING_REPORT_INDEX_BASES if b not in bases]
    return [failure.message_index - b for b in bases if failure.message_index >= b]


def _pick(failure, candidates, identities) -> Resolved:
    if failure.channel_identity is None:
        return Resolved(candidates[0][1] if candidates else None)
    reported = (failure.channel_identity.channel, failure.channel_identity.identity)
    for position, rid in candidates:
        if same_person(reported, identities.get(rid, set())):
            base = failure.message_index - position
            if base != wire.PROCESSING_REPORT_INDEX_BASE:
                # Evidence about Sinch's unconfirmed base: worth telling.
                logger.warning(
                    "a processing report counted positions from %s, not %s "
                    "(sinch.wire.PROCESSING_REPORT_INDEX_BASE)",
                    base,
                    wire.PROCESSING_REPORT_INDEX_BASE,
                )
            return Resolved(rid)
    if not candidates:
        return Resolved()
    named = ", ".join(f"recipient #{rid} (position {p})" for p, rid in candidates)
    # No identity in the text: this reason is stored, and must not hold a number.
    return Resolved(
        mismatch=f"index {failure.message_index}: the identity it names is not "
        f"that of {named}; not applied"
    )
