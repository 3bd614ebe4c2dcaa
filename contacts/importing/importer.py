"""Run an ImportJob: validate every row, write good rows chunk by chunk, report.

Each chunk is written in one transaction, so a row is either wholly imported
(contact, identity, list membership, consent) or not at all. A dry run goes
through the same checks without writing, which is the validation report the
admin shows before the user confirms.
"""

import contextlib
import csv
import json
import logging
import os
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from django.conf import settings
from django.db import IntegrityError, reset_queries, transaction
from django.utils import timezone

from contacts.audit import record_audit
from contacts.importing.reader import validated_batches
from contacts.importing.rows import ParsedRow, RowParser
from contacts.importing.seen import SeenKeys
from contacts.importing.source import CsvFileError
from contacts.importing.tables import TableWriter, matching, tune_connection
from contacts.models import (
    AuditEvent,
    ChannelIdentity,
    ConsentEvent,
    ConsentState,
    Contact,
    ImportJob,
    ListMembership,
)
from contacts.services.consent import is_in_order, next_state, refold
from contacts.services.erasure import erased_identity

log = logging.getLogger(__name__)

# Rows per transaction: big enough that per-chunk queries and commits are
# cheap per row, small enough to keep memory flat.
CHUNK_ROWS = 10_000
SAMPLE_ERRORS = 100
COUNTERS = (
    "rows_total",
    "rows_ok",
    "rows_bad",
    "contacts_created",
    "contacts_merged",
    "opt_ins",
    "opt_outs",
    "kept_opted_out",
)


def discard_upload(job: ImportJob) -> None:
    """Delete an uploaded file once imported: its personal data now lives in
    the database, where erasure can reach it. Files given to the command line
    belong to their owner and are left alone."""
    uploads = os.path.join(os.path.realpath(settings.MEDIA_ROOT), "imports") + os.sep
    if os.path.realpath(job.file_path).startswith(uploads):
        with contextlib.suppress(FileNotFoundError):
            os.remove(job.file_path)


def report_path(job: ImportJob, dry_run: bool) -> str:
    folder = os.path.join(settings.MEDIA_ROOT, "import-reports")
    os.makedirs(folder, exist_ok=True)
    kind = "validation" if dry_run else "result"
    return os.path.join(folder, f"import-{job.pk}-{kind}.csv")


