"""A campaign's audience: the union of its lists and its segments.

A person on several lists or segments is one member. Lists are read through
their (list, contact) index as before (campaigns.authoring.audience); a
campaign with segments has them evaluated once per walk (the pre-send check,
the launch freeze): their contact ids, with the lists' members, are kept as
one sorted array of 8-byte ids (8 MB for a million) and read a chunk at a
time. What a walk used is returned by `used_segments`, which the freeze
records on the campaign and in the audit trail.
"""

from array import array
from bisect import bisect_right
from collections.abc import Callable, Iterator

from django.db.models import Exists, F, OuterRef, Q, QuerySet

from campaigns.models import Campaign, Segment
from campaigns.segments.definition import describe, validate
from campaigns.segments.evaluate import definition_q
from contacts.models import Contact, ListMembership


class SegmentError(ValueError):
    """A campaign's segment whose definition is no longer valid."""


def has_segments(campaign: Campaign) -> bool:
    return campaign.segments.exists()


def usable_segments(campaign: Campaign) -> list[Segment]:
    """The campaign's segments, in id order; SegmentError names any whose
    definition is invalid (e.g. a list it names was deleted)."""
    segments = list(campaign.segments.order_by("pk"))
    for segment in segments:
        errors = validate(segment.definition)
        if errors:
            raise SegmentError(
                f"Segment “{segment.name}” cannot be used: {' '.join(errors)}"
            )
    return segments


def audience_contacts(campaign: Campaign) -> QuerySet[Contact]:
    """The campaign's members now (never erased), one row each, evaluated by
    the database on every use: for the preview and a few contacts."""
    in_lists, in_segments = _audience_qs(campaign)
    return Contact.objects.filter(erased_at=None).filter(in_lists | in_segments)


def _audience_qs(campaign: Campaign) -> tuple[Q, Q]:
    """(on one of the lists, matched by one of the valid segments)."""
    in_lists = Q(
        Exists(
            ListMembership.objects.filter(
                contact=OuterRef("pk"), contact_list__in=campaign.lists.values("pk")
            )
        )
    )
    in_segments = Q(pk__in=[])
    for segment in campaign.segments.all():
        if not validate(segment.definition):
            in_segments |= definition_q(segment.definition)
    return in_lists, in_segments


def audience_members(campaign: Campaign) -> QuerySet[Contact]:
    """`audience_contacts` with its id also readable as `contact_id`."""
    return audience_contacts(campaign).annotate(contact_id=F("pk"))


def used_segments(segments: list[Segment], counts: dict[int, int]) -> list[dict]:
    """What the freeze records: each segment's id, name, definition, its
    sentence and how many contacts it matched then."""
    return [
        {
            "id": segment.pk,
            "name": segment.name,
            "definition": segment.definition,
            "description": describe(segment.definition),
            "matched": counts.get(segment.pk, 0),
        }
        for segment in segments
    ]


def evaluate_audience(campaign: Campaign) -> tuple[array, list[dict]]:
    """The sorted, distinct contact ids of the lists' members and of each
    segment's matches (one query each), and the segments used.

    Raises SegmentError when a segment's definition is invalid.
    """
    segments = usable_segments(campaign)
    ids: set[int] = set(
        ListMembership.objects.filter(
            contact_list__in=campaign.lists.values("pk")
        ).values_list("contact_id", flat=True)
    )
    counts = {}
    for segment in segments:
        matched = Contact.objects.filter(erased_at=None).filter(
            definition_q(segment.definition)
        )
        found = 0
        for pk in matched.values_list("pk", flat=True).iterator(chunk_size=20_000):
            ids.add(pk)
            found += 1
        counts[segment.pk] = found
    ordered = array("q", sorted(ids))
    del ids
    return ordered, used_segments(segments, counts)


def id_chunks(
    campaign: Campaign,
    chunk_size: int,
    start_after: int = 0,
    on_segments: Callable[[list[dict]], None] | None = None,
) -> Iterator[list[int]]:
    """The audience's contact ids after `start_after`, `chunk_size` at a
    time, in id order; `on_segments` is called once with what was used."""
    ids, used = evaluate_audience(campaign)
    if on_segments is not None:
        on_segments(used)
    position = bisect_right(ids, start_after)
    while position < len(ids):
        yield list(ids[position : position + chunk_size])
        position += chunk_size


def audience_size(campaign: Campaign) -> int:
    """Distinct members now, as the walks count them (the lists' erased
    members included: the rule excludes them with the reason)."""
    if not has_segments(campaign):
        return (
            ListMembership.objects.filter(contact_list__in=campaign.lists.all())
            .values("contact_id")
            .distinct()
            .count()
        )
    in_lists, in_segments = _audience_qs(campaign)
    return Contact.objects.filter(in_lists | (Q(erased_at=None) & in_segments)).count()
