"""A contact's history: one timeline, newest first, merged from several sources.

The contacts app knows its own consent ledger; other apps add what they keep
about a person (campaigns: the messages sent to them and their replies) by
registering a source, from their AppConfig.ready(), so contacts never imports
them (the same way they take part in erasure through contact_erased).

A source answers three questions about one contact, each in one query:
how many entries it has (`count`), the (time, id) keys of its newest
`limit` entries (`keys`), and the entries of some ids (`entries`). A page is
then the merge of the sources' keys, cut to the page, and only the page's
entries are read: a contact in 500 campaigns costs the same number of
queries as one in five, and at most page x per_page small keys per source.
"""

import heapq
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Protocol

from django.core.paginator import Page, Paginator
from django.urls import reverse

from config.lib.redaction import mask_number
from contacts.models import ConsentEvent, Contact

PER_PAGE = 25


@dataclass(frozen=True)
class HistoryEntry:
    """One line of the timeline, in words; `url` opens the record it stands for."""

    at: datetime
    kind: str  # "campaign", "reply" or "consent": a CSS class and a label
    label: str  # the kind in words, e.g. "Campaign", "Test send"
    title: str
    status: str = ""
    details: tuple[str, ...] = ()
    url: str = ""


class HistorySource(Protocol):
    kind: str

    def count(self, contact: Contact) -> int: ...

    def keys(self, contact: Contact, limit: int) -> Sequence[tuple[datetime, int]]:
        """The (time, id) of the newest `limit` entries, newest first."""
        ...

    def entries(self, contact: Contact, ids: Iterable[int]) -> dict[int, HistoryEntry]:
        """The entries of `ids` (those of `keys`), by id."""
        ...


_sources: dict[str, HistorySource] = {}


def register_source(source: HistorySource) -> None:
    """Add (or replace, by its kind) a source of the timeline."""
    _sources[source.kind] = source


def sources() -> list[HistorySource]:
    return list(_sources.values())


@dataclass
class HistoryPage:
    entries: list[HistoryEntry]
    page: Page
    counts: dict[str, int] = field(default_factory=dict)
    links: list[dict] = field(default_factory=list)  # set by the admin

    @property
    def page_links(self) -> list:
        """Page numbers, with Paginator.ELLIPSIS where some are left out."""
        if self.page.paginator.num_pages <= 1:
            return []
        return list(
            self.page.paginator.get_elided_page_range(
                self.page.number, on_each_side=2, on_ends=1
            )
        )


def contact_history(
    contact: Contact, page_number=1, *, per_page: int = PER_PAGE
) -> HistoryPage:
    """Page `page_number` (1 = newest; a bad or too high number gives the
    nearest page) of `contact`'s timeline."""
    counts = {s.kind: s.count(contact) for s in sources()}
    # A range stands for the timeline: the paginator only needs its length.
    page = Paginator(range(sum(counts.values())), per_page).get_page(page_number)
    if not page.object_list:
        return HistoryPage([], page, counts)
    start, stop = page.start_index() - 1, page.end_index()
    merged = heapq.merge(
        *(
            [(at, source.kind, pk) for at, pk in source.keys(contact, stop)]
            for source in sources()
            if counts[source.kind]
        ),
        key=lambda key: (key[0], key[2]),
        reverse=True,
    )
    wanted = list(merged)[start:stop]
    by_kind: dict[str, list[int]] = {}
    for _, kind, pk in wanted:
        by_kind.setdefault(kind, []).append(pk)
    found = {
        kind: _sources[kind].entries(contact, ids) for kind, ids in by_kind.items()
    }
    entries = [found[kind][pk] for _, kind, pk in wanted if pk in found[kind]]
    return HistoryPage(entries, page, counts)


class ConsentSource:
    """The consent ledger's events on any of the contact's identities."""

    kind = "consent"

    def _events(self, contact: Contact):
        return ConsentEvent.objects.filter(identity__contact=contact)

    def count(self, contact):
        return self._events(contact).count()

    def keys(self, contact, limit):
        events = self._events(contact).order_by("-occurred_at", "-pk")
        return list(events.values_list("occurred_at", "pk")[:limit])

    def entries(self, contact, ids):
        events = ConsentEvent.objects.filter(pk__in=list(ids)).select_related(
            "identity"
        )
        return {event.pk: self._entry(contact, event) for event in events}

    def _entry(self, contact: Contact, event: ConsentEvent) -> HistoryEntry:
        # Erasure keeps the ledger but hashes the numbers and the evidence:
        # neither means anything to a reader, so neither is shown.
        number = "" if contact.erased_at else mask_number(event.identity.identity)
        details = [f"Source: {event.get_source_display()}"]
        if event.actor_label:
            details.append(f"By {event.actor_label}")
        if not contact.erased_at:
            evidence = " / ".join(
                x for x in (event.evidence_wording, event.evidence_note) if x
            )
            if evidence:
                details.append(f"Evidence: {evidence}")
        return HistoryEntry(
            at=event.occurred_at,
            kind=self.kind,
            label="Consent",
            title=f"{event.get_kind_display().capitalize()}, "
            f"{event.get_purpose_display()}",
            status=" ".join(x for x in (event.channel, number) if x),
            details=tuple(details),
            url=reverse("admin:contacts_consentevent_change", args=[event.pk]),
        )


register_source(ConsentSource())
