"""Creating, validating and running import jobs (the admin, the command and
the tasks all come through here)."""

import contextlib
import os
import uuid
from datetime import datetime

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from contacts.importing import leases
from contacts.importing.encodings import ENCODINGS
from contacts.importing.importer import discard_upload, report_path, run_import
from contacts.importing.layout import inspect_file
from contacts.importing.mapping import auto_map, mapping_problems
from contacts.models import AuditEvent, ContactList, ImportJob
from contacts.services.audit import record_audit

S = ImportJob.Status
# Uploaded, not imported: what can be re-checked, re-read or discarded.
PENDING = (S.UPLOADED, S.VALIDATING, S.VALIDATED, S.FAILED)


class ImportSetupError(ValueError):
    """The import cannot start as asked; the message says what to change."""


def store_upload(upload) -> str:
    """Save an uploaded file under MEDIA_ROOT/imports and return its path."""
    folder = os.path.join(settings.MEDIA_ROOT, "imports")
    os.makedirs(folder, exist_ok=True)
    path = os.path.join(folder, f"{uuid.uuid4().hex}.csv")
    with open(path, "wb") as out:
        for piece in upload.chunks():
            out.write(piece)
    return path


def create_import_job(
    *,
    path: str,
    original_name: str,
    actor,
    target_list: ContactList | None,
    default_channel: str,
    purpose: str,
    consent_mode: str,
    consent_source: str,
    consent_evidence: str,
    mapping: dict[str, str] | None = None,
    encoding: str = "",
    date_order: str = "",
) -> ImportJob:
    """Read the file's header, check the options and record a new job.

    `encoding` is the user's choice for a CSV file ("" detects it);
    `date_order` reads ambiguous dates (ImportJob.DateOrder).
    Raises ImportSetupError (nothing recorded) when the file or the options
    cannot work: not a table, empty, no rows, a missing declaration, a bad
    mapping.
    """
    layout = _inspect(path, encoding)
    headers = layout.headers
    if consent_mode != ImportJob.ConsentMode.NONE and not consent_evidence.strip():
        raise ImportSetupError(
            "Say where the consent in this file comes from: the evidence "
            "(e.g. the sign-up form wording and date) is required."
        )
    full_mapping = auto_map(headers)
    if mapping:
        unknown = set(mapping) - set(headers)
        if unknown:
            raise ImportSetupError(
                f"Mapped column(s) not in the file: {', '.join(sorted(unknown))}. "
                f"The file has: {', '.join(headers)}."
            )
        full_mapping.update(mapping)
    job = ImportJob(
        file_path=path,
        original_name=original_name[:255],
        size_bytes=os.path.getsize(path),
        file_format=layout.file_format,
        encoding=layout.encoding,
        encoding_chosen=bool(encoding and layout.encoding),
        date_order=_checked_order(date_order),
        delimiter=layout.delimiter,
        headers=headers,
        mapping=full_mapping,
        target_list=target_list,
        default_channel=default_channel,
        purpose=purpose,
        consent_mode=consent_mode,
        consent_source=consent_source,
        consent_evidence=consent_evidence,
        created_by=actor,
    )
    check_mapping(job)
    job.file_path = _named_for_format(path, layout.file_format)
    job.save()
    return job


def _named_for_format(path: str, file_format: str) -> str:
    """An uploaded workbook is stored as .xlsx: erasure's file scrubber reads
    .csv files as text (pending_uploads.py deals with workbooks)."""
    uploads = os.path.realpath(os.path.join(settings.MEDIA_ROOT, "imports"))
    stem, suffix = os.path.splitext(path)
    if (
        file_format == ImportJob.FileFormat.XLSX
        and suffix == ".csv"
        and os.path.realpath(path).startswith(uploads + os.sep)
    ):
        os.replace(path, stem + ".xlsx")
        return stem + ".xlsx"
    return path


def _inspect(path: str, encoding: str):
    if encoding and encoding not in ENCODINGS:
        raise ImportSetupError(f"Unknown encoding {encoding!r}.")
    try:
        return inspect_file(path, encoding)
    except (OSError, ValueError) as exc:
        raise ImportSetupError(str(exc)) from None


