"""Two imports at once: on SQLite (one writer locks the whole database) the
second waits its turn, says so, and starts when the first ends; on PostgreSQL
they run side by side. Either way each file's consent is recorded once per
person. (tests/integration/test_import_faults.py runs them in two real
processes.)"""

import pytest
from django.db import connection
from django.db.models import Count
from django.urls import reverse
from django.utils import timezone

from contacts import tasks
from contacts.importing import importer, jobs
from contacts.models import ChannelIdentity, ConsentEvent, ImportJob

HEADER = ["phone", "first_name", "channel", "consent"]
PEOPLE = 8
SQLITE = pytest.mark.skipif(
    connection.vendor != "sqlite", reason="imports take turns on SQLite only"
)


@pytest.fixture(autouse=True)
def small_chunks(monkeypatch):
    monkeypatch.setattr(importer, "CHUNK_ROWS", 3)


@pytest.fixture
def make_job(column_consent_import):
    """An import of the same eight numbers (both files touch them all)."""

    def make(name: str) -> ImportJob:
        rows = [HEADER] + [
            [f"+4915123400{n:03d}", f"{name} {n}", "SMS", "yes"] for n in range(PEOPLE)
        ]
        return column_consent_import(rows, name=name)

    return make


def _assert_both_recorded_once_per_person(first, second):
    for job in (first, second):
        job.refresh_from_db()
        assert job.status == ImportJob.Status.DONE, job.error
        assert (job.rows_ok, job.rows_bad, job.opt_ins) == (PEOPLE, 0, PEOPLE)
    assert ChannelIdentity.objects.count() == PEOPLE
    per_job = ConsentEvent.objects.values("identity", "import_job").annotate(
        n=Count("id")
    )
    assert sorted(row["n"] for row in per_job) == [1] * (2 * PEOPLE)


@SQLITE
def test_on_sqlite_a_second_import_waits_for_the_first_and_starts_when_it_ends(
    make_job, monkeypatch, admin_client
):
    first, second = make_job("first.csv"), make_job("second.csv")
    seen = {}

    def second_worker_starts(job):
        if job.pk == first.pk and not seen:
            seen["answer"] = tasks.process_import(second.pk, False, None)
            seen["page"] = admin_client.get(
                reverse("admin:contacts_importjob_progress", args=[second.pk])
            ).content.decode()
            second.refresh_from_db()
            seen["status"] = second.status

    monkeypatch.setattr(importer, "after_chunk", second_worker_starts)
    importer.run_import(first, dry_run=False)

    assert seen["answer"] == (
        f"import {second.pk}: waiting for another import (#{first.pk} first.csv)"
    )
    assert seen["status"] == ImportJob.Status.QUEUED
    assert f"waiting for another import (#{first.pk} first.csv)" in seen["page"]
    _assert_both_recorded_once_per_person(first, second)  # it started after
    second.refresh_from_db()
    assert second.waiting_for == ""
    assert second.started_at >= first.finished_at


@SQLITE
def test_on_sqlite_a_small_import_is_queued_rather_than_run_while_another_runs(
    make_job, django_capture_on_commit_callbacks
):
    running, small = make_job("running.csv"), make_job("small.csv")
    ImportJob.objects.filter(pk=running.pk).update(
        status=ImportJob.Status.RUNNING,
        claim_token="a-worker",
        heartbeat_at=timezone.now(),
    )
    with django_capture_on_commit_callbacks(execute=True):
        assert jobs.start(small, dry_run=False) is False  # not inline
    small.refresh_from_db()
    assert small.status == ImportJob.Status.QUEUED
    assert (
        small.waiting_for == f"waiting for another import (#{running.pk} running.csv)"
    )
    assert jobs.progress_of(small)["waiting_for"] == small.waiting_for
    assert ConsentEvent.objects.count() == 0


@pytest.mark.skipif(connection.vendor == "sqlite", reason="PostgreSQL only")
def test_on_postgresql_two_imports_of_the_same_numbers_run_side_by_side(
    make_job, monkeypatch
):
    first, second = make_job("first.csv"), make_job("second.csv")
    seen = {}

    def second_worker_starts(job):
        if job.pk == first.pk and not seen:
            seen["answer"] = tasks.process_import(second.pk, False, None)

    monkeypatch.setattr(importer, "after_chunk", second_worker_starts)
    importer.run_import(first, dry_run=False)
    assert seen["answer"].startswith(f"import {second.pk}: DONE")
    _assert_both_recorded_once_per_person(first, second)
