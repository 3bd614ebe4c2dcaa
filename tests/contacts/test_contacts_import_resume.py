"""A worker killed mid-import: the job resumes after its last committed chunk,
writes nothing twice, and a job whose worker vanished is picked up again by
the periodic task; two runs never work on one job at once."""

import os
import shutil
from datetime import timedelta

import pytest
from django.db.models import Count
from django.urls import reverse
from django.utils import timezone

from contacts import tasks
from contacts.importing import importer, jobs, leases
from contacts.importing.plan import ChunkPlan
from contacts.models import AuditEvent, ChannelIdentity, ConsentEvent, ImportJob
from contacts.services.erasure import erase

HEADER = ["phone", "first_name", "channel", "consent"]
PEOPLE = 10


class Killed(BaseException):
    """The worker process dies here: no `except Exception` sees it."""


def _rows():
    """Ten opted-in people on lines 2-11, a bad row on line 7 and a repeat of
    line 2's number on line 13."""
    rows = [HEADER]
    for n in range(PEOPLE):
        rows.append([f"+4915123400{n:03d}", f"Person {n}", "SMS", "yes"])
    rows.insert(6, ["not-a-number", "Bad", "SMS", "yes"])  # line 7
    rows.append(["+4915123400000", "Again", "SMS", "yes"])  # line 13
    return rows


@pytest.fixture(autouse=True)
def small_chunks(monkeypatch):
    monkeypatch.setattr(importer, "CHUNK_ROWS", 3)


@pytest.fixture
def make_job(column_consent_import):
    return lambda: column_consent_import(_rows())


def _kill_after_chunk(monkeypatch, k):
    seen = []

    def die(job):
        seen.append(job.pk)
        if len(seen) == k:
            raise Killed

    monkeypatch.setattr(importer, "after_chunk", die)


def _lease_runs_out(job):
    """The silent worker's lease runs out (time passes)."""
    ImportJob.objects.filter(pk=job.pk).update(
        heartbeat_at=timezone.now() - timedelta(seconds=301)
    )


def _ledger_per_identity():
    return list(
        ConsentEvent.objects.values("identity")
        .annotate(n=Count("id"))
        .values_list("n", flat=True)
    )


def _assert_imported_once(job):
    job.refresh_from_db()
    assert job.status == ImportJob.Status.DONE, job.error
    assert ChannelIdentity.objects.count() == PEOPLE
    assert sorted(_ledger_per_identity()) == [1] * PEOPLE
    assert (job.rows_total, job.rows_ok, job.rows_bad) == (PEOPLE + 2, PEOPLE, 2)
    assert (job.contacts_created, job.opt_ins) == (PEOPLE, PEOPLE)
    with open(job.report_file, encoding="utf-8") as report:
        lines = [row.split(",")[0] for row in report.read().splitlines()[1:]]
    assert lines == ["7", "13"]  # each bad row reported once
    assert [s["line"] for s in job.sample_errors] == [7, 13]


def test_a_worker_killed_after_a_chunk_resumes_there_via_the_periodic_task(
    make_job, monkeypatch, settings
):
    settings.IMPORT_LEASE_SECONDS = 300
    job = make_job()
    _kill_after_chunk(monkeypatch, 2)
    with pytest.raises(Killed):
        importer.run_import(job, dry_run=False)
    job.refresh_from_db()
    assert job.status == ImportJob.Status.RUNNING
    assert job.checkpoint["line"] == 8  # lines 2-8: six people and line 7
    assert ConsentEvent.objects.count() == 6

    monkeypatch.setattr(importer, "after_chunk", lambda job: None)
    assert tasks.resume_stalled_imports() == "imports queued again: none"  # alive
    _lease_runs_out(job)
    assert tasks.resume_stalled_imports() == f"imports queued again: [{job.pk}]"

    _assert_imported_once(job)
    notes = jobs.recovery_notes(job)
    assert notes[0].startswith("The worker stopped at line 8 (last sign of life")
    assert notes[1].startswith("Resumed after the worker stopped at line 8")
    assert "the 6 rows imported before were not written again" in notes[1]
    audits = AuditEvent.objects.filter(target_type="import", target_id=str(job.pk))
    assert audits.filter(summary__contains="stopped giving signs of life").exists()
    assert audits.filter(summary__contains="Resumed the import").exists()


def test_a_kill_inside_a_chunk_rolls_it_back_and_the_rerun_writes_it_once(
    make_job, monkeypatch
):
    job = make_job()
    real_apply, calls = ChunkPlan.apply, []

    def apply_then_die(plan, meanwhile=None):
        real_apply(plan, meanwhile)
        calls.append(1)
        if len(calls) == 3:
            raise Killed  # written, not committed

    monkeypatch.setattr(ChunkPlan, "apply", apply_then_die)
    with pytest.raises(Killed):
        importer.run_import(job, dry_run=False)
    job.refresh_from_db()
    assert job.checkpoint["line"] == 8
    assert ConsentEvent.objects.count() == 6  # the third chunk rolled back

    monkeypatch.setattr(ChunkPlan, "apply", real_apply)
    _lease_runs_out(job)
    importer.run_import(job, dry_run=False)
    _assert_imported_once(job)