def _checked_order(order: str) -> str:
    if order not in ImportJob.DateOrder.values:
        raise ImportSetupError(f"Unknown date order {order!r}.")
    return order


def change_reading(job: ImportJob, *, encoding: str, date_order: str) -> list[str]:
    """Read a pending job's file with another encoding or date order.

    A new encoding can change the header's names: columns keep the field they
    were mapped to, by position. Returns what changed, for the admin's log.
    Raises ImportSetupError (the job unchanged) when the file cannot be read so.
    """
    order = _checked_order(date_order)
    changes = []
    if order != job.date_order:
        changes.append(
            f"date order: {job.date_order or 'not set'} -> {order or 'not set'}"
        )
        job.date_order = order
    if (
        encoding
        and encoding != job.encoding
        and job.file_format == ImportJob.FileFormat.CSV
    ):
        layout = _inspect(job.file_path, encoding)
        by_position = [job.mapping.get(h) for h in job.headers]
        mapping = auto_map(layout.headers)
        for header, field in zip(layout.headers, by_position, strict=False):
            if field is not None:
                mapping[header] = field
        changes.append(f"encoding: {job.encoding} -> {encoding}")
        job.encoding, job.encoding_chosen = encoding, True
        job.delimiter, job.headers, job.mapping = (
            layout.delimiter,
            layout.headers,
            mapping,
        )
    return changes


def discard(job: ImportJob, *, actor) -> bool:
    """Discard a pending import: its uploaded file and its validation report
    are deleted, the job stays as DISCARDED, in the audit trail.

    Returns False (nothing done) when the job is not pending any more.
    """
    claimed = ImportJob.objects.filter(pk=job.pk, status__in=PENDING).update(
        status=S.DISCARDED, finished_at=timezone.now()
    )
    if not claimed:
        return False
    job.refresh_from_db()
    # A failed import (not a failed check) may have written rows: they stay.
    partly = job.report_file.endswith("-result.csv") and job.rows_ok > 0
    discard_upload(job)
    for dry_run in (True, False):
        with contextlib.suppress(FileNotFoundError):
            if dry_run or not partly:
                os.remove(report_path(job, dry_run=dry_run))
    ImportJob.objects.filter(pk=job.pk).update(
        report_file=job.report_file if partly else "", sample_errors=[]
    )
    job.refresh_from_db()
    outcome = (
        f"{job.rows_ok} rows imported before it failed stay"
        if partly
        else "not imported"
    )
    record_audit(
        actor=actor,
        action=AuditEvent.Action.IMPORT,
        target_type="import",
        target_id=job.pk,
        summary=f"Discarded the pending import of {job.original_name} "
        f"({outcome}; the uploaded file was deleted)",
        details={"discarded": True, "rows_checked": job.rows_total},
    )
    return True


def check_mapping(job: ImportJob) -> None:
    problems = mapping_problems(
        job.mapping, job.consent_mode == ImportJob.ConsentMode.COLUMN
    )
    if problems:
        raise ImportSetupError(" ".join(problems))


def start(job: ImportJob, *, dry_run: bool, actor=None) -> bool:
    """Validate or import `job`: inline when small, else on a worker.

    Returns True when it ran inline (the job is finished), False when queued.
    An import that would wait for another one (SQLite, see leases.py) is
    queued whatever its size: a web request does not wait.
    """
    small = job.size_bytes <= settings.IMPORT_BACKGROUND_BYTES
    if small and (dry_run or not (leases.one_at_a_time() and leases.running_import())):
        run_import(job, dry_run=dry_run, actor=actor)
        return True
    job.status = ImportJob.Status.VALIDATING if dry_run else ImportJob.Status.QUEUED
    job.bytes_done = 0  # a new run: the last run's progress is not this one's
    job.heartbeat_at = timezone.now()  # lost with its task? see leases.py
    job.waiting_for = ""
    job.save(update_fields=["status", "bytes_done", "heartbeat_at", "waiting_for"])
    transaction.on_commit(
        lambda: leases.queue(
            job.pk, dry_run=dry_run, actor_id=actor.pk if actor else None
        )
    )
    return False


