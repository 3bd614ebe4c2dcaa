"""Shared helpers for the benchmarks: a fresh database, Django, measured runs.

Every benchmark runs against a database created for the run (a temp SQLite
file, or a PostgreSQL database dropped and re-created), so figures never
depend on what an earlier run left behind.
"""

import json
import os
import resource
import subprocess
import sys
import tempfile
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


def setup_django(database_url: str, media_root: str) -> None:
    """Point this process (and the children it starts) at the bench database,
    set Django up and migrate."""
    os.environ["DATABASE_URL"] = database_url
    os.environ["MEDIA_ROOT"] = media_root
    os.environ.setdefault("DEBUG", "true")
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
    peak_rss_mb: float
    stdout: str


def run_measured(args: list[str]) -> Measured:
    """Run a child process (stderr passed through) and measure it.

    Peak RSS comes from the child's own rusage (wait4), so the parent's
    memory (the CSV generator, Django) is not counted.
    """
    with tempfile.TemporaryFile(mode="w+") as out:
        started = time.monotonic()
        child = subprocess.Popen(args, cwd=ROOT, stdout=out, stderr=None)
        _, status, usage = os.wait4(child.pid, 0)
        wall = time.monotonic() - started
        child.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        text = out.read()
    # ru_maxrss is in KiB on Linux.
    return Measured(child.returncode, wall, usage.ru_maxrss / 1024, text)


def own_peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