def test_a_failed_import_run_again_continues_after_its_last_chunk(
    make_job, monkeypatch
):
    job = make_job()
    real_apply, calls = ChunkPlan.apply, []

    def apply_then_fail(plan, meanwhile=None):
        real_apply(plan, meanwhile)
        calls.append(1)
        if len(calls) == 2:
            raise RuntimeError("the disk is full")

    monkeypatch.setattr(ChunkPlan, "apply", apply_then_fail)
    job = importer.run_import(job, dry_run=False)
    assert job.status == ImportJob.Status.FAILED
    assert "the disk is full" in job.error
    assert job.rows_ok == 3  # what the database holds, not the rolled-back chunk
    monkeypatch.setattr(ChunkPlan, "apply", real_apply)
    importer.run_import(job, dry_run=False)
    _assert_imported_once(job)


def test_a_job_whose_task_was_lost_is_run_by_the_periodic_task(
    make_job, monkeypatch, settings
):
    """The Redis broker loses a task when its worker dies: the job stays
    QUEUED with nobody to run it."""
    settings.IMPORT_BACKGROUND_BYTES = 0
    job = make_job()
    monkeypatch.setattr(leases, "async_task", lambda *a, **k: None)  # lost
    assert jobs.start(job, dry_run=False) is False
    job.refresh_from_db()
    assert job.status == ImportJob.Status.QUEUED
    monkeypatch.undo()
    monkeypatch.setattr(importer, "CHUNK_ROWS", 3)
    _lease_runs_out(job)
    tasks.resume_stalled_imports()
    _assert_imported_once(job)


def test_a_second_run_of_a_job_being_imported_does_nothing(make_job, monkeypatch):
    job = make_job()
    second = {}

    def second_worker(j):
        if not second:
            second["job"] = tasks.process_import(j.pk, False, None)

    monkeypatch.setattr(importer, "after_chunk", second_worker)
    importer.run_import(job, dry_run=False)
    assert second["job"].startswith(f"import {job.pk}: RUNNING")
    _assert_imported_once(job)


def test_a_run_whose_lease_was_taken_over_stops_writing(make_job, monkeypatch):
    """A worker that was only slow wakes up after another took its job over:
    its next chunk writes nothing and it does not finish the job."""
    job = make_job()

    def taken_over(j):
        ImportJob.objects.filter(pk=j.pk).update(claim_token="another-worker")

    monkeypatch.setattr(importer, "after_chunk", taken_over)
    importer.run_import(job, dry_run=False)
    job.refresh_from_db()
    assert job.status == ImportJob.Status.RUNNING
    assert job.claim_token == "another-worker"
    assert ConsentEvent.objects.count() == 3  # the first chunk only
    assert job.checkpoint["line"] == 4


def test_the_job_page_says_where_the_worker_stopped_and_resumed(
    make_job, monkeypatch, admin_client
):
    job = make_job()
    _kill_after_chunk(monkeypatch, 1)
    with pytest.raises(Killed):
        importer.run_import(job, dry_run=False)
    monkeypatch.setattr(importer, "after_chunk", lambda job: None)
    _lease_runs_out(job)
    tasks.resume_stalled_imports()
    page = admin_client.get(reverse("admin:contacts_importjob_progress", args=[job.pk]))
    text = page.content.decode()
    assert "The worker stopped at line 4" in text
    assert "Resumed after the worker stopped at line 4" in text
    assert jobs.progress_of(ImportJob.objects.get(pk=job.pk))["recovery"]


def test_a_check_whose_worker_stopped_starts_again_from_the_top(
    make_job, monkeypatch, settings, django_capture_on_commit_callbacks
):
    settings.IMPORT_BACKGROUND_BYTES = 0
    job = make_job()
    _kill_after_chunk(monkeypatch, 2)
    with pytest.raises(Killed), django_capture_on_commit_callbacks(execute=True):
        jobs.start(job, dry_run=True)  # queued: the worker runs it
    monkeypatch.setattr(importer, "after_chunk", lambda job: None)
    _lease_runs_out(job)
    tasks.resume_stalled_imports()
    job.refresh_from_db()
    assert job.status == ImportJob.Status.VALIDATED
    assert (job.rows_total, job.rows_ok, job.rows_bad) == (PEOPLE + 2, PEOPLE, 2)
    assert ConsentEvent.objects.count() == 0
    assert jobs.recovery_notes(job)[0].startswith(
        "The worker stopped while checking the file"
    )


def test_a_file_erasure_rewrote_since_the_stop_is_not_resumed_by_its_old_lines(
    make_job, monkeypatch, compliance_admin, settings
):
    """Erasure removes the person's row from the uploaded file: every line
    after it moves up, so the checkpoint's line means another row now."""
    job = make_job()
    uploads = os.path.join(settings.MEDIA_ROOT, "imports")
    os.makedirs(uploads, exist_ok=True)
    job.file_path = shutil.copy(job.file_path, uploads)  # an uploaded file
    job.save(update_fields=["file_path"])
    _kill_after_chunk(monkeypatch, 1)
    with pytest.raises(Killed):
        importer.run_import(job, dry_run=False)
    monkeypatch.setattr(importer, "after_chunk", lambda job: None)
    first = ChannelIdentity.objects.get(identity="+4915123400000").contact
    erase(contact=first, actor=compliance_admin, reason="asked")
    _lease_runs_out(job)
    tasks.resume_stalled_imports()
    job.refresh_from_db()
    assert job.status == ImportJob.Status.FAILED
    assert "The file changed after the import stopped at line 4" in job.error
    assert job.rows_ok == 3
    assert ConsentEvent.objects.exclude(identity__contact=first).count() == 2
