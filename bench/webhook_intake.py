"""Benchmark: webhook intake (verify + store) over HTTP, gunicorn on PostgreSQL.

    python bench/webhook_intake.py [--seconds 60] [--workers 2] [--threads 4]
                                   [--client-procs 2] [--clients-per-proc 8] [--rate 0]

A fresh PostgreSQL database gets two submitted campaigns whose recipients
(Recipient rows, batches with Sinch ids, kept counters) the receipts refer to,
as the dispatch leaves them. The app runs under gunicorn with DEBUG off;
separate client processes (keep-alive connections, several threads each)
post DELIVERED receipts signed as Sinch signs them, each with a fresh nonce
and timestamp:

1. intake: one receipt per recipient of campaign A, for --seconds;
2. duplicates: campaign B's receipts, each sent three times (fresh nonces,
   the copies a few hundred requests apart), for --seconds.

No django-q cluster runs meanwhile, so the processor never competes for the
CPU during the measurement (the webhook still queues its wake-up task, at
most once a second per gunicorn worker, into the broker). Afterwards the
processor (campaigns.tracking.receipts) applies every stored event in this process,
and the counters are checked: each distinct receipt moved its recipient once.

"lost" counts the callbacks answered 200 whose nonce has no row;
"duplicates_counted" is how many recipients the copies moved beyond the
distinct receipts (both must be 0). --rate N paces the clients to N
requests/s in total (latency then counts from the scheduled send time);
0 sends as fast as the server answers.
"""

import argparse
import http.client
import json
import multiprocessing
import os
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench._common import (
    PYTHON,
    ROOT,
    emit,
    fresh_database,
    remove_run,
    say,
    setup_django,
    workdir,
)

DB_NAME = "bench_webhook_intake"
SECRET = "bench-webhook-secret"
PATH = "/webhooks/sinch"
BATCH_SIZE = 1000


# --- the database the receipts refer to ---------------------------------------


