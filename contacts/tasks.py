"""Background tasks of the contacts app: thin wrappers over the services.

The dotted paths of these functions are stored in django-q2's queue and
schedules (campaigns.schedules): keep them.
"""

from django.contrib.auth import get_user_model

from contacts.importing.importer import run_import
from contacts.importing.leases import requeue_stalled_imports
from contacts.models import ImportJob


def process_import(job_id: int, dry_run: bool, actor_id: int | None) -> str:
    """Validate or run one import job. Safe to run twice: a finished job is
    left, and a job another run holds is not touched (leases.claim)."""
    job = ImportJob.objects.get(pk=job_id)
    done = (ImportJob.Status.DONE, ImportJob.Status.FAILED, ImportJob.Status.DISCARDED)
    if job.status in done or (dry_run and job.status == ImportJob.Status.VALIDATED):
        return f"import {job_id} already {job.status}"
    actor = get_user_model().objects.filter(pk=actor_id).first() if actor_id else None
    job = run_import(job, dry_run=dry_run, actor=actor)
    if job.waiting_for:
        return f"import {job_id}: {job.waiting_for}"
    return f"import {job_id}: {job.status}, {job.rows_ok} ok, {job.rows_bad} bad"


def resume_stalled_imports() -> str:
    """Every minute: queue again the imports whose worker stopped (killed, or
    the task lost with the broker); they resume after their last chunk."""
    requeued = requeue_stalled_imports()
    return f"imports queued again: {requeued or 'none'}"
