"""One chunk of an import: resolved against the database in bulk, then written.

Resolution finds existing identities and external ids with a few queries for
the chunk, erased numbers among the run's erased hashes; writing inserts new
rows as plain tuples (config.lib.bulk.TableWriter) and updates existing
contacts and identities with one set-based UPDATE per table (from a staging
table filled by COPY on PostgreSQL; the contacts merged by the database,
contacts.importing.merging), so a re-import costs about what a fresh import
does. Every write is made ready first, then sent in a thread while the
importer reads the next batch (ChunkPlan.apply; on PostgreSQL it resolves
the next chunk too, contacts.importing.pipeline).

Segment facts (contacts.segment_facts): a contact created here gets its facts
in its INSERT, computed by segment_facts.facts_of from the identities this
chunk gives it (it has no others); only existing contacts that gain an
identity or whose consent changes are refreshed from the database. A changed
name or attribute changes no fact.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING

from django.db import connection
from django.utils import timezone

from config.lib.bulk import TableWriter, db_time
from config.lib.lookups import matching, rows_by
from config.lib.shared_connection import run_beside, run_streamed_beside
from contacts import segment_facts
from contacts.importing.merging import attributes_text, prepare_merge
from contacts.importing.rows import ParsedRow
from contacts.models import (
    ChannelIdentity,
    ConsentEvent,
    ConsentState,
    Contact,
    ListMembership,
)
from contacts.services.consent import is_in_order, next_state, refold

if TYPE_CHECKING:
    from contacts.importing.importer import Importer

# A chunk's write, made and ready to send (TableWriter.prepare_insert).
Send = Callable[[], None]

ERASED_PROBLEM = (
    "this identity belongs to an erased person and stays suppressed; it is not imported"
)


@dataclass(slots=True)
class _NewContact:
    row: ParsedRow  # the first row with this contact's key
    # Copies of the row's values, made when a later row merges into them.
    fields: dict[str, str] | None = None
    attributes: dict[str, str] | None = None


@dataclass(slots=True)
class _Existing:
    """A stored identity the chunk names: its state for the import's purpose."""

    pk: int
    contact_id: int
    channel: str
    identity: str
    retired_at: datetime | None
    state: str
    at: datetime | None


@dataclass(slots=True)
class _NewIdentity:
    channel: str
    identity: str
    contact_ref: int | str  # an existing contact's pk, or a key of new_contacts
    line: int
    state: str = ConsentState.UNKNOWN
    at: datetime | None = None
    pk: int | None = None