def make_campaign(name: str, n: int) -> tuple[int, list[bytes]]:
    """A submitted campaign of `n` recipients; its DELIVERED receipts."""
    from django.db import connection
    from django.utils import timezone

    from campaigns import counters
    from campaigns.dispatch.batch_request import CAMPAIGN_KEY, RECIPIENT_KEY
    from campaigns.models import Batch, Campaign, MessageTemplate, Recipient
    from sinch.config import (
        SIMULATOR_APP_ID,
        SIMULATOR_KEY_ID,
        SIMULATOR_KEY_SECRET,
        SIMULATOR_PROJECT_ID,
    )
    from sinch.simulator import events
    from sinch.simulator.knobs import Account
    from sinch.simulator.state import Message

    template = MessageTemplate.objects.create(name=name, text="Hi ${first_name}")
    now = timezone.now()
    campaign = Campaign.objects.create(
        name=name,
        template=template,
        status=Campaign.Status.SUBMITTED,
        launched_at=now,
        frozen_at=now,
    )
    batches = Batch.objects.bulk_create(
        Batch(
            campaign=campaign,
            sequence=s + 1,
            size=min(BATCH_SIZE, n - s * BATCH_SIZE),
            metadata_key=f"{name}-{s + 1}",
            status=Batch.Status.ACCEPTED,
            sinch_batch_id=f"01BENCH{name}{s + 1:019d}"[:26],
            submitted_at=now,
        )
        for s in range((n + BATCH_SIZE - 1) // BATCH_SIZE)
    )
    table = Recipient._meta.db_table
    with connection.cursor() as cursor:
        cursor.execute(
            f"INSERT INTO {table} (campaign_id, batch_id, index, is_test, identity, "
            "parameters, status, reason, failure_code, switched_channel, "
            "message_id, created_at, updated_at, fallback_identities, "
            "delivered_channel) "
            "SELECT %s, b.id, g %% %s, false, '+1555' || lpad(g::text, 7, '0'), "
            "'{}'::jsonb, %s, '', '', false, '', now(), now(), '[]'::jsonb, '' "
            "FROM generate_series(0, %s - 1) g "
            "JOIN campaigns_batch b ON b.campaign_id = %s AND b.sequence = g / %s + 1",
            [campaign.pk, BATCH_SIZE, "SUBMITTED", n, campaign.pk, BATCH_SIZE],
        )
    counters.recount(campaign.pk)
    sinch_ids = {b.pk: b.sinch_batch_id for b in batches}
    account = Account(
        SIMULATOR_PROJECT_ID,
        SIMULATOR_APP_ID,
        SIMULATOR_KEY_ID,
        SIMULATOR_KEY_SECRET,
        SECRET,
    )
    bodies = []
    rows = Recipient.objects.filter(campaign=campaign).order_by("batch_id", "index")
    for pk, batch_id, index, identity in rows.values_list(
        "pk", "batch_id", "index", "identity"
    ):
        metadata = {
            CAMPAIGN_KEY: str(campaign.pk),
            RECIPIENT_KEY: str(pk),
            "_batch_id": sinch_ids[batch_id],
        }
        message = Message(
            batch_id=sinch_ids[batch_id],
            index=index,
            message_id=f"01BENCHMSG{pk:016d}",
            metadata=json.dumps(metadata, separators=(",", ":")),
            contact_id="",
        )
        payload = events.delivery_report(
            account,
            message,
            status="DELIVERED",
            channel="SMS",
            identity=identity,
            reason="",
            mode="DISPATCH",
            correlation_id="",
            now=time.time(),
        )
        bodies.append(events.dumps(payload))
    return campaign.pk, bodies


# --- the clients (separate processes) -----------------------------------------


def client_process(job: dict) -> dict:
    """Post `job["work"]` (body indexes) from several threads; each thread has
    its own keep-alive connection. Returns statuses, latencies and the nonces
    answered 200."""
    from sinch.signatures import sign

    bodies = job["bodies"]
    work = job["work"]
    deadline = job["deadline"]
    threads = job["threads"]
    rate = job["rate"]  # per thread; 0: as fast as answered
    lock = threading.Lock()
    cursor = iter(range(len(work)))
    results: list[list] = [[] for _ in range(threads)]

    def run(t: int) -> None:
        out = results[t]
        conn = http.client.HTTPConnection(job["host"], job["port"], timeout=30)
        time.sleep(max(0.0, job["start_at"] - time.time()))
        started = time.time()
        k = 0
        while True:
            with lock:
                i = next(cursor, None)
            if i is None:
                break
            scheduled = None
            if rate:
                scheduled = started + k / rate
                k += 1
                pause = scheduled - time.time()
                if pause > 0:
                    time.sleep(pause)
            now = time.time()
            if now >= deadline:
                break
            body = bodies[work[i]]
            headers = sign(body, SECRET)
            headers["Content-Type"] = "application/json"
            # As forwarded by the TLS proxy in front (BEHIND_TLS_PROXY).
            headers["X-Forwarded-Proto"] = "https"
            sent = scheduled or now
            try:
                conn.request("POST", PATH, body, headers)
                response = conn.getresponse()
                response.read()
                status = response.status
            except (OSError, http.client.HTTPException):
                conn.close()
                status = 0
            done = time.time()
            nonce = headers["x-sinch-webhook-signature-nonce"]
            nonce = nonce if status == 200 else ""
            out.append((status, done - sent, work[i], nonce, sent, done))
        conn.close()

    cpu = time.process_time()
    pool = [threading.Thread(target=run, args=(t,)) for t in range(threads)]
    for thread in pool:
        thread.start()
    for thread in pool:
        thread.join()
    return {
        "results": [r for rs in results for r in rs],
        "cpu_s": time.process_time() - cpu,
    }


def post_phase(
    label: str, bodies: list[bytes], work: list[int], args, port: int
) -> dict:
    """Run one phase: `work` split over the client processes; figures back."""
    procs = args.client_procs
    per_proc = [work[p::procs] for p in range(procs)]
    rate_per_thread = args.rate / (procs * args.clients_per_proc) if args.rate else 0
    ctx = multiprocessing.get_context("spawn")
    load_before = os.getloadavg()
    # The clients start together once every process is up (spawning them
    # and handing over the bodies takes a moment that must not count).
    start_at = time.time() + 3
    deadline = start_at + args.seconds
    jobs = [
        {
            "host": "127.0.0.1",
            "port": port,
            "bodies": bodies,
            "work": w,
            "start_at": start_at,
            "deadline": deadline,
            "threads": args.clients_per_proc,
            "rate": rate_per_thread,
        }
        for w in per_proc
    ]
    say(
        f"{label}: {procs} client processes x {args.clients_per_proc} connections, "
        f"{len(work)} requests at most, {args.seconds:.0f} s"
    )
    with ctx.Pool(procs) as pool:
        pending = pool.map_async(client_process, jobs)
        time.sleep(max(0.0, start_at - time.time()))
        server_cpu_before = server_cpu(args.gunicorn_pid)
        database_cpu_before = database_cpu()
        outputs = pending.get()
    results = [r for out in outputs for r in out["results"]]
    wall = max(r[5] for r in results) - min(r[4] for r in results)
    ok = [r for r in results if r[0] == 200]
    latencies = sorted(r[1] for r in results)
    statuses: dict[str, int] = {}
    for r in results:
        statuses[str(r[0])] = statuses.get(str(r[0]), 0) + 1
    figures = {
        "sent": len(results),
        "ok": len(ok),
        "statuses": statuses,
        "wall_s": round(wall, 2),
        "requests_per_s": round(len(results) / wall, 1),
        "ok_per_s": round(len(ok) / wall, 1),
        "p50_ms": round(percentile(latencies, 50) * 1000, 2),
        "p99_ms": round(percentile(latencies, 99) * 1000, 2),
        "max_ms": round(latencies[-1] * 1000, 2) if latencies else None,
        "server_cpu_s": round(server_cpu(args.gunicorn_pid) - server_cpu_before, 1),
        "database_cpu_s": round(database_cpu() - database_cpu_before, 1),
        "client_cpu_s": round(sum(out["cpu_s"] for out in outputs), 1),
        "server_cpu_ms_per_request": round(
            (server_cpu(args.gunicorn_pid) - server_cpu_before) * 1000 / len(results), 2
        ),
        "loadavg_before": [round(x, 2) for x in load_before],
        "loadavg_after": [round(x, 2) for x in os.getloadavg()],
    }
    say(f"{label}: {json.dumps(figures)}")
    figures["ok_nonces"] = [r[3] for r in ok]
    figures["ok_receipts"] = {r[2] for r in ok}
    return figures


def percentile(sorted_values: list[float], p: float) -> float:
    if not sorted_values:
        return float("nan")
    k = min(len(sorted_values) - 1, max(0, round(p / 100 * len(sorted_values)) - 1))
    return sorted_values[k]


def server_cpu(pid: int) -> float:
    import psutil

    try:
        root = psutil.Process(pid)
        total = 0.0
        for proc in [root, *root.children(recursive=True)]:
            t = proc.cpu_times()
            total += t.user + t.system
        return total
    except psutil.Error:
        return 0.0


def database_cpu() -> float:
    """CPU of the PostgreSQL backends serving the bench database (same host)."""
    import psutil

    total = 0.0
    for proc in psutil.process_iter(["name", "cmdline"]):
        try:
            line = " ".join(proc.info["cmdline"] or [])
            if line.startswith("postgres:") and f" {DB_NAME} " in line:
                t = proc.cpu_times()
                total += t.user + t.system
        except psutil.Error:
            continue
    return total


def lost(nonces: list[str]) -> int:
    """Callbacks answered 200 that have no stored row."""
    from campaigns.models import WebhookEvent

    stored = set(WebhookEvent.objects.values_list("nonce", flat=True).iterator())
    return sum(1 for n in nonces if n not in stored)


# --- gunicorn -------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_gunicorn(args, port: int, folder: str) -> subprocess.Popen:
    env = {
        **os.environ,
        "DEBUG": "false",
        "ALLOWED_HOSTS": "127.0.0.1,localhost",
        "BEHIND_TLS_PROXY": "true",
        "SINCH_WEBHOOK_SECRET": SECRET,
        "DB_CONN_MAX_AGE": str(args.conn_max_age),
        "LOG_LEVEL": "WARNING",
        "SINCH_PROJECT_ID": "",
        "SINCH_KEY_ID": "",
        "SINCH_KEY_SECRET": "",
        "SINCH_APP_ID": "",
    }
    command = [
        PYTHON,
        "-m",
        "gunicorn",
        "config.wsgi",
        "--bind",
        f"127.0.0.1:{port}",
        "--workers",
        str(args.workers),
        "--backlog",
        "2048",
        "--error-logfile",
        os.path.join(folder, "gunicorn.log"),
        "--log-level",
        "warning",
    ]
    if args.threads > 1:
        command += ["--worker-class", "gthread", "--threads", str(args.threads)]
        command += ["--keep-alive", "30"]
    server = subprocess.Popen(command, cwd=ROOT, env=env)
    deadline = time.monotonic() + 30
    while True:
        try:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
            conn.request("GET", PATH, headers={"X-Forwarded-Proto": "https"})
            status = conn.getresponse().status
            conn.close()
            if status == 405:
                return server
        except OSError:
            pass
        if server.poll() is not None or time.monotonic() > deadline:
            server.terminate()  # never leave a server running behind us
            server.wait(10)
            raise SystemExit("gunicorn did not start or answer; see " + folder)
        time.sleep(0.2)


# --- the processor after the intake -------------------------------------------


def process_all() -> dict:
    """Apply every stored event (campaigns.tracking.receipts), timed, here."""
    import importlib.util

    if importlib.util.find_spec("campaigns.tracking.receipts") is None:
        return {"processor": "pending: campaigns.tracking.receipts does not exist yet"}
    from campaigns.tracking import receipts

    started = time.time()
    outcome = receipts.process_pending()
    wall = time.time() - started
    return {
        "processor": "campaigns.tracking.receipts.process_pending",
        "processed": dict(outcome),
        "processing_wall_s": round(wall, 2),
        "processing_per_s": round(sum(outcome.values()) / wall, 1) if wall else None,
    }


def counted(campaign_id: int, distinct: int) -> dict:
    from campaigns import counters

    kept = counters.counts(campaign_id)
    actual = counters.actual(campaign_id)
    return {
        "delivered_counted": kept.get("DELIVERED", 0),
        "distinct_receipts": distinct,
        "counters_match_rows": kept == actual,
    }


# --- main -------------------------------------------------------------------------


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--workers", type=int, default=2, help="gunicorn workers")
    parser.add_argument(
        "--threads", type=int, default=4, help="threads per worker (gthread if > 1)"
    )
    parser.add_argument("--client-procs", type=int, default=2)
    parser.add_argument("--clients-per-proc", type=int, default=8)
    parser.add_argument("--rate", type=float, default=0.0)
    parser.add_argument(
        "--pool",
        type=int,
        default=0,
        help="recipients per campaign (default: enough for 2,000 requests/s)",
    )
    parser.add_argument("--conn-max-age", type=int, default=600)
    parser.add_argument("--keep", action="store_true", help="keep the database")
    args = parser.parse_args()
    pool = args.pool or int(2000 * args.seconds)

    folder = workdir("bench-webhook-")
    url = fresh_database("postgres", DB_NAME, folder)
    setup_django(url, os.path.join(folder, "media"), debug=False)
    from django.conf import settings
    from django.db import connection

    say(f"preparing two campaigns of {pool} recipients each")
    campaign_a, bodies_a = make_campaign("A", pool)
    campaign_b, bodies_b = make_campaign("B", (pool + 2) // 3)
    connection.close()

    port = free_port()
    server = start_gunicorn(args, port, folder)
    args.gunicorn_pid = server.pid
    say(
        f"gunicorn on 127.0.0.1:{port}: {args.workers} workers"
        + (f" x {args.threads} threads (gthread)" if args.threads > 1 else " (sync)")
    )
    try:
        once = post_phase("intake", bodies_a, list(range(len(bodies_a))), args, port)
        thrice_work = []
        for start in range(0, len(bodies_b), 300):
            block = list(range(start, min(start + 300, len(bodies_b))))
            thrice_work += block * 3
        thrice = post_phase("three copies", bodies_b, thrice_work, args, port)
    finally:
        server.terminate()
        server.wait(30)

    lost_once = lost(once.pop("ok_nonces"))
    lost_thrice = lost(thrice.pop("ok_nonces"))
    distinct_a = len(once.pop("ok_receipts"))
    distinct_b = len(thrice.pop("ok_receipts"))
    from campaigns.models import WebhookEvent

    stored = WebhookEvent.objects.count()
    from django_q.models import OrmQ

    wakes = OrmQ.objects.count() if not settings.REDIS_URL else None
    say(f"stored {stored} events; lost {lost_once} + {lost_thrice}; processing")
    processing = process_all()
    say(json.dumps(processing))
    if processing["processor"].startswith("pending"):
        duplicates_counted = None
        checks = {}
    else:
        checks = {
            "campaign_once": counted(campaign_a, distinct_a),
            "campaign_thrice": counted(campaign_b, distinct_b),
        }
        duplicates_counted = sum(
            c["delivered_counted"] - c["distinct_receipts"] for c in checks.values()
        )
    result = {
        "receipts_per_s": once["ok_per_s"],
        "p99_ms": once["p99_ms"],
        "lost": lost_once + lost_thrice,
        "duplicates_counted": duplicates_counted,
        "p50_ms": once["p50_ms"],
        "max_ms": once["max_ms"],
        "wall_s": once["wall_s"],
        "sent": once["sent"],
        "ok": once["ok"],
        "statuses": once["statuses"],
        "stored": stored,
        "processor_wakes_queued": wakes,
        "server_cpu_s": once["server_cpu_s"],
        "database_cpu_s": once["database_cpu_s"],
        "server_cpu_ms_per_request": once["server_cpu_ms_per_request"],
        "client_cpu_s": once["client_cpu_s"],
        "loadavg_before": once["loadavg_before"],
        "loadavg_after": once["loadavg_after"],
        "thrice": {
            k: thrice[k]
            for k in (
                "ok_per_s",
                "p50_ms",
                "p99_ms",
                "sent",
                "ok",
                "statuses",
                "wall_s",
                "loadavg_after",
            )
        },
        "thrice_distinct_receipts": distinct_b,
        **processing,
        "checks": checks,
        "gunicorn_workers": args.workers,
        "gunicorn_threads": args.threads,
        "client_connections": args.client_procs * args.clients_per_proc,
        "client_processes": args.client_procs,
        "rate_target": args.rate or "max",
        "database": "postgres",
        "broker": "redis" if settings.REDIS_URL else "orm",
        "cpus": os.cpu_count(),
    }
    if not args.keep:
        remove_run(folder, "postgres", DB_NAME)
    emit(result)


if __name__ == "__main__":
    main()
