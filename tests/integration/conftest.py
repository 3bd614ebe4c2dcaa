"""A real django-q2 cluster, a real database and the simulator, for fault tests.

The tests cannot use pytest-django's test database: the cluster runs in other
processes. Each test gets a database of its own (a copy of one migrated once
per session: a SQLite file, or a PostgreSQL database made from a template when
DATABASE_URL is PostgreSQL), a simulator in this process, and starts
`manage.py qcluster` as it needs (the ORM broker, or Redis when REDIS_URL is
set, under a queue name of its own). The product is driven by
tests/integration/driver.py in a process of its own; the database is read
here with plain SQL.
"""

import contextlib
import json
import os
import secrets
import shutil
import signal
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import urlsplit

import psutil
import pytest
from picklefield.fields import dbsafe_decode

from sinch.simulator import Simulator
from tests.sinch.conftest import ACCOUNT, WEBHOOK_SECRET, fast_knobs

ROOT = Path(__file__).resolve().parents[2]
PYTHON = sys.executable
MANAGE = str(ROOT / "manage.py")
# Subprocesses get the product's configuration from here only.
OWN_PREFIXES = ("DJANGO_", "SINCH_", "DISPATCH_", "Q_", "DATABASE_URL", "DEBUG")


def _database_kind() -> str:
    url = os.environ.get("DATABASE_URL", "")
    return "postgres" if url.startswith(("postgres://", "postgresql://")) else "sqlite"


def _postgres_server() -> str:
    parts = urlsplit(os.environ["DATABASE_URL"])
    return f"{parts.scheme}://{parts.netloc}"


def _postgres(sql: str) -> None:
    import psycopg

    with psycopg.connect(f"{_postgres_server()}/postgres", autocommit=True) as conn:
        conn.execute(sql)


def _base_env(database_url: str, folder: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(OWN_PREFIXES)}
    env.update(
        DJANGO_SETTINGS_MODULE="config.settings",
        DATABASE_URL=database_url,
        DEBUG="false",
        SECRET_KEY=secrets.token_urlsafe(40),
        ERASURE_HASH_KEY=secrets.token_urlsafe(40),
        MEDIA_ROOT=os.path.join(folder, "media"),
        STATIC_ROOT=os.path.join(folder, "static"),
        SINCH_WEBHOOK_SECRET=WEBHOOK_SECRET,
        LOG_LEVEL="INFO",
        PYTHONUNBUFFERED="1",
        # These tests run at any hour of the real clock: no quiet hours (as
        # in tests/settings.py); the quiet-hours tests hold their own.
        QUIET_HOURS="00:00-24:00",
    )
    return env


def _run(args: list[str], env: dict[str, str], timeout: float = 120) -> str:
    done = subprocess.run(
        args, cwd=ROOT, env=env, capture_output=True, text=True, timeout=timeout
    )
    if done.returncode:
        raise AssertionError(
            f"{' '.join(args)} failed ({done.returncode}):\n{done.stdout}\n"
            f"{done.stderr}"
        )
    return done.stdout


@pytest.fixture(scope="session")
def migrated_database():
    """A database migrated once, copied for each test: (kind, location)."""
    kind = _database_kind()
    folder = tempfile.mkdtemp(prefix="campaigns-integration-")
    if kind == "sqlite":
        location = os.path.join(folder, "template.sqlite3")
        url = f"sqlite:///{location}"
    else:
        location = f"it_template_{secrets.token_hex(4)}"
        _postgres(f'CREATE DATABASE "{location}"')
        url = f"{_postgres_server()}/{location}"
    try:
        env = _base_env(url, folder)
        _run([PYTHON, MANAGE, "migrate", "--noinput", "-v0"], env)
        # The tick fires only when a test says that time has passed.
        _run([PYTHON, "-m", "tests.integration.driver", "hold-tick"], env)
        yield kind, location
    finally:
        shutil.rmtree(folder, ignore_errors=True)
        if kind == "postgres":
            _postgres(f'DROP DATABASE IF EXISTS "{location}" WITH (FORCE)')


