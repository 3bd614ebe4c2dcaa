"""Shared helpers for the benchmarks: a fresh database, Django, measured runs.

Every benchmark runs against a database created for the run (a temp SQLite
file, or a PostgreSQL database dropped and re-created), so figures never
depend on what an earlier run left behind.
"""

import json
import os
import resource
import secrets
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PYTHON = sys.executable
# Server for `--database postgres`; the bench database is created on it.
POSTGRES_SERVER = os.environ.get(
    "BENCH_POSTGRES_URL", "postgres://postgres@127.0.0.1:5432"
)


def say(message: str) -> None:
    """Progress goes to stderr, so stdout stays machine-readable."""
    sys.stderr.write(f"[{time.strftime('%H:%M:%S')}] {message}\n")
    sys.stderr.flush()


def emit(result: dict) -> None:
    """The last line of stdout: the figures as one JSON object."""
    sys.stdout.write(json.dumps(result) + "\n")
    sys.stdout.flush()


def workdir(prefix: str) -> str:
    """A temp directory for the run (BENCH_TMPDIR chooses where)."""
    return tempfile.mkdtemp(prefix=prefix, dir=os.environ.get("BENCH_TMPDIR"))


def fresh_database(kind: str, name: str, folder: str) -> str:
    """Create an empty database for this run and return its DATABASE_URL."""
    if kind == "sqlite":
        return f"sqlite:///{os.path.join(folder, name + '.sqlite3')}"
    if kind != "postgres":
        raise ValueError(f"unknown database kind {kind!r}")
    import psycopg

    with psycopg.connect(f"{POSTGRES_SERVER}/postgres", autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{name}"')
    return f"{POSTGRES_SERVER}/{name}"


def remove_run(folder: str, kind: str, name: str) -> None:
    """Delete a run's files and, for PostgreSQL, its database."""
    shutil.rmtree(folder, ignore_errors=True)
    if kind == "postgres":
        from django.db import connections

        connections.close_all()
        import psycopg

        with psycopg.connect(f"{POSTGRES_SERVER}/postgres", autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def setup_django(database_url: str, media_root: str, *, debug: bool = True) -> None:
    """Point this process (and the children it starts) at the bench database,
    set Django up and migrate.

    debug=False runs as in production: DEBUG off, with throw-away keys (DEBUG
    keeps every query in memory, which production does not).
    """
    os.environ["DATABASE_URL"] = database_url
    os.environ["MEDIA_ROOT"] = media_root
    if debug:
        os.environ.setdefault("DEBUG", "true")
    else:
        os.environ["DEBUG"] = "false"
        os.environ.setdefault("SECRET_KEY", secrets.token_urlsafe(40))
        os.environ.setdefault("ERASURE_HASH_KEY", secrets.token_urlsafe(40))
        # With DEBUG off the webhook (and the system checks) need a real secret.
        os.environ.setdefault("SINCH_WEBHOOK_SECRET", secrets.token_urlsafe(32))
    os.environ["DJANGO_SETTINGS_MODULE"] = "config.settings"
    if str(ROOT) not in sys.path:
        sys.path.insert(0, str(ROOT))
    import django
    from django.core.management import call_command

    django.setup()
    call_command("migrate", verbosity=0)


@dataclass
class Measured:
    returncode: int
    wall_s: float
    peak_rss_mb: float  # the largest of the process and its children (wait4)
    peak_tree_rss_mb: float  # the process and its children together (sampled)
    peak_tree_pss_mb: float  # the same, shared pages counted once (sampled)
    cpu_s: float  # user + system, the process and its children
    stdout: str
    # The PostgreSQL server's CPU over the run, when it runs on this machine
    # (server_cpu_reader); None for SQLite or a server elsewhere.
    server_cpu_s: float | None = None


def server_cpu_reader(backend_pid: int):
    """A function returning the CPU seconds (user + system) the PostgreSQL
    server of the backend `backend_pid` (`SELECT pg_backend_pid()`) has used
    so far: the postmaster, its live processes (backends, checkpointer, WAL
    writer, ...) and the ones it has reaped (a backend whose connection
    closed). None when that server is not on this machine.

    On two cores the server's CPU and ours share the same two: a run's
    figures only add up with both.
    """
    import psutil

    try:
        postmaster = psutil.Process(backend_pid).parent()
        if postmaster is None or "postgres" not in postmaster.name():
            return None
    except psutil.Error:
        return None

    def used() -> float:
        own = postmaster.cpu_times()
        total = own.user + own.system + own.children_user + own.children_system
        for proc in postmaster.children():
            try:
                times = proc.cpu_times()
            except psutil.Error:
                continue  # ended since: the postmaster's reaped total has it
            total += times.user + times.system
        return total

    return used


def postgres_cpu_reader():
    """server_cpu_reader for the benchmarks' PostgreSQL server."""
    import psycopg

    with psycopg.connect(f"{POSTGRES_SERVER}/postgres") as conn:
        (pid,) = conn.execute("SELECT pg_backend_pid()").fetchone()
        # Asked while the backend lives: it ends with this connection.
        return server_cpu_reader(pid)


def run_measured(
    args: list[str], *, sample_every: float = 1.0, server_cpu=None
) -> Measured:
    """Run a command (stderr passed through) and measure it.

    Only the command and the processes it starts are measured, not this one
    (the CSV generator, Django). wait4 gives the peak RSS of the largest
    single process; a sampler adds up the whole process tree, as RSS (shared
    pages counted in each process) and as PSS (shared pages split), once a
    second: reading a process's PSS walks its pages (about 1 ms of CPU for
    200 MB), and five times a second over a launch's cluster of seven
    processes that took most of a CPU second from a 31 s launch on two
    cores, from what it measures. `server_cpu`: a server_cpu_reader, read
    before and after.
    """
    import psutil

    server_before = server_cpu() if server_cpu else None
    with tempfile.TemporaryFile(mode="w+") as out:
        started = time.monotonic()
        child = subprocess.Popen(args, cwd=ROOT, stdout=out, stderr=None)
        peaks = [0.0, 0.0]
        stop = threading.Event()

        def sample() -> None:
            try:
                root = psutil.Process(child.pid)
            except psutil.NoSuchProcess:
                return
            while not stop.wait(sample_every):
                rss = pss = 0
                try:
                    for proc in [root, *root.children(recursive=True)]:
                        info = proc.memory_full_info()
                        rss, pss = rss + info.rss, pss + info.pss
                except psutil.Error:
                    continue  # a process ended while being read
                peaks[0], peaks[1] = max(peaks[0], rss), max(peaks[1], pss)

        sampler = threading.Thread(target=sample, daemon=True)
        sampler.start()
        _, status, usage = os.wait4(child.pid, 0)
        wall = time.monotonic() - started
        stop.set()
        sampler.join()
        child.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        text = out.read()
    return Measured(
        child.returncode,
        wall,
        usage.ru_maxrss / 1024,  # KiB on Linux
        peaks[0] / 2**20,
        peaks[1] / 2**20,
        usage.ru_utime + usage.ru_stime,
        text,
        None if server_cpu is None else server_cpu() - server_before,
    )


def cpu_figures(measured: Measured, others_cpu_s: float = 0.0) -> dict:
    """The PostgreSQL server's CPU over a run (null when not measured), and
    how many cores the run kept busy: ours, the server's and `others_cpu_s`
    (the simulator's, say) over its wall time. On two cores, 2.0 is all
    there is: only less CPU makes such a run faster."""
    server = measured.server_cpu_s
    busy = (measured.cpu_s + (server or 0.0) + others_cpu_s) / measured.wall_s
    return {
        "server_cpu_s": None if server is None else round(server, 1),
        "cores_busy": round(busy, 2),
    }


def own_peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def insert_rows(cur, vendor: str, table: str, columns: str, rows: list) -> None:
    """Bulk-insert plain tuples for a benchmark's fill: COPY on PostgreSQL,
    executemany on SQLite."""
    if not rows:
        return
    if vendor == "postgresql":
        with cur.cursor.copy(f"COPY {table} ({columns}) FROM STDIN") as copy:
            for row in rows:
                copy.write_row(row)
    else:
        marks = ", ".join(["%s"] * len(rows[0]))
        cur.executemany(f"INSERT INTO {table} ({columns}) VALUES ({marks})", rows)


CONTACT_COLUMNS = (
    "id, first_name, last_name, language, time_zone, attributes, "
    "external_id, created_at, updated_at"
)
IDENTITY_COLUMNS = (
    "id, contact_id, channel, identity, marketing_consent, "
    "marketing_consent_at, transactional_consent, created_at"
)
MEMBERSHIP_COLUMNS = "id, contact_list_id, contact_id, added_at, source"


def insert_people(cur, vendor: str, contacts, identities, members=()) -> None:
    """Contacts, their identities and list memberships, as rows in the
    order of CONTACT_COLUMNS, IDENTITY_COLUMNS and MEMBERSHIP_COLUMNS."""
    insert_rows(cur, vendor, "contacts_contact", CONTACT_COLUMNS, contacts)
    insert_rows(cur, vendor, "contacts_channelidentity", IDENTITY_COLUMNS, identities)
    if members:
        insert_rows(cur, vendor, "contacts_listmembership", MEMBERSHIP_COLUMNS, members)