class Importer:
    def __init__(
        self,
        job: ImportJob,
        *,
        dry_run: bool,
        actor=None,
        on_progress: Callable[[ImportJob], None] | None = None,
    ):
        self.job = job
        self.dry_run = dry_run
        self.actor = actor
        self.on_progress = on_progress
        self.now = timezone.now()
        self.counts = dict.fromkeys(COUNTERS, 0)
        self.samples: list[dict] = []
        self.parser = RowParser(
            job.headers,
            job.mapping,
            default_channel=job.default_channel,
            consent_from_column=job.consent_mode == ImportJob.ConsentMode.COLUMN,
            declared_opt_in=job.consent_mode == ImportJob.ConsentMode.DECLARED_OPT_IN,
            default_region=settings.PHONE_DEFAULT_REGION,
        )
        self.field = f"{job.purpose.lower()}_consent"

    # --- driver -------------------------------------------------------------

    def run(self) -> ImportJob:
        """Process the whole file; the job row carries progress and the outcome."""
        job = self.job
        job.started_at = timezone.now()
        job.status = (
            ImportJob.Status.VALIDATING if self.dry_run else ImportJob.Status.RUNNING
        )
        job.save(update_fields=["started_at", "status"])
        path = report_path(job, self.dry_run)
        tune_connection()
        self.new_external_ids = SeenKeys() if self.dry_run else None
        try:
            with open(path, "w", newline="", encoding="utf-8") as out:
                self.report = csv.writer(out)
                self.report.writerow(["line", "problem", *job.headers])
                self._process()
        except CsvFileError as exc:
            job.error = str(exc)
        except Exception as exc:
            log.exception("import %s failed", job.pk)
            job.error = f"Unexpected error: {exc.__class__.__name__}: {exc}"
        finally:
            if self.new_external_ids:
                self.new_external_ids.close()
        job.report_file = path
        job.finished_at = timezone.now()
        if job.error:
            job.status = ImportJob.Status.FAILED
        elif self.dry_run:
            job.status = ImportJob.Status.VALIDATED
        else:
            job.status = ImportJob.Status.DONE
        self._save_progress(final=True)
        if not self.dry_run:
            self._audit()
            if job.status == ImportJob.Status.DONE:
                discard_upload(job)
        return job

    def _process(self) -> None:
        """Validate and write the file batch by batch (see reader.py)."""
        batches = validated_batches(
            self.job.file_path, self.job.delimiter, self.parser, CHUNK_ROWS
        )
        for batch in batches:
            self.counts["rows_total"] = batch.rows_total
            for line, problem, values in batch.bad:
                self._bad(line, problem, values)
            self._chunk(batch.rows, batch.raw)
            self.job.bytes_done = batch.bytes_read
            if settings.DEBUG:
                reset_queries()  # DEBUG keeps every query: memory would grow
            self._save_progress()

    def _chunk(self, rows: list[ParsedRow], raw: dict[int, list[str]]) -> None:
        if not rows:
            return
        try:
            problems = self._write(rows)
        except IntegrityError:
            # Something changed under us (a concurrent edit): retry row by row
            # so one conflicting row cannot take the others down with it.
            problems = {}
            for row in rows:
                try:
                    problems.update(self._write([row]))
                except IntegrityError as exc:
                    problems[row.line] = f"could not be saved: {exc}"
        for row in rows:
            if row.line in problems:
                self._bad(row.line, problems[row.line], raw[row.line])
            else:
                self.counts["rows_ok"] += 1

    def _bad(self, line: int, problem: str, values: list[str]) -> None:
        self.counts["rows_bad"] += 1
        self.report.writerow([line, problem, *values])
        if len(self.samples) < SAMPLE_ERRORS:
            self.samples.append({"line": line, "problem": problem})

    def _save_progress(self, final: bool = False) -> None:
        job = self.job
        for name, value in self.counts.items():
            setattr(job, name, value)
        job.sample_errors = self.samples
        fields = [*COUNTERS, "bytes_done", "sample_errors"]
        if final:
            fields += ["status", "error", "report_file", "finished_at"]
        job.save(update_fields=fields)
        if self.on_progress:
            self.on_progress(job)

    def _audit(self) -> None:
        c = self.counts
        record_audit(
            actor=self.actor,
            action=AuditEvent.Action.IMPORT,
            target_type="import",
            target_id=self.job.pk,
            summary=(
                f"Imported {self.job.original_name}: {c['rows_ok']} rows imported, "
                f"{c['rows_bad']} rejected, {c['contacts_created']} contacts "
                f"created, {c['contacts_merged']} merged, {c['opt_ins']} opt-ins, "
                f"{c['opt_outs']} opt-outs"
            ),
            details={
                **c,
                "list": self.job.target_list_id,
                "consent_mode": self.job.consent_mode,
                "consent_source": self.job.consent_source,
                "evidence": self.job.consent_evidence,
                "error": self.job.error,
            },
        )

    # --- one chunk ------------------------------------------------------------

    def _write(self, rows: list[ParsedRow]) -> dict[int, str]:
        """Import `rows` in one transaction; returns {line: problem} for rejects."""
        if not rows:
            return {}
        with transaction.atomic():
            plan = _ChunkPlan(self, rows)
            if not self.dry_run:
                plan.apply()
        for name, value in plan.counts.items():
            self.counts[name] += value
        return plan.problems


@dataclass(slots=True)
class _NewContact:
    row: ParsedRow  # the first row with this contact's key
    # Copies of the row's values, made when a later row merges into them.
    fields: dict[str, str] | None = None
    attributes: dict[str, str] | None = None