class Recorder:
    """Every request the simulator receives, in order, with its arrival time."""

    def __init__(self, sim: Simulator) -> None:
        self.calls: list[tuple[float, object]] = []
        self.lock = threading.Lock()
        handle = sim.handle

        def recording(request):
            with self.lock:
                self.calls.append((time.monotonic(), request))
            return handle(request)

        sim.handle = recording

    def _api(self, method: str) -> list:
        with self.lock:
            return [
                (at, r)
                for at, r in self.calls
                if r.method == method and r.path.endswith("/messages")
            ]

    def posts(self) -> list:
        """(arrival, request) of every batch submission."""
        return self._api("POST")

    def lookups(self) -> list:
        """(arrival, request) of every search by metadata."""
        return [(at, r) for at, r in self._api("GET") if "metadataKey" in r.query]


class Cluster:
    """A `manage.py qcluster` in a process group of its own."""

    def __init__(self, env: dict[str, str], log: Path) -> None:
        self.log = log
        self.killed = False
        with open(log, "ab") as out:
            self.process = subprocess.Popen(
                [PYTHON, MANAGE, "qcluster"],
                cwd=ROOT,
                env=env,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )

    def processes(self) -> list[psutil.Process]:
        try:
            root = psutil.Process(self.process.pid)
            return [root, *root.children(recursive=True)]
        except psutil.NoSuchProcess:
            return []

    def talking_to(self, port: int) -> list[psutil.Process]:
        """The cluster's processes with an open connection to `port`."""
        found = []
        for proc in self.processes():
            try:
                connections = proc.net_connections(kind="tcp")
            except psutil.Error:
                continue
            if any(
                c.raddr and c.raddr.port == port and c.status == "ESTABLISHED"
                for c in connections
            ):
                found.append(proc)
        return found

    def kill(self) -> None:
        """SIGKILL every process of the cluster at once (the machine died)."""
        self.killed = True
        group = self.processes()
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait(timeout=10)
        # Workers are in the same group: none may outlive the kill (a zombie
        # waiting for init to reap it is dead enough).
        deadline = time.monotonic() + 10
        while any(_alive(p) for p in group):
            assert time.monotonic() < deadline, "a cluster process survived SIGKILL"
            time.sleep(0.05)


def _alive(proc: psutil.Process) -> bool:
    try:
        return proc.status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def _utc(value) -> datetime | None:
    """A datetime read from either database, as an aware UTC datetime."""
    if value is None or value == "":
        return None
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    return value if value.tzinfo else value.replace(tzinfo=UTC)