def confirm(job: ImportJob, *, actor) -> bool | None:
    """Import a validated job: once, even on a double click or a second tab.

    The job is claimed with a compare-and-set (VALIDATED -> QUEUED); returns
    None when there was nothing to claim, else what `start` returns.
    """
    claimed = ImportJob.objects.filter(
        pk=job.pk, status=ImportJob.Status.VALIDATED, rows_ok__gt=0
    ).update(status=ImportJob.Status.QUEUED, bytes_done=0)
    if not claimed:
        return None
    job.refresh_from_db()
    return start(job, dry_run=False, actor=actor)


def state_of(job: ImportJob) -> dict[str, bool]:
    """What the job's status means, by name, for the import pages (so that no
    template spells statuses out)."""
    status = job.status
    return {
        "validating": status == S.VALIDATING,
        "queued": status == S.QUEUED,
        "done": status == S.DONE,
        "failed": status == S.FAILED,
        "finished": status in (S.DONE, S.FAILED),
        "discarded": status == S.DISCARDED,
        "pending": status in PENDING,
    }


_PHASES = {
    S.UPLOADED: "uploaded",
    S.VALIDATING: "checking",
    S.VALIDATED: "waiting for confirmation",
    S.QUEUED: "queued",
    S.RUNNING: "importing",
    S.DONE: "done",
    S.FAILED: "failed",
    S.DISCARDED: "discarded",
}


def progress_of(job: ImportJob) -> dict:
    """Where the job is, for the progress page and its endpoint.

    Two bars, each of which only moves forward through the job's phases
    (uploaded, checking, waiting, queued, importing, done): `check_percent`,
    the check of the file, and `import_percent`, the writing; `percent` is the
    bar of the current phase (the import's once it is confirmed). A run saves
    its progress from 0 (see Importer.run and start), so a queued import never
    shows the check's figure.
    """
    status = job.status
    imported = status in (S.QUEUED, S.RUNNING, S.DONE) or (
        status == S.FAILED and job.report_file.endswith("-result.csv")
    )
    if status in (S.UPLOADED, S.DISCARDED) and not job.rows_total:
        check = 0
    elif status == S.VALIDATING or (status == S.FAILED and not imported):
        check = job.percent_done
    else:
        check = 100
    if status == S.DONE:
        done = 100
    elif status in (S.RUNNING, S.FAILED) and imported:
        done = job.percent_done
    else:
        done = 0
    return {
        "status": status,
        "phase": _PHASES[status],
        "percent": done if imported else check,
        "check_percent": check,
        "import_percent": done,
        "rows_total": job.rows_total,
        "rows_ok": job.rows_ok,
        "rows_bad": job.rows_bad,
        "finished": status in (S.DONE, S.FAILED, S.DISCARDED),
        "waiting_for": job.waiting_for if status == S.QUEUED else "",
        "recovery": recovery_notes(job),
    }


def _when(iso: str) -> str:
    if not iso:
        return "unknown"
    return timezone.localtime(datetime.fromisoformat(iso)).strftime("%Y-%m-%d %H:%M:%S")


def recovery_notes(job: ImportJob) -> list[str]:
    """What happened when the job's worker stopped, oldest first, for its
    pages (leases.requeue_stalled_imports and Importer._resume record it)."""
    notes = []
    for note in job.resumes:
        line = note.get("line", 0)
        if note.get("kind") == "stalled" and note.get("phase") == "check":
            notes.append(
                "The worker stopped while checking the file (last sign of life "
                f"{_when(note.get('last_beat', ''))}); the check was queued again "
                f"at {_when(note['at'])} and starts from the top."
            )
        elif note.get("kind") == "stalled":
            notes.append(
                f"The worker stopped at line {line} (last sign of life "
                f"{_when(note.get('last_beat', ''))}); the import was queued "
                f"again at {_when(note['at'])}."
            )
        else:
            notes.append(
                f"Resumed after the worker stopped at line {line}, at "
                f"{_when(note['at'])}: the {note.get('rows_ok', 0)} rows imported "
                "before were not written again."
            )
    return notes