@dataclass(slots=True)
class _NewIdentity:
    channel: str
    identity: str
    contact_ref: int | str  # an existing contact's pk, or a key of new_contacts
    line: int
    state: str = ConsentState.UNKNOWN
    at: datetime | None = None
    pk: int | None = None


class _ChunkPlan:
    """What one chunk changes, resolved against the database in bulk."""

    def __init__(self, importer: Importer, rows: list[ParsedRow]):
        self.importer = importer
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
        self.changed_identities: list[ChannelIdentity] = []
        # (existing identity pk or the new identity, channel, row)
        self.events: list[tuple[int | _NewIdentity, str, ParsedRow]] = []
        self.members: list[int | str] = []
        self._resolve(rows)

    def _resolve(self, rows: list[ParsedRow]) -> None:
        erased: dict[str, list[ParsedRow]] = {}
        for r in rows:
            erased.setdefault(erased_identity(r.channel, r.identity), []).append(r)
        # Most rows are new: find the few existing ones cheaply, then load and
        # lock only those.
        pks = [
            pk
            for _, pk in matching(
                ChannelIdentity, "identity", [r.identity for r in rows] + list(erased)
            )
        ]
        found = ChannelIdentity.objects.filter(pk__in=pks) if pks else []
        if pks and not self.importer.dry_run:
            found = found.select_for_update()
        existing = {}
        for ident in found:
            if ident.identity in erased:
                for row in erased[ident.identity]:
                    self.problems[row.line] = (
                        "this identity belongs to an erased person and stays "
                        "suppressed; it is not imported"
                    )
            else:
                existing[(ident.channel, ident.identity)] = ident
        ext_ids = {r.external_id for r in rows if r.external_id}
        by_ext = dict(matching(Contact, "external_id", list(ext_ids), non_blank=True))
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
    def _merge_fields(contact: Contact | _NewContact, row: ParsedRow) -> None:
        if isinstance(contact, _NewContact):
            if contact.fields is None or contact.attributes is None:
                contact.fields = dict(contact.row.fields)
                contact.attributes = dict(contact.row.attributes)
            contact.fields.update(row.fields)
        else:
            for name, value in row.fields.items():
                setattr(contact, name, value)
        contact.attributes.update(row.attributes)

    def _consent_existing(self, ident: ChannelIdentity, row: ParsedRow) -> None:
        if row.consent is None:
            return
        when = row.consent_at or self.importer.now
        before, before_at = (
            getattr(ident, self.field),
            getattr(ident, f"{self.field}_at"),
        )
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
            state, at = refold(ident, self.job.purpose, pending)
        if (
            row.consent == ConsentEvent.Kind.OPT_IN
            and before == ConsentState.OPTED_OUT
            and state == ConsentState.OPTED_OUT
        ):
            self.counts["kept_opted_out"] += 1
            return
        self.events.append((ident.pk, ident.channel, row))
        self._count_event(row)
        if (state, at) != (before, getattr(ident, f"{self.field}_at")):
            setattr(ident, self.field, state)
            setattr(ident, f"{self.field}_at", at)
            self.changed_identities.append(ident)

    def _count_event(self, row: ParsedRow) -> None:
        if row.consent == ConsentEvent.Kind.OPT_IN:
            self.counts["opt_ins"] += 1
        else:
            self.counts["opt_outs"] += 1

    # --- writing --------------------------------------------------------------
    # New rows go in as plain tuples (see tables.py); the rare updates of
    # existing contacts and identities go through the ORM.

    def apply(self) -> None:
        now = timezone.now()
        ids = self._insert_contacts(now)
        self._update_merged()
        self._insert_identities(ids, now)
        if self.changed_identities:
            ChannelIdentity.objects.bulk_update(
                self.changed_identities, [self.field, f"{self.field}_at"]
            )
        self._write_events(now)
        if self.job.target_list_id:
            self._add_members(ids, now)

    def _insert_contacts(self, now: datetime) -> dict[str, int]:
        if not self.new_contacts:
            return {}
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
            ],
            now=now,
        )
        pks = table.allocate_ids(len(self.new_contacts))
        ids = dict(zip(self.new_contacts, pks, strict=True))
        # What the JSONField would store, without its per-value machinery.
        encoder = Contact._meta.get_field("attributes").encoder
        rows = []
        for pk, contact in zip(pks, self.new_contacts.values(), strict=True):
            row = contact.row
            fields = row.fields if contact.fields is None else contact.fields
            attributes = (
                row.attributes if contact.attributes is None else contact.attributes
            )
            rows.append(
                (
                    pk,
                    row.external_id,
                    fields.get("first_name", ""),
                    fields.get("last_name", ""),
                    fields.get("language", ""),
                    fields.get("time_zone", ""),
                    json.dumps(attributes, cls=encoder),
                )
            )
        table.insert(rows)
        return ids

    def _insert_identities(self, ids: dict[str, int], now: datetime) -> None:
        if not self.new_identities:
            return
        job = self.job
        table = TableWriter(
            ChannelIdentity,
            [
                "id",
                "contact_id",
                "channel",
                "identity",
                self.field,
                f"{self.field}_at",
                "origin_line",
            ],
            {"origin_import_id": job.pk},
            now=now,
        )
        pks = table.allocate_ids(len(self.new_identities))
        when = _Prepared(table, f"{self.field}_at")
        rows = []
        for pk, ident in zip(pks, self.new_identities, strict=True):
            ident.pk = pk
            ref = ident.contact_ref
            rows.append(
                (
                    pk,
                    ids.get(ref, ref),
                    ident.channel,
                    ident.identity,
                    str(ident.state),
                    when(ident.at),
                    ident.line,
                )
            )
        table.insert(rows)

    def _update_merged(self) -> None:
        if not self.merged:
            return
        contacts = list(
            Contact.objects.filter(pk__in=self.merged, erased_at__isnull=True)
        )
        for contact in contacts:
            for row in self.merged[contact.pk]:
                self._merge_fields(contact, row)
                # A merge found by the identity gives a contact without an
                # external id the file's one (the lookup found nobody else with it).
                if row.external_id and not contact.external_id:
                    contact.external_id = row.external_id
            contact.updated_at = self.importer.now
        Contact.objects.bulk_update(
            contacts,
            [
                "first_name",
                "last_name",
                "language",
                "time_zone",
                "attributes",
                "external_id",
                "updated_at",
            ],
        )

    def _write_events(self, now: datetime) -> None:
        if not self.events:
            return
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
        when = _Prepared(table, "occurred_at")
        default_when = self.importer.now
        note = f"{job.original_name}, line "
        table.insert(
            (
                ref.pk if isinstance(ref, _NewIdentity) else ref,
                channel,
                str(row.consent),
                f"{note}{row.line}",
                when(row.consent_at or default_when),
            )
            for ref, channel, row in self.events
        )

    def _add_members(self, ids: dict[str, int], now: datetime) -> None:
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
        table.insert(new)
        if existing - new:
            table.insert(existing - new, ignore_conflicts=True)


class _Prepared:
    """A datetime field's database value, computed once per distinct value:
    most rows of a file share their consent time."""

    def __init__(self, table: TableWriter, name: str):
        self.table = table
        self.name = name
        self.cache: dict[datetime | None, object] = {}

    def __call__(self, value: datetime | None) -> object:
        try:
            return self.cache[value]
        except KeyError:
            prepared = self.cache[value] = self.table.prep(self.name, value)
            return prepared


def run_import(job: ImportJob, *, dry_run: bool, actor=None, on_progress=None):
    """Validate (dry_run) or import `job`'s file; see Importer."""
    return Importer(job, dry_run=dry_run, actor=actor, on_progress=on_progress).run()
