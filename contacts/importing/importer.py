"""Run an ImportJob: validate every row, write good rows chunk by chunk, report.

Each chunk is written in one transaction, so a row is either wholly imported
(contact, identity, list membership, consent) or not at all. The same
transaction renews the run's lease and commits the job's checkpoint: the last
line of the chunk, the counters and the size of the report so far (on
PostgreSQL two chunks are under way at once, each in its own transaction:
pipeline.py). A run that
finds a checkpoint (its worker was killed, or it failed) reads the file again
from the top, for the duplicate check, but writes only the lines after it:
nothing is written twice. A dry run goes through the same checks without
writing, which is the validation report the admin shows before the user
confirms; it always starts again from the top.
"""

import contextlib
import csv
import logging
import os
from collections.abc import Callable

from django.conf import settings
from django.db import IntegrityError, reset_queries, transaction
from django.utils import timezone

from config.lib.bulk import tune_connection, untune_connection
from config.lib.collector import frozen_heap
from config.lib.csv_cells import SafeCsvWriter
from config.lib.redaction import ERASED
from config.lib.sqlite_checkpoints import checkpoints_alongside
from contacts.importing import leases, pipeline
from contacts.importing.layout import records
from contacts.importing.plan import ERASED_PROBLEM, ChunkPlan
from contacts.importing.reader import ReadAhead, validated_batches
from contacts.importing.rows import ParsedRow, RowParser
from contacts.importing.seen import SeenKeys
from contacts.importing.source import CsvFileError
from contacts.models import (
    AuditEvent,
    ImportJob,
)
from contacts.services.audit import record_audit
from contacts.services.suppression import ErasedNumbers

log = logging.getLogger(__name__)

# Rows per transaction: big enough that per-chunk queries and commits are
# cheap per row, small enough to keep memory flat.
CHUNK_ROWS = 10_000
# On SQLite a chunk holds the one write lock of the whole database: every
# other writer (the admin, webhooks, the next import's claim) waits for it, at
# most 20 s (config/settings.py). Merging 10,000 known contacts can take
# longer than that; 2,000 rows keep the wait to a few seconds.
SQLITE_CHUNK_ROWS = 2_000
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


