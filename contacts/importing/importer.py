"""Run an ImportJob: validate every row, write good rows chunk by chunk, report.

Each chunk is written in one transaction, so a row is either wholly imported
(contact, identity, list membership, consent) or not at all. A dry run goes
through the same checks without writing, which is the validation report the
admin shows before the user confirms.
"""

import csv
import logging
import os
from collections.abc import Callable

from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone

from contacts.audit import record_audit
from contacts.importing.rows import ParsedRow, RowError, RowParser
from contacts.importing.seen import SeenKeys
from contacts.importing.source import CsvFileError, CsvRows
from contacts.models import (
    AuditEvent,
    ChannelIdentity,
    ConsentEvent,
    ConsentState,
    Contact,
    ImportJob,
    ListMembership,
)
from contacts.services.consent import next_state
from contacts.services.erasure import erased_identity

log = logging.getLogger(__name__)

CHUNK_ROWS = 2000
SAMPLE_ERRORS = 100
COUNTERS = (
    "rows_total", "rows_ok", "rows_bad", "contacts_created", "contacts_merged",
    "opt_ins", "opt_outs", "kept_opted_out",
)


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
        self.seen = SeenKeys()
        self.new_external_ids = SeenKeys() if self.dry_run else None
        try:
            with open(path, "w", newline="", encoding="utf-8") as out:
                self.report = csv.writer(out)
                self.report.writerow(["line", "problem", *job.headers])
                self._process(CsvRows(job.file_path, job.delimiter))
        except CsvFileError as exc:
            job.error = str(exc)
        except Exception as exc:
            log.exception("import %s failed", job.pk)
            job.error = f"Unexpected error: {exc.__class__.__name__}: {exc}"
        finally:
            self.seen.close()
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
        return job

    def _process(self, source: CsvRows) -> None:
        chunk: list[ParsedRow] = []
        raw_by_line: dict[int, list[str]] = {}
        for line, values in source:
            self.counts["rows_total"] += 1
            try:
                chunk.append(self.parser.parse(line, values))
                raw_by_line[line] = values
            except RowError as exc:
                self._bad(line, str(exc), values)
            if len(chunk) >= CHUNK_ROWS:
                self._chunk(chunk, raw_by_line)
                chunk, raw_by_line = [], {}
                self.job.bytes_done = source.bytes_read
                self._save_progress()
        self._chunk(chunk, raw_by_line)
        self.job.bytes_done = source.bytes_read

    def _chunk(self, rows: list[ParsedRow], raw: dict[int, list[str]]) -> None:
        if not rows:
            return
        keys = [(f"{r.channel}:{r.identity}", r.line) for r in rows]
        unique = []
        for row, first in zip(rows, self.seen.check_and_add(keys), strict=True):
            if first is None:
                unique.append(row)
            else:
                self._bad(
                    row.line,
                    f"duplicate in file: {row.channel} {row.identity} is already "
                    f"on line {first}",
                    raw[row.line],
                )
        try:
            problems = self._write(unique)
        except IntegrityError:
            # Something changed under us (a concurrent edit): retry row by row
            # so one conflicting row cannot take the others down with it.
            problems = {}
            for row in unique:
                try:
                    problems.update(self._write([row]))
                except IntegrityError as exc:
                    problems[row.line] = f"could not be saved: {exc}"
        for row in unique:
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


