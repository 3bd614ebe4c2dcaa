"""The benchmarks count the PostgreSQL server's CPU beside ours
(bench/_common.server_cpu_reader): on two cores a run's figures only add up
with both."""

import importlib.util
import os
import time
from pathlib import Path

import psycopg
import pytest
from django.db import connection

_PATH = Path(__file__).resolve().parent.parent / "bench" / "_common.py"
_SPEC = importlib.util.spec_from_file_location("bench_common", _PATH)
common = importlib.util.module_from_spec(_SPEC)
_SPEC.loader.exec_module(common)

postgresql_only = pytest.mark.skipif(
    connection.vendor != "postgresql", reason="the server's CPU is PostgreSQL's"
)
BUSY = "SELECT sum(x) FROM generate_series(1, 4000000) AS x"


def _backend_pid(cursor) -> int:
    cursor.execute("SELECT pg_backend_pid()")
    return cursor.fetchone()[0]


@postgresql_only
@pytest.mark.django_db
def test_a_query_s_work_shows_in_the_server_s_cpu():
    with connection.cursor() as cursor:
        used = common.server_cpu_reader(_backend_pid(cursor))
        assert used is not None
        before, started = used(), time.monotonic()
        cursor.execute(BUSY)
        took = time.monotonic() - started
        after = used()
    # The query is the server's work: at least half its time was its CPU.
    assert after - before >= took / 2 > 0


@postgresql_only
@pytest.mark.django_db
def test_a_closed_connection_s_work_still_counts():
    params = connection.get_connection_params()
    with connection.cursor() as cursor:
        used = common.server_cpu_reader(_backend_pid(cursor))
    before = used()
    keys = ("host", "port", "user", "dbname")
    conninfo = {k: v for k, v in params.items() if k in keys}
    with psycopg.connect(**conninfo) as other:
        pid = other.execute("SELECT pg_backend_pid()").fetchone()[0]
        started = time.monotonic()
        other.execute(BUSY)
        took = time.monotonic() - started
    deadline = time.monotonic() + 10
    while os.path.exists(f"/proc/{pid}") and time.monotonic() < deadline:
        time.sleep(0.05)  # the postmaster reaps it
    assert not os.path.exists(f"/proc/{pid}")
    assert used() - before >= took / 2 > 0


def test_no_reader_for_a_process_that_is_not_a_postgresql_server_s():
    assert common.server_cpu_reader(os.getpid()) is None
    assert common.server_cpu_reader(2**22 + 1) is None  # above pid_max


def test_cores_busy_adds_ours_the_server_s_and_the_others():
    run = common.Measured(0, 10.0, 0, 0, 0, 8.0, "", server_cpu_s=7.0)
    assert common.cpu_figures(run, 3.0) == {"server_cpu_s": 7.0, "cores_busy": 1.8}
    alone = common.Measured(0, 10.0, 0, 0, 0, 9.5, "")
    assert common.cpu_figures(alone) == {"server_cpu_s": None, "cores_busy": 0.95}