def after_chunk(job: ImportJob) -> None:
    """Called after each committed chunk (a seam for the fault tests)."""


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
            date_order=job.date_order,
        )
        self.field = f"{job.purpose.lower()}_consent"

    # --- driver -------------------------------------------------------------

    def run(self) -> ImportJob:
        """Process the whole file; the job row carries progress and the outcome."""
        job = self.job
        claim = leases.claim(job, dry_run=self.dry_run)
        if not claim.token:
            log.info("import %s not run: %s", job.pk, claim.reason)
            job.refresh_from_db()
            return job
        self.token = claim.token
        job.refresh_from_db()  # what the claim set, and the last checkpoint
        resume_line = 0 if self.dry_run else job.checkpoint.get("line", 0)
        job.started_at = timezone.now()
        job.bytes_done = job.checkpoint.get("bytes", 0) if resume_line else 0
        job.error = ""  # a run again after a failure: this run's outcome only
        job.save(update_fields=["started_at", "bytes_done", "error"])
        path = report_path(job, self.dry_run)
        self.new_external_ids = SeenKeys() if self.dry_run else None
        # Contacts created by a chunk still being written (pipeline.py).
        self.created_in_flight: dict[str, int] = {}
        self.erased = ErasedNumbers()  # topped up before each chunk
        self.committed = dict(self.counts)
        lost = False
        tuned = tune_connection()
        try:
            if resume_line:
                self._resume(path, resume_line)
            else:
                with open(path, "w", newline="", encoding="utf-8") as out:
                    SafeCsvWriter(out).writerow(["line", "problem", *job.headers])
            # The heap alive before the run is left out of the collector's
            # full passes (config.lib.collector): about 10 % of an import's time.
            with (
                open(path, "a", newline="", encoding="utf-8") as out,
                frozen_heap(),
                checkpoints_alongside(),  # SQLite's log copied back on another core
            ):
                self.out = out
                self.report = SafeCsvWriter(out)
                self._process(resume_line)
        except CsvFileError as exc:
            job.error = str(exc)
        except leases.LeaseLost as exc:
            log.warning("import %s stopped: %s", job.pk, exc)
            lost = True
        except Exception as exc:
            log.exception("import %s failed", job.pk)
            job.error = f"Unexpected error: {exc.__class__.__name__}: {exc}"
        finally:
            if self.new_external_ids:
                self.new_external_ids.close()
            untune_connection(tuned)
        if lost:
            job.refresh_from_db()
            return job
        if self.dry_run and _discarded(job):
            # Discarded while it was being checked: leave nothing behind.
            with contextlib.suppress(FileNotFoundError):
                os.remove(path)
            job.status = ImportJob.Status.DISCARDED
            return job
        if not self.dry_run:
            # What the database holds: a chunk that failed was rolled back.
            self.counts = dict(self.committed)
        job.report_file = path
        job.finished_at = timezone.now()
        if job.error:
            job.status = ImportJob.Status.FAILED
        elif self.dry_run:
            job.status = ImportJob.Status.VALIDATED
        else:
            job.status = ImportJob.Status.DONE
        try:
            with transaction.atomic():
                leases.renew(job, self.token)
                self._save_progress(final=True)
        except leases.LeaseLost as exc:
            log.warning("import %s not finished here: %s", job.pk, exc)
            job.refresh_from_db()
            return job
        if not self.dry_run:
            self._audit()
            if job.status == ImportJob.Status.DONE:
                discard_upload(job)
            if leases.one_at_a_time():
                leases.start_waiting_imports()
        return job

    def _resume(self, path: str, line: int) -> None:
        """Carry on from the checkpoint: its counters, and the report as it
        was at that commit (rows a rolled-back chunk reported are cut off)."""
        job, point = self.job, self.job.checkpoint
        self.counts.update(point.get("counts", {}))
        self.committed = dict(self.counts)
        if _file_bytes(job) != point.get("file_bytes", _file_bytes(job)):
            # Erasure rewrote the file without a person's rows: lines moved.
            raise CsvFileError(
                f"The file changed after the import stopped at line {line} (a "
                "person in it was erased since), so its lines no longer match "
                f"what was imported and it was not resumed. The "
                f"{self.counts['rows_ok']} rows imported stay; import the rows "
                f"after line {line} as a new file."
            )
        try:
            with open(path, "r+b") as report:
                size = os.fstat(report.fileno()).st_size
                report.truncate(min(size, point.get("report_bytes", 0)))
            with open(path, newline="", encoding="utf-8") as report:
                rows = csv.reader(report)
                next(rows, None)
                for row in rows:
                    if len(self.samples) >= SAMPLE_ERRORS:
                        break
                    self.samples.append({"line": int(row[0]), "problem": row[1]})
        except FileNotFoundError:
            with open(path, "w", newline="", encoding="utf-8") as out:
                SafeCsvWriter(out).writerow(["line", "problem", *job.headers])
        note = {
            "at": timezone.now().isoformat(),
            "line": line,
            "kind": "resumed",
            "rows_ok": self.counts["rows_ok"],
        }
        job.resumes = [*job.resumes, note]
        job.save(update_fields=["resumes"])
        record_audit(
            actor=self.actor,
            action=AuditEvent.Action.IMPORT,
            target_type="import",
            target_id=job.pk,
            summary=f"Resumed the import of {job.original_name} after line "
            f"{line}, where the last run stopped ({self.counts['rows_ok']} rows "
            "were already imported and are not written again)",
            details=note,
        )

    def _process(self, resume_line: int = 0) -> None:
        """Validate and write the file batch by batch (see reader.py); a
        resumed run writes only the lines after `resume_line`."""
        size = CHUNK_ROWS
        if leases.one_at_a_time():
            size = min(size, SQLITE_CHUNK_ROWS)
        batches = ReadAhead(validated_batches(records(self.job), self.parser, size))
        # The next batch is read while the database writes this one (_write).
        self.read_ahead = batches.fetch
        unwritten = _after(batches, resume_line)
        if not self.dry_run and pipeline.usable():
            pipeline.write_chunks(self, unwritten, batches.fetch)
            return
        for batch, last in unwritten:
            if self.dry_run:
                leases.renew(self.job, self.token)
                self._report(batch, self._chunk(batch.rows))
                self._save_progress()
            else:
                with transaction.atomic():
                    leases.renew(self.job, self.token)
                    problems = self._chunk(batch.rows)
                    self.close_chunk(batch, last, problems, renew=False)
            self.chunk_done()

    def close_chunk(
        self, batch, last: int, problems: dict[int, str], *, renew: bool = True
    ) -> None:
        """The end of a chunk's transaction: the lease renewed, the batch's
        bad rows (its own and those the database refused, `problems` by line)
        reported, the checkpoint and the counters saved."""
        if renew:
            leases.renew(self.job, self.token)
        self._report(batch, problems)
        self._checkpoint(last, batch.bytes_read)
        self._save_progress()

    def chunk_done(self) -> None:
        """After a chunk's commit (or a dry run's check)."""
        self.committed = dict(self.counts)
        if settings.DEBUG:
            reset_queries()  # DEBUG keeps every query: memory would grow
        after_chunk(self.job)

    def _report(self, batch, problems: dict[int, str]) -> None:
        """Report the batch's bad rows on disk: its own, and its written rows
        with a problem (`problems` by line); count the others."""
        self.counts["rows_total"] = batch.rows_total
        bad = batch.bad + self._refused(batch.rows, batch.raw, problems)
        # A batch is a run of lines: sorted, the report is in line order.
        bad.sort(key=_line)
        for line, problem, values in bad:
            self._bad(line, problem, values)
        self.job.bytes_done = batch.bytes_read
        self.out.flush()

    def _checkpoint(self, line: int, bytes_read: int) -> None:
        """Where a later run resumes; saved in the chunk's transaction."""
        os.fsync(self.out.fileno())
        self.job.checkpoint = {
            "line": line,
            "bytes": bytes_read,
            "report_bytes": os.fstat(self.out.fileno()).st_size,
            "file_bytes": _file_bytes(self.job),
            "counts": dict(self.counts),
        }

    def _chunk(self, rows: list[ParsedRow]) -> dict[int, str]:
        """Write `rows`; returns the problems of those refused, by line."""
        if not rows:
            return {}
        self.erased.refresh()  # owners erased since the last chunk, once
        try:
            return self._write(rows, meanwhile=self.read_ahead)
        except IntegrityError:
            return self.row_by_row(rows)

    def row_by_row(self, rows: list[ParsedRow]) -> dict[int, str]:
        """Something changed under us (a concurrent edit): the rows written
        one by one, so one conflicting row cannot take the others down."""
        problems: dict[int, str] = {}
        for row in rows:
            try:
                problems.update(self._write([row]))
            except IntegrityError as exc:
                problems[row.line] = f"could not be saved: {exc}"
        return problems

    def _refused(
        self, rows: list[ParsedRow], raw: dict[int, list[str]], problems: dict
    ) -> list[tuple[int, str, list[str]]]:
        """The written `rows` with a problem, as bad rows; the others count."""
        bad = []
        for row in rows:
            if problems.get(row.line) == ERASED_PROBLEM:
                # The report must not bring an erased person's data back.
                values = [ERASED] * len(raw[row.line])
                bad.append((row.line, ERASED_PROBLEM, values))
            elif row.line in problems:
                bad.append((row.line, problems[row.line], raw[row.line]))
            else:
                self.counts["rows_ok"] += 1
        return bad

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
        if not self.dry_run:
            fields.append("checkpoint")
        if final:
            job.claim_token = ""
            fields += ["status", "error", "report_file", "finished_at", "claim_token"]
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

    def _write(self, rows: list[ParsedRow], meanwhile=None) -> dict[int, str]:
        """Import `rows` in one transaction; returns {line: problem} for rejects.
        `meanwhile` runs while the database writes them (ChunkPlan.apply)."""
        if not rows:
            return {}
        with transaction.atomic():
            plan = ChunkPlan(self, rows)
            if not self.dry_run:
                plan.apply(meanwhile)
        self.count(plan)
        return plan.problems

    def count(self, plan: ChunkPlan) -> None:
        for name, value in plan.counts.items():
            self.counts[name] += value


def _after(batches, resume_line: int):
    """(batch, its last line) for the batches with lines after
    `resume_line` (the lines before were committed by an earlier run)."""
    for batch in batches:
        last = max(
            [r.line for r in batch.rows] + [b[0] for b in batch.bad],
            default=resume_line,
        )
        if last > resume_line:
            batch.rows = [r for r in batch.rows if r.line > resume_line]
            batch.bad = [b for b in batch.bad if b[0] > resume_line]
            yield batch, last


def _file_bytes(job: ImportJob) -> int:
    try:
        return os.path.getsize(job.file_path)
    except OSError:
        return -1


def _line(bad: tuple[int, str, list[str]]) -> int:
    return bad[0]


def _discarded(job: ImportJob) -> bool:
    return ImportJob.objects.filter(
        pk=job.pk, status=ImportJob.Status.DISCARDED
    ).exists()


def run_import(job: ImportJob, *, dry_run: bool, actor=None, on_progress=None):
    """Validate (dry_run) or import `job`'s file; see Importer."""
    return Importer(job, dry_run=dry_run, actor=actor, on_progress=on_progress).run()
