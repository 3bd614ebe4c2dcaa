"""Import faults with a real django-q2 cluster (ORM broker, or Redis when
REDIS_URL is set) on a database of its own (see conftest.py): a worker killed
mid-import, and two imports at once."""

import json
import time

import pytest
from picklefield.fields import dbsafe_decode

from tests.integration.conftest import PYTHON, _run, _utc

pytestmark = pytest.mark.integration

ROWS = 30_000  # three chunks of 10,000


def _import_driver(stack, *args: str, **env) -> dict:
    out = _run(
        [PYTHON, "-m", "tests.integration.import_driver", *args],
        {**stack.env, **{k: str(v) for k, v in env.items()}},
    )
    return json.loads(out.strip().splitlines()[-1])


def _job(stack, pk: int) -> dict:
    [row] = stack.rows(
        "SELECT status, error, rows_ok, rows_bad, opt_ins, checkpoint, resumes, "
        "started_at, finished_at FROM contacts_importjob WHERE id = %s",
        pk,
    )
    for field in ("checkpoint", "resumes"):
        if isinstance(row[field], str):
            row[field] = json.loads(row[field])
    return row


def _events_per_identity_and_job(stack) -> list[int]:
    rows = stack.rows(
        "SELECT COUNT(*) AS n FROM contacts_consentevent "
        "GROUP BY identity_id, import_job_id"
    )
    return sorted(row["n"] for row in rows)


def _done(stack, pk: int) -> dict | None:
    job = _job(stack, pk)
    assert job["status"] != "FAILED", job["error"]
    return job if job["status"] == "DONE" else None


def test_a_worker_killed_mid_import_is_resumed_after_its_last_chunk(stack):
    cluster = stack.start_cluster()
    pk = _import_driver(stack, "queue", "--rows", str(ROWS), "--name", "big.csv")["job"]

    def first_chunk_committed():
        job = _job(stack, pk)
        assert job["status"] != "DONE", "the import ended before the kill"
        return job["checkpoint"].get("line", 0) > 0 and job

    committed = stack.wait(first_chunk_committed, "a committed chunk", timeout=120)
    cluster.kill()
    stopped = _job(stack, pk)
    assert stopped["status"] == "RUNNING"  # "Importing n %", with nobody on it
    line = stopped["checkpoint"]["line"]
    assert line >= committed["checkpoint"]["line"]
    assert (
        sum(_events_per_identity_and_job(stack))
        == stopped["checkpoint"]["counts"]["rows_ok"]
    )

    stack.start_cluster()
    time.sleep(1.5)  # the silent worker's lease (1 s here) runs out
    answer = _import_driver(stack, "resume-stalled", IMPORT_LEASE_SECONDS=1)
    assert answer["result"] == f"imports queued again: [{pk}]"
    job = stack.wait(lambda: _done(stack, pk), "the resumed import", timeout=180)

    assert (job["rows_ok"], job["rows_bad"], job["opt_ins"]) == (ROWS, 0, ROWS)
    assert _events_per_identity_and_job(stack) == [1] * ROWS
    stalled, resumed = job["resumes"][:2]
    assert (stalled["kind"], stalled["line"]) == ("stalled", line)
    assert (resumed["kind"], resumed["line"]) == ("resumed", line)


def _task_results(stack) -> list[str]:
    rows = stack.rows(
        "SELECT result FROM django_q_task WHERE func = %s ORDER BY started",
        "contacts.tasks.process_import",
    )
    return [dbsafe_decode(row["result"]) for row in rows if row["result"]]


def test_two_imports_at_once_both_finish_and_record_each_consent_once(stack):
    """Two workers take one file each at the same moment. The first merges
    8,000 people already known (a chunk that holds SQLite's write lock for
    longer than a writer waits for it, 20 s); the second adds new people.
    On SQLite the second waits for the first instead of failing with
    "database is locked"; on PostgreSQL they run side by side."""
    known = 8_000
    _import_driver(stack, "queue", "--rows", str(known), "--name", "known.csv")
    stack.start_cluster(Q_WORKERS=2, Q_TIMEOUT=600, Q_RETRY=700)
    stack.wait(lambda: _done(stack, 1), "the known people", timeout=120)
    first = _import_driver(stack, "queue", "--rows", str(known), "--name", "a.csv")
    stack.wait(
        lambda: _job(stack, first["job"])["checkpoint"].get("line"),
        "the first import's first chunk",
        timeout=120,
    )
    second = _import_driver(
        stack, "queue", "--rows", "2000", "--first", str(known), "--name", "b.csv"
    )
    a, b = (
        stack.wait(lambda pk=pk: _done(stack, pk), f"import {pk}", timeout=400)
        for pk in (first["job"], second["job"])
    )
    assert (a["rows_ok"], a["opt_ins"], b["rows_ok"], b["opt_ins"]) == (
        known,
        known,
        2000,
        2000,
    )
    assert _events_per_identity_and_job(stack) == [1] * (2 * known + 2000)
    if stack.kind == "sqlite":
        # Whether the broker hands the second task out while the first runs
        # (then it answers "waiting for another import") depends on the lock's
        # timing: tests/contacts/test_contacts_import_turns.py shows that part.
        assert _utc(b["started_at"]) >= _utc(a["finished_at"]), "they overlapped"
    assert not [r for r in _task_results(stack) if "locked" in r]