class _ChunkPlan:
    """What one chunk changes, resolved against the database in bulk."""

    def __init__(self, importer: Importer, rows: list[ParsedRow]):
        self.importer = importer
        self.job = importer.job
        self.field = importer.field
        self.problems: dict[int, str] = {}
        self.counts = dict.fromkeys(
            ("contacts_created", "contacts_merged", "opt_ins", "opt_outs",
             "kept_opted_out"), 0
        )
        self.new_contacts: dict[str, Contact] = {}  # external id or "#line"
        self.new_identities: list[tuple[ChannelIdentity, str, ParsedRow]] = []
        self.merged: dict[int, list[ParsedRow]] = {}
        self.changed_identities: list[ChannelIdentity] = []
        self.events: list[tuple[object, ParsedRow]] = []
        self.members: list[object] = []
        self._resolve(rows)

    def _resolve(self, rows: list[ParsedRow]) -> None:
        erased = {erased_identity(r.channel, r.identity): r for r in rows}
        found = ChannelIdentity.objects.filter(
            identity__in=[r.identity for r in rows] + list(erased)
        )
        if not self.importer.dry_run:
            found = found.select_for_update()
        existing = {}
        for ident in found:
            if ident.identity in erased:
                row = erased[ident.identity]
                if row.channel == ident.channel:
                    self.problems[row.line] = (
                        "this identity belongs to an erased person and stays "
                        "suppressed; it is not imported"
                    )
            else:
                existing[(ident.channel, ident.identity)] = ident
        ext_ids = {r.external_id for r in rows if r.external_id}
        by_ext = dict(
            Contact.objects.filter(external_id__in=ext_ids).values_list(
                "external_id", "pk"
            )
        )
        for row in rows:
            if row.line not in self.problems:
                self._resolve_row(row, existing.get((row.channel, row.identity)), by_ext)

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
        ident = ChannelIdentity(
            channel=row.channel,
            identity=row.identity,
            origin_import=self.job if not self.importer.dry_run else None,
            origin_line=row.line,
        )
        if row.consent is not None:
            state, at = next_state(
                ConsentState.UNKNOWN, None, row.consent, self.job.consent_source,
                row.consent_at or self.importer.now,
            )
            setattr(ident, self.field, state)
            setattr(ident, f"{self.field}_at", at)
            self.events.append((ident, row))
            self._count_event(row)
        self.new_identities.append((ident, contact_ref, row))
        self.members.append(contact_ref)

    def _new_contact(self, row: ParsedRow):
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
        contact = Contact(external_id=row.external_id, **row.fields)
        contact.attributes = dict(row.attributes)
        self.new_contacts[key] = contact
        self.counts["contacts_created"] += 1
        return key

    def _merge(self, contact_id: int, row: ParsedRow) -> None:
        if contact_id not in self.merged:
            self.counts["contacts_merged"] += 1
        self.merged.setdefault(contact_id, []).append(row)

    @staticmethod
    def _merge_fields(contact: Contact, row: ParsedRow) -> None:
        for name, value in row.fields.items():
            setattr(contact, name, value)
        contact.attributes.update(row.attributes)

    def _consent_existing(self, ident: ChannelIdentity, row: ParsedRow) -> None:
        if row.consent is None:
            return
        when = row.consent_at or self.importer.now
        before = getattr(ident, self.field)
        state, at = next_state(
            before, getattr(ident, f"{self.field}_at"), row.consent,
            self.job.consent_source, when,
        )
        if (
            row.consent == ConsentEvent.Kind.OPT_IN
            and before == ConsentState.OPTED_OUT
            and state == ConsentState.OPTED_OUT
        ):
            self.counts["kept_opted_out"] += 1
            return
        self.events.append((ident, row))
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

    def apply(self) -> None:
        contacts = list(self.new_contacts.values())
        Contact.objects.bulk_create(contacts)
        ids = {key: c.pk for key, c in self.new_contacts.items()}
        self._update_merged()
        identities = []
        for ident, ref, _row in self.new_identities:
            ident.contact_id = ids.get(ref, ref)
            identities.append(ident)
        ChannelIdentity.objects.bulk_create(identities)
        if self.changed_identities:
            ChannelIdentity.objects.bulk_update(
                self.changed_identities, [self.field, f"{self.field}_at"]
            )
        self._write_events()
        if self.job.target_list_id:
            members = {ids.get(ref, ref) for ref in self.members}
            ListMembership.objects.bulk_create(
                [
                    ListMembership(
                        contact_list_id=self.job.target_list_id,
                        contact_id=pk,
                        source=ListMembership.Source.IMPORT,
                        source_import=self.job,
                    )
                    for pk in members
                ],
                ignore_conflicts=True,
            )

    def _update_merged(self) -> None:
        if not self.merged:
            return
        contacts = list(
            Contact.objects.filter(pk__in=self.merged, erased_at__isnull=True)
        )
        for contact in contacts:
            for row in self.merged[contact.pk]:
                self._merge_fields(contact, row)
            contact.updated_at = self.importer.now
        Contact.objects.bulk_update(
            contacts,
            ["first_name", "last_name", "language", "time_zone", "attributes",
             "updated_at"],
        )

    def _write_events(self) -> None:
        job = self.job
        actor = self.importer.actor
        label = f"import #{job.pk}" + (f" by {actor.get_username()}" if actor else "")
        ConsentEvent.objects.bulk_create(
            [
                ConsentEvent(
                    identity_id=ident.pk,
                    channel=ident.channel,
                    purpose=job.purpose,
                    kind=row.consent,
                    source=job.consent_source,
                    evidence_wording=job.consent_evidence,
                    evidence_note=f"{job.original_name}, line {row.line}",
                    actor=actor,
                    actor_label=label,
                    occurred_at=row.consent_at or self.importer.now,
                    import_job=job,
                )
                for ident, row in self.events
            ]
        )


def run_import(job: ImportJob, *, dry_run: bool, actor=None, on_progress=None):
    """Validate (dry_run) or import `job`'s file; see Importer."""
    return Importer(job, dry_run=dry_run, actor=actor, on_progress=on_progress).run()

