"""Who runs an import job: one run at a time, under a lease it renews.

A run claims the job with a conditional update (a token of its own and a
heartbeat), renews the heartbeat at the start of each chunk's transaction and
stops when its token is gone. A job whose heartbeat is older than
IMPORT_LEASE_SECONDS has lost its worker (killed, or its task lost with the
Redis broker): the periodic task queues it again, and the next run resumes
after the last committed chunk (see importer.py).

On SQLite one writer locks the whole database, so only one import writes at
a time: the others wait in the queue ("waiting for another import") and the
import that finishes starts them.
"""

import uuid
from dataclasses import dataclass
from datetime import timedelta

from django.conf import settings
from django.db import connection
from django.db.models import Exists, OuterRef, Q
from django.utils import timezone
from django_q.tasks import async_task

from contacts.models import AuditEvent, ImportJob
from contacts.services.audit import record_audit

S = ImportJob.Status
FINAL = (S.DONE, S.DISCARDED)
IN_FLIGHT = (S.QUEUED, S.RUNNING, S.VALIDATING)


class LeaseLost(Exception):
    """Another run holds the job now: this one must write nothing more."""


@dataclass(frozen=True)
class Claim:
    token: str = ""  # empty: not claimed
    reason: str = ""  # why not, in the user's words


def _cutoff():
    return timezone.now() - timedelta(seconds=settings.IMPORT_LEASE_SECONDS)


def _held(cutoff) -> Q:
    """Jobs a live run holds."""
    return ~Q(claim_token="") & Q(heartbeat_at__gte=cutoff)


def one_at_a_time() -> bool:
    """Whether imports take turns (SQLite) rather than run side by side."""
    return connection.vendor == "sqlite"


def running_import(exclude_pk: int | None = None) -> ImportJob | None:
    """The import being written by a live run, other than `exclude_pk`."""
    return (
        ImportJob.objects.filter(_held(_cutoff()), status=S.RUNNING)
        .exclude(pk=exclude_pk)
        .only("pk", "original_name")
        .first()
    )


def claim(job: ImportJob, *, dry_run: bool) -> Claim:
    """Take `job` for this run, unless a live run holds it or (on SQLite)
    another import is being written; then the job waits, QUEUED, saying so."""
    now, cutoff = timezone.now(), _cutoff()
    token = uuid.uuid4().hex
    free = ImportJob.objects.filter(pk=job.pk).exclude(status__in=FINAL)
    free = free.exclude(_held(cutoff))
    if not dry_run and one_at_a_time():
        others = ImportJob.objects.filter(_held(cutoff), status=S.RUNNING).exclude(
            pk=OuterRef("pk")
        )
        free = free.filter(~Exists(others))
    taken = free.update(
        claim_token=token,
        heartbeat_at=now,
        waiting_for="",
        status=S.VALIDATING if dry_run else S.RUNNING,
    )
    if taken:
        return Claim(token=token)
    current = ImportJob.objects.filter(pk=job.pk).values("status").first()
    if current is None or current["status"] in FINAL:
        return Claim(reason=f"the job is {current['status'] if current else 'gone'}")
    other = None if dry_run else running_import(exclude_pk=job.pk)
    if other is None:
        return Claim(reason="another worker is running it")
    reason = f"waiting for another import (#{other.pk} {other.original_name})"
    ImportJob.objects.filter(pk=job.pk).exclude(_held(cutoff)).update(
        status=S.QUEUED, waiting_for=reason, heartbeat_at=now
    )
    return Claim(reason=reason)


def renew(job: ImportJob, token: str) -> None:
    """Beat: the run still holds `job` (call it inside the chunk's
    transaction, first: it also locks the job's row until the commit)."""
    beat = timezone.now()
    if not ImportJob.objects.filter(pk=job.pk, claim_token=token).update(
        heartbeat_at=beat
    ):
        raise LeaseLost(f"import {job.pk} was taken over by another run")
    job.heartbeat_at = beat


def queue(job_id: int, *, dry_run: bool, actor_id: int | None) -> None:
    async_task(
        "contacts.tasks.process_import",
        job_id,
        dry_run,
        actor_id,
        task_name=f"import-{job_id}-{'validate' if dry_run else 'write'}",
    )


def start_waiting_imports() -> int:
    """Queue the imports waiting for their turn (after one has finished)."""
    waiting = list(
        ImportJob.objects.filter(status=S.QUEUED)
        .exclude(waiting_for="")
        .order_by("pk")
        .values_list("pk", "created_by_id")
    )
    for pk, actor_id in waiting:
        queue(pk, dry_run=False, actor_id=actor_id)
    return len(waiting)


def requeue_stalled_imports() -> list[int]:
    """Queue again every job whose run stopped giving signs of life (its
    worker was killed, or its task was lost); the audit trail and the job's
    page say so, with the line it had reached."""
    now, cutoff = timezone.now(), _cutoff()
    stalled = ImportJob.objects.filter(status__in=IN_FLIGHT).filter(
        Q(heartbeat_at__lt=cutoff) | Q(heartbeat_at__isnull=True, created_at__lt=cutoff)
    )
    requeued = []
    for job in stalled:
        dry_run = job.status == S.VALIDATING
        line = job.checkpoint.get("line", 0) if not dry_run else 0
        note = {
            "at": now.isoformat(),
            "line": line,
            "last_beat": job.heartbeat_at.isoformat() if job.heartbeat_at else "",
            "kind": "stalled",
            "phase": "check" if dry_run else "import",
        }
        # Revoke the silent run (were it only slow, its next chunk stops);
        # conditional, so two schedulers cannot both queue the job.
        if not ImportJob.objects.filter(
            pk=job.pk, status=job.status, heartbeat_at=job.heartbeat_at
        ).update(
            claim_token="",
            heartbeat_at=now,
            status=S.VALIDATING if dry_run else S.QUEUED,
            resumes=[*job.resumes, note],
        ):
            continue
        what = "check" if dry_run else f"import, stopped after line {line},"
        record_audit(
            actor=None,
            action=AuditEvent.Action.IMPORT,
            target_type="import",
            target_id=job.pk,
            summary=f"The worker of import #{job.pk} ({job.original_name}) "
            f"stopped giving signs of life; the {what} was queued again",
            details=note,
        )
        queue(job.pk, dry_run=dry_run, actor_id=job.created_by_id)
        requeued.append(job.pk)
    return requeued