class ChunkPlan:
    """What one chunk changes, resolved against the database in bulk."""

    def __init__(self, importer: Importer, rows: list[ParsedRow], *, wait=True):
        """`wait`: for the stored identities to lock, when another
        transaction holds one; without it, rows_by raises."""
        self.importer = importer
        self.wait = wait
        self.job = importer.job
        self.field = importer.field
        self.problems: dict[int, str] = {}
        self.counts = dict.fromkeys(
            (
                "contacts_created",
                "contacts_merged",
                "opt_ins",
                "opt_outs",
                "kept_opted_out",
            ),
            0,
        )
        self.new_contacts: dict[str, _NewContact] = {}  # external id or "#line"
        self.new_identities: list[_NewIdentity] = []
        self.merged: dict[int, list[ParsedRow]] = {}
        self.changed_identities: list[_Existing] = []
        self.facts_changed: list[int] = []  # contacts whose consent state moved
        # (existing identity pk or the new identity, channel, row)
        self.events: list[tuple[int | _NewIdentity, str, ParsedRow]] = []
        self.members: list[int | str] = []
        self.created: dict[str, int] = {}  # new contacts' ids by external id
        self._resolve(rows)

    def _resolve(self, rows: list[ParsedRow]) -> None:
        # Erased numbers: among the hashes the run holds (topped up before
        # each chunk, contacts.services.suppression.ErasedNumbers).
        erased = self.importer.erased.among_pairs((r.channel, r.identity) for r in rows)
        for r in rows:
            if erased and (r.channel, r.identity) in erased:
                self.problems[r.line] = ERASED_PROBLEM
        # Plain values, no model instances: a re-import reads a row per line.
        columns = ("id", "contact_id", "channel", "identity", "retired_at")
        columns += (self.field, f"{self.field}_at", "contact__external_id")
        existing, retired = {}, {}
        found = rows_by(
            ChannelIdentity,
            columns,
            "identity",
            [r.identity for r in rows if r.line not in self.problems],
            lock=not self.importer.dry_run,
            nowait=not self.wait,
        )
        # The external ids the identities' contacts hold need no lookup.
        by_ext: dict[str, int] = {}
        for *values, external_id in found:
            ident = _Existing(*values)
            if external_id:
                by_ext[external_id] = ident.contact_id
            if ident.retired_at is not None:
                # A replaced number stays with its ledger (and its opt-out);
                # bringing it back would give it consent again.
                retired[(ident.channel, ident.identity)] = ident.contact_id
            else:
                existing[(ident.channel, ident.identity)] = ident
        for row in rows:
            owner = retired.get((row.channel, row.identity))
            if owner is not None:
                self.problems[row.line] = (
                    f"this number was replaced on contact #{owner} and is retired "
                    "(it keeps its ledger and is never sent to); it is not imported"
                )
        ext_ids = {r.external_id for r in rows if r.external_id}
        unknown = list(ext_ids.difference(by_ext))
        by_ext.update(matching(Contact, "external_id", unknown, non_blank=True))
        # Contacts the chunk before creates, in a transaction still being
        # written (contacts.importing.pipeline): committed before this one is.
        writing = self.importer.created_in_flight
        for ext in ext_ids.intersection(writing).difference(by_ext):
            by_ext[ext] = writing[ext]
        for row in rows:
            if row.line not in self.problems:
                ident = existing.get((row.channel, row.identity))
                self._resolve_row(row, ident, by_ext)

    def _resolve_row(self, row, ident, by_ext) -> None:
        owner = by_ext.get(row.external_id) if row.external_id else None
        if ident is not None:
            if owner is not None and owner != ident.contact_id:
                self.problems[row.line] = (
                    f"{row.channel} {row.identity} belongs to contact "
                    f"#{ident.contact_id}, but external id {row.external_id!r} is "
                    f"contact #{owner}"
                )
                return
            self._merge(ident.contact_id, row)
            self._consent_existing(ident, row)
            self.members.append(ident.contact_id)
            return
        if owner is not None:
            self._merge(owner, row)
            contact_ref = owner
        else:
            contact_ref = self._new_contact(row)
        ident = _NewIdentity(row.channel, row.identity, contact_ref, row.line)
        if row.consent is not None:
            ident.state, ident.at = next_state(
                ConsentState.UNKNOWN,
                None,
                row.consent,
                True,
                row.consent_at or self.importer.now,
            )
            self.events.append((ident, row.channel, row))
            self._count_event(row)
        self.new_identities.append(ident)
        self.members.append(contact_ref)

    def _new_contact(self, row: ParsedRow) -> str:
        key = row.external_id or f"#{row.line}"
        if key in self.new_contacts:
            self._merge_fields(self.new_contacts[key], row)
            return key
        if row.external_id and self.importer.new_external_ids is not None:
            # dry run: an external id created by an earlier chunk is a merge.
            seen = self.importer.new_external_ids.check_and_add(
                [(row.external_id, row.line)]
            )[0]
            if seen is not None:
                self.counts["contacts_merged"] += 1
                return key
        self.new_contacts[key] = _NewContact(row)
        self.counts["contacts_created"] += 1
        return key

    def _merge(self, contact_id: int, row: ParsedRow) -> None:
        if contact_id not in self.merged:
            self.counts["contacts_merged"] += 1
        self.merged.setdefault(contact_id, []).append(row)

    @staticmethod
    def _merge_fields(contact: _NewContact, row: ParsedRow) -> None:
        if contact.fields is None or contact.attributes is None:
            contact.fields = dict(contact.row.fields)
            contact.attributes = dict(contact.row.attributes)
        contact.fields.update(row.fields)
        contact.attributes.update(row.attributes)

    def _consent_existing(self, ident: _Existing, row: ParsedRow) -> None:
        if row.consent is None:
            return
        when = row.consent_at or self.importer.now
        before, before_at = ident.state, ident.at
        if is_in_order(before_at, when):
            state, at = next_state(before, before_at, row.consent, True, when)
        else:
            # The file's consent date is older than the stored state: fold the
            # ledger again with this event in its place in time.
            pending = ConsentEvent(
                purpose=self.job.purpose,
                kind=row.consent,
                occurred_at=when,
                source=self.job.consent_source,
                import_job_id=self.job.pk or 0,
            )
            state, at = refold(ChannelIdentity(pk=ident.pk), self.job.purpose, pending)
        if (
            row.consent == ConsentEvent.Kind.OPT_IN
            and before == ConsentState.OPTED_OUT
            and state == ConsentState.OPTED_OUT
        ):
            self.counts["kept_opted_out"] += 1
            return
        self.events.append((ident.pk, ident.channel, row))
        self._count_event(row)
        if state != before:  # a segment fact may change; a time cannot
            self.facts_changed.append(ident.contact_id)
        if (state, at) != (before, before_at):
            ident.state, ident.at = state, at
            self.changed_identities.append(ident)

    def _count_event(self, row: ParsedRow) -> None:
        if row.consent == ConsentEvent.Kind.OPT_IN:
            self.counts["opt_ins"] += 1
        else:
            self.counts["opt_outs"] += 1

    # --- writing --------------------------------------------------------------
    # New rows go in as plain tuples (TableWriter); existing contacts and
    # identities change with one set-based UPDATE each (TableWriter.prepare_update).

    def apply(self, meanwhile: Callable[[], None] | None = None) -> None:
        """Write the chunk; with `meanwhile`, the writes run beside it
        (config.lib.shared_connection), in this transaction. On SQLite each
        table's rows go as soon as they are made, while the next are made:
        SQLite's own work on the chunk is the longer part."""
        if meanwhile is None:
            self.prepare()()
        elif connection.vendor == "sqlite":
            run_streamed_beside(filter(None, self._writes()), meanwhile)
        else:
            run_beside(self.prepare(), meanwhile)

    def prepare(self) -> Send:
        """The chunk's writes, made ready to send. The new rows' ids are
        taken first, and every row is made into what the database is sent:
        the writes then need no answer from the database and almost no
        Python work, so they can run beside other work (above, and
        contacts.importing.pipeline)."""
        writes = [send for send in self._writes() if send is not None]

        def write() -> None:
            for send in writes:
                send()

        return write

    def _writes(self) -> Iterator[Send | None]:
        """The chunk's writes in order, each made ready as it is asked for
        (None: nothing to write); the new rows' ids are taken before the
        first, and no other query is made."""
        now = timezone.now()
        contact_pks = _allocate(Contact, len(self.new_contacts), now)
        ids = dict(zip(self.new_contacts, contact_pks, strict=True))
        self.created = {
            c.row.external_id: ids[key]
            for key, c in self.new_contacts.items()
            if c.row.external_id
        }
        identity_pks = _allocate(ChannelIdentity, len(self.new_identities), now)
        for pk, ident in zip(identity_pks, self.new_identities, strict=True):
            ident.pk = pk
        yield self._insert_contacts(ids, now)
        yield prepare_merge(self.merged, self.importer.now)
        yield self._insert_identities(ids, now)
        yield self._update_consent(now)
        yield self._write_events(now)
        yield self._add_members(ids, now) if self.job.target_list_id else None
        yield self._refresh_facts

    def _refresh_facts(self) -> None:
        """Existing contacts whose identities changed: their facts from the
        database (new contacts got theirs in their INSERT)."""
        gained = [i.contact_ref for i in self.new_identities]
        segment_facts.refresh(
            [ref for ref in gained if isinstance(ref, int)] + self.facts_changed
        )

    def _update_consent(self, now: datetime) -> Send | None:
        """The new consent state of existing identities: one UPDATE."""
        if not self.changed_identities:
            return None
        field = self.field
        when: dict = {None: None}  # most share the import's time: adapt once
        for i in self.changed_identities:
            if i.at not in when:
                when[i.at] = db_time(i.at)
        table = TableWriter(ChannelIdentity, ["id", field, f"{field}_at"], now=now)
        return table.prepare_update(
            [(i.pk, str(i.state), when[i.at]) for i in self.changed_identities]
        )

    def _new_facts(self) -> dict[str, str]:
        """The segment facts of each contact created in this chunk, from the
        identities the chunk gives it (a new contact has no others)."""
        marketing = self.field == "marketing_consent"
        held: dict[str, list[tuple]] = {}
        for ident in self.new_identities:
            if isinstance(ident.contact_ref, str):
                state = str(ident.state)
                held.setdefault(ident.contact_ref, []).append(
                    (
                        ident.channel,
                        ident.identity,
                        state if marketing else "UNKNOWN",
                        "UNKNOWN" if marketing else state,
                    )
                )
        return {
            key: segment_facts.facts_of_one(*rows[0])
            if len(rows) == 1
            else segment_facts.facts_of(rows)
            for key, rows in held.items()
        }

    def _insert_contacts(self, ids: dict[str, int], now: datetime) -> Send | None:
        if not self.new_contacts:
            return None
        table = TableWriter(
            Contact,
            [
                "id",
                "external_id",
                "first_name",
                "last_name",
                "language",
                "time_zone",
                "attributes",
                "segment_facts",
            ],
            now=now,
        )
        facts = self._new_facts()

        def rows():
            for key, contact in self.new_contacts.items():
                row = contact.row
                fields = row.fields if contact.fields is None else contact.fields
                attributes = (
                    row.attributes if contact.attributes is None else contact.attributes
                )
                yield (
                    ids[key],
                    row.external_id,
                    fields.get("first_name", ""),
                    fields.get("last_name", ""),
                    fields.get("language", ""),
                    fields.get("time_zone", ""),
                    attributes_text(attributes),
                    facts.get(key, ""),
                )

        return table.prepare_insert(rows())

    def _insert_identities(self, ids: dict[str, int], now: datetime) -> Send | None:
        if not self.new_identities:
            return None
        columns = ["id", "contact_id", "channel", "identity", self.field]
        columns += [f"{self.field}_at", "origin_line"]
        origin = {"origin_import_id": self.job.pk}
        table = TableWriter(ChannelIdentity, columns, origin, now=now)
        when = table.prep_once(f"{self.field}_at")

        def rows():
            for ident in self.new_identities:
                ref = ident.contact_ref
                yield (
                    ident.pk,
                    ids.get(ref, ref),
                    ident.channel,
                    ident.identity,
                    str(ident.state),
                    when(ident.at),
                    ident.line,
                )

        return table.prepare_insert(rows())

    def _write_events(self, now: datetime) -> Send | None:
        if not self.events:
            return None
        job = self.job
        actor = self.importer.actor
        label = f"import #{job.pk}" + (f" by {actor.get_username()}" if actor else "")
        table = TableWriter(
            ConsentEvent,
            ["identity_id", "channel", "kind", "evidence_note", "occurred_at"],
            {
                "purpose": job.purpose,
                "source": job.consent_source,
                "evidence_wording": job.consent_evidence,
                "actor_id": actor.pk if actor else None,
                "actor_label": label,
                "import_job_id": job.pk,
            },
            now=now,
        )
        when = table.prep_once("occurred_at")
        default_when = self.importer.now
        note = f"{job.original_name}, line "
        return table.prepare_insert(
            (
                ref.pk if isinstance(ref, _NewIdentity) else ref,
                channel,
                str(row.consent),
                f"{note}{row.line}",
                when(row.consent_at or default_when),
            )
            for ref, channel, row in self.events
        )

    def _add_members(self, ids: dict[str, int], now: datetime) -> Send:
        table = TableWriter(
            ListMembership,
            ["contact_id"],
            {
                "contact_list_id": self.job.target_list_id,
                "source": ListMembership.Source.IMPORT,
                "source_import_id": self.job.pk,
            },
            now=now,
        )
        new = {(ids[ref],) for ref in self.members if isinstance(ref, str)}
        existing = {(ref,) for ref in self.members if not isinstance(ref, str)}
        # Contacts created in this chunk cannot be on the list yet.
        sends = [table.prepare_insert(new)]
        if existing - new:
            sends.append(table.prepare_insert(existing - new, ignore_conflicts=True))

        def send() -> None:
            for one in sends:
                one()

        return send


def _allocate(model, count: int, now: datetime) -> list[int]:
    return TableWriter(model, ["id"], now=now).allocate_ids(count)