class Stack:
    """One test's database, simulator and clusters."""

    def __init__(self, kind: str, location: str, folder: str, sim: Simulator):
        self.kind = kind
        self.location = location
        self.folder = Path(folder)
        self.sim = sim
        self.sim_port = sim._server.server_address[1]
        self.recorder = Recorder(sim)
        self.clusters: list[Cluster] = []
        if kind == "sqlite":
            url = f"sqlite:///{location}"
        else:
            url = f"{_postgres_server()}/{location}"
        self.env = _base_env(url, folder)
        self.env.update(
            SINCH_PROJECT_ID="",
            SINCH_KEY_ID="",
            SINCH_KEY_SECRET="",
            SINCH_APP_ID="",
            SINCH_BATCH_API_URL=sim.url,
            SINCH_AUTH_URL=sim.url,
            # A queue of its own: Redis may be shared with other runs.
            Q_CLUSTER_NAME=f"it-{secrets.token_hex(4)}",
            Q_WORKERS="2",
            Q_TIMEOUT="60",
            Q_RETRY="90",
            DISPATCH_CONCURRENCY="2",  # drain loops per start (see _settled)
        )

    # --- acting -------------------------------------------------------------

    def driver(self, *args: str, **env: str) -> dict:
        """Run a tests/integration/driver.py command; its JSON answer."""
        out = _run(
            [PYTHON, "-m", "tests.integration.driver", *args],
            {**self.env, **{k: str(v) for k, v in env.items()}},
        )
        return json.loads(out.strip().splitlines()[-1])

    def start_cluster(self, **env) -> Cluster:
        n = len(self.clusters) + 1
        cluster = Cluster(
            {**self.env, **{k: str(v) for k, v in env.items()}},
            self.folder / f"cluster-{n}.log",
        )
        self.clusters.append(cluster)
        return cluster

    # --- reading the database -------------------------------------------------

    def rows(self, sql: str, *params) -> list[dict]:
        if self.kind == "sqlite":
            conn = sqlite3.connect(self.location, timeout=20)
            try:
                conn.row_factory = sqlite3.Row
                cursor = conn.execute(sql.replace("%s", "?"), params)
                return [dict(row) for row in cursor.fetchall()]
            finally:
                conn.close()
        import psycopg
        from psycopg.rows import dict_row

        with psycopg.connect(
            f"{_postgres_server()}/{self.location}",
            autocommit=True,
            row_factory=dict_row,
        ) as conn:
            return conn.execute(sql, params).fetchall()

    def campaign(self, pk: int) -> dict:
        [row] = self.rows(
            "SELECT status, status_reason, cancel_receipt "
            "FROM campaigns_campaign WHERE id = %s",
            pk,
        )
        return row

    def batches(self, campaign: int) -> list[dict]:
        rows = self.rows(
            "SELECT id, sequence, size, status, sinch_batch_id, remote_status, "
            "send_after, attempts, metadata_key, last_error, not_before "
            "FROM campaigns_batch WHERE campaign_id = %s AND is_test = %s "
            "ORDER BY sequence",
            campaign,
            False,
        )
        for row in rows:
            row["send_after"] = _utc(row["send_after"])
            row["not_before"] = _utc(row["not_before"])
        return rows

    def recipient_statuses(self, campaign: int) -> dict[str, int]:
        rows = self.rows(
            "SELECT status, COUNT(*) AS n FROM campaigns_recipient "
            "WHERE campaign_id = %s GROUP BY status",
            campaign,
        )
        return {row["status"]: row["n"] for row in rows}

    def results(self, func: str) -> list[tuple[bool, object]]:
        """(success, result) of the tasks the cluster ran, oldest first."""
        rows = self.rows(
            "SELECT success, result FROM django_q_task WHERE func = %s "
            "ORDER BY started",
            f"campaigns.tasks.{func}",
        )
        return [
            (bool(r["success"]), dbsafe_decode(r["result"]) if r["result"] else None)
            for r in rows
        ]

    # --- waiting ------------------------------------------------------------

    def wait(self, check: Callable[[], object], what: str, timeout: float = 20.0):
        """Poll `check` until it returns something true; that value."""
        deadline = time.monotonic() + timeout
        while True:
            value = check()
            if value:
                return value
            for cluster in self.clusters:
                if not cluster.killed and cluster.process.poll() is not None:
                    raise AssertionError(
                        f"a cluster exited while waiting for {what}:\n" + self.logs()
                    )
            if time.monotonic() > deadline:
                raise AssertionError(f"timed out waiting for {what}")
            time.sleep(0.1)

    def logs(self) -> str:
        parts = []
        for path in sorted(self.folder.glob("cluster-*.log")):
            text = path.read_text(errors="replace")
            parts.append(f"--- {path.name} (last 4000 chars)\n{text[-4000:]}")
        return "\n".join(parts)

    def close(self) -> None:
        for cluster in self.clusters:
            cluster.kill()


@pytest.fixture
def stack(migrated_database):
    kind, template = migrated_database
    folder = tempfile.mkdtemp(prefix="campaigns-integration-")
    if kind == "sqlite":
        location = os.path.join(folder, "db.sqlite3")
        shutil.copyfile(template, location)
    else:
        location = f"it_{secrets.token_hex(6)}"
        _postgres(f'CREATE DATABASE "{location}" TEMPLATE "{template}"')
    sim = Simulator(account=ACCOUNT, knobs=fast_knobs()).start()
    stack = Stack(kind, location, folder, sim)
    try:
        yield stack
    finally:
        stack.close()
        sys.stdout.write(stack.logs())  # shown when the test failed
        sim.stop()
        shutil.rmtree(folder, ignore_errors=True)
        if kind == "postgres":
            _postgres(f'DROP DATABASE IF EXISTS "{location}" WITH (FORCE)')
