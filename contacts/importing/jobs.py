"""Creating, validating and running import jobs (the admin, the command and
the tasks all come through here)."""

import os
import uuid

from django.conf import settings
from django.db import transaction
from django_q.tasks import async_task

from contacts.importing.importer import run_import
from contacts.importing.mapping import auto_map, mapping_problems
from contacts.importing.source import sniff
from contacts.models import ContactList, ImportJob


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
) -> ImportJob:
    """Read the file's header, check the options and record a new job.

    Raises ImportSetupError (nothing recorded) when the file or the options
    cannot work: an unreadable file, a missing declaration, a bad mapping.
    """
    try:
        delimiter, headers = sniff(path)
    except (OSError, ValueError) as exc:
        raise ImportSetupError(str(exc)) from None
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
        delimiter=delimiter,
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
    job.save()
    return job


def check_mapping(job: ImportJob) -> None:
    problems = mapping_problems(
        job.mapping, job.consent_mode == ImportJob.ConsentMode.COLUMN
    )
    if problems:
        raise ImportSetupError(" ".join(problems))


def start(job: ImportJob, *, dry_run: bool, actor=None) -> bool:
    """Validate or import `job`: inline when small, else on a worker.

    Returns True when it ran inline (the job is finished), False when queued.
    """
    if job.size_bytes <= settings.IMPORT_BACKGROUND_BYTES:
        run_import(job, dry_run=dry_run, actor=actor)
        return True
    job.status = ImportJob.Status.VALIDATING if dry_run else ImportJob.Status.QUEUED
    job.save(update_fields=["status"])
    transaction.on_commit(
        lambda: async_task(
            "contacts.tasks.process_import",
            job.pk,
            dry_run,
            actor.pk if actor else None,
            task_name=f"import-{job.pk}-{'validate' if dry_run else 'write'}",
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
    ).update(status=ImportJob.Status.QUEUED)
    if not claimed:
        return None
    job.refresh_from_db()
    return start(job, dry_run=False, actor=actor)


def state_of(job: ImportJob) -> dict[str, bool]:
    """What the job's status means, by name, for the import pages (so that no
    template spells statuses out)."""
    status, S = job.status, ImportJob.Status
    return {
        "validating": status == S.VALIDATING,
        "queued": status == S.QUEUED,
        "done": status == S.DONE,
        "failed": status == S.FAILED,
        "finished": status in (S.DONE, S.FAILED),
    }
