"""Benchmark: the short-link redirect (GET /l/<code>) under gunicorn on PostgreSQL.

    python bench/redirects.py [--codes 100000] [--seconds 20] [--connections 16]
                              [--workers N] [--threads N] [--max-requests N]

A fresh PostgreSQL database gets one tracked-links campaign with --codes
short links (ShortLink rows, as the dispatch writes them). gunicorn starts
with config/gunicorn.conf.py as production runs it (its defaults: 2 workers
x 4 threads, gthread; --workers/--threads/--max-requests only for
experiments), DEBUG off, no access log, and answers /l/ through config.wsgi's
thin door (campaigns.tracking.redirect). wrk (Debian package `wrk`) requests
random codes with a phone browser's User-Agent over --connections
connections for --seconds. Afterwards the bench waits for the workers'
flushes (every 0.5 s), stops gunicorn with SIGTERM (the worker_exit hook
writes what is left) and counts the stored clicks.

Why 16 connections: wrk is closed-loop (each connection sends its next
request when the answer came), so it drives the server to saturation with
any count at or above the server's 8 request threads, and the mean latency
it reports is about connections / throughput whatever the server does. 16
keeps every thread busy with one request waiting behind it (as a proxy's
pool of upstream keep-alive connections does); clicks from phones arrive
open-loop, a few in flight at a time at 2,000/s. 64 connections measured
the queue in front of the threads (64 / 3,000 per s = 21 ms mean) rather
than the redirect, and wrk's 2 threads share the 2 cores with the server.

The last line of stdout is JSON: requests_per_s, p99_ms, clicks_sent (302s
wrk received), clicks_stored (Click rows), lost (sent but not stored), the
load average before and after, and the machine.
"""

import argparse
import json
import os
import platform
import random
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench._common import (
    PYTHON,
    ROOT,
    emit,
    fresh_database,
    insert_rows,
    remove_run,
    say,
    setup_django,
    workdir,
)

DB_NAME = "bench_redirects"
PHONE = (
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X) AppleWebKit/605.1.15 "
    "(KHTML, like Gecko) Version/17.4 Mobile/15E148 Safari/604.1"
)
WRK_SCRIPT = """
local paths = {}
for line in io.lines("%(codes)s") do paths[#paths + 1] = line end
math.randomseed(os.time() + math.floor(os.clock() * 1000000))
local headers = {["User-Agent"] = "%(agent)s"}
request = function()
  return wrk.format("GET", paths[math.random(#paths)], headers)
end
done = function(summary, latency, requests)
  io.write(string.format(
    '{"requests": %%d, "duration_us": %%d, "non_3xx": %%d, "connect_errors": %%d,'
    .. ' "read_errors": %%d, "write_errors": %%d, "timeouts": %%d,'
    .. ' "p50_us": %%d, "p90_us": %%d, "p99_us": %%d, "max_us": %%d}\\n',
    summary.requests, summary.duration, summary.errors.status,
    summary.errors.connect, summary.errors.read, summary.errors.write,
    summary.errors.timeout, latency:percentile(50), latency:percentile(90),
    latency:percentile(99), latency.max))
end
"""


def make_codes(n: int) -> tuple[int, list[str]]:
    """One tracked-links campaign with `n` short links; (campaign id, paths)."""
    from django.db import connection

    from campaigns.models import Campaign, MessageTemplate, TrackedLink
    from campaigns.models.links import encode, new_code

    template = MessageTemplate.objects.create(
        name="Bench sale", text="Sale: https://shop.example.com/sale"
    )
    campaign = Campaign.objects.create(
        name="Bench sale", template=template, track_links=True
    )
    link = TrackedLink.objects.create(
        campaign=campaign,
        parameter="cm_link_1",
        url="https://shop.example.com/sale",
        target="https://shop.example.com/sale?utm_source=sms",
    )
    codes = set()
    while len(codes) < n:
        codes.add(new_code())
    rows = [(code, link.pk, i + 1, False) for i, code in enumerate(codes)]
    with connection.cursor() as cur:
        insert_rows(
            cur,
            connection.vendor,
            "campaigns_shortlink",
            "code, link_id, recipient_id, is_test",
            rows,
        )
    connection.close()
    return campaign.pk, [f"/l/{encode(code)}" for code in codes]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_gunicorn(args, port: int, folder: str, probe: str) -> subprocess.Popen:
    env = {
        **os.environ,
        "DEBUG": "false",
        "ALLOWED_HOSTS": "127.0.0.1,localhost",
        "GUNICORN_BIND": f"127.0.0.1:{port}",
        "GUNICORN_ACCESS_LOG": "",
        "GUNICORN_LOG_LEVEL": "warning",
        "LOG_LEVEL": "WARNING",
    }
    # Production's configuration unless an experiment asks otherwise.
    for name, value in (
        ("WEB_CONCURRENCY", args.workers),
        ("GUNICORN_THREADS", args.threads),
        ("GUNICORN_MAX_REQUESTS", args.max_requests),
    ):
        if value is not None:
            env[name] = str(value)
    command = [PYTHON, "-m", "gunicorn", "-c", "config/gunicorn.conf.py"]
    command += ["--error-logfile", f"{folder}/gunicorn.log"]
    command.append("config.wsgi")
    server = subprocess.Popen(command, cwd=ROOT, env=env)
    deadline = time.monotonic() + 30
    opener = urllib.request.build_opener(NoRedirect)
    while True:
        try:
            opener.open(f"http://127.0.0.1:{port}{probe}", timeout=2)
        except urllib.error.HTTPError as answer:
            if answer.code == 302:
                return server
        except OSError:
            pass
        if server.poll() is not None or time.monotonic() > deadline:
            server.terminate()
            server.wait(10)
            raise SystemExit("gunicorn did not start or answer; see " + folder)
        time.sleep(0.2)


class NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args, **kwargs):
        return None


def gunicorn_settings(args) -> dict:
    """The workers, threads and recycling gunicorn ran with."""
    import runpy

    env = {"WEB_CONCURRENCY": args.workers, "GUNICORN_THREADS": args.threads}
    env["GUNICORN_MAX_REQUESTS"] = args.max_requests
    saved = dict(os.environ)
    os.environ.update({k: str(v) for k, v in env.items() if v is not None})
    try:
        conf = runpy.run_path(str(ROOT / "config" / "gunicorn.conf.py"))
    finally:
        os.environ.clear()
        os.environ.update(saved)
    return {k: conf[k] for k in ("workers", "threads", "max_requests", "keepalive")}


def stored_clicks(campaign_id: int) -> int:
    from campaigns.models import Click

    return Click.objects.filter(campaign_id=campaign_id).count()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--codes", type=int, default=100_000)
    parser.add_argument("--seconds", type=int, default=20)
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--wrk-threads", type=int, default=2)
    parser.add_argument(
        "--workers", type=int, help="gunicorn workers (default: production's)"
    )
    parser.add_argument(
        "--threads", type=int, help="GUNICORN_THREADS (default: production's)"
    )
    parser.add_argument(
        "--max-requests",
        type=int,
        help="gunicorn's worker recycling (default: production's)",
    )
    parser.add_argument("--keep", action="store_true", help="keep the database")
    args = parser.parse_args()
    wrk = shutil.which("wrk")
    if wrk is None:
        raise SystemExit("wrk is missing: apt-get install -y wrk (Debian)")

    folder = workdir("bench-redirects-")
    url = fresh_database("postgres", DB_NAME, folder)
    setup_django(url, folder, debug=False)
    say(f"database {DB_NAME}: {args.codes:,} short links")
    campaign_id, paths = make_codes(args.codes)
    random.shuffle(paths)
    codes_file = Path(folder) / "codes.txt"
    codes_file.write_text("\n".join(paths) + "\n")
    script = Path(folder) / "redirects.lua"
    script.write_text(WRK_SCRIPT % {"codes": codes_file, "agent": PHONE})

    port = free_port()
    server = start_gunicorn(args, port, folder, paths[0])
    say(f"gunicorn on {port}")
    load_before = os.getloadavg()
    try:
        run = subprocess.run(
            [
                wrk,
                "-t",
                str(args.wrk_threads),
                "-c",
                str(args.connections),
                "-d",
                f"{args.seconds}s",
                "--timeout",
                "5s",
                "-s",
                str(script),
                f"http://127.0.0.1:{port}",
            ],
            capture_output=True,
            text=True,
            check=True,
        )
        load_after = os.getloadavg()
        say(run.stdout.strip())
        figures = json.loads(run.stdout.strip().splitlines()[-1])
        time.sleep(2)  # a few flush rounds
        flushed = stored_clicks(campaign_id)
    finally:
        server.send_signal(signal.SIGTERM)  # graceful: worker_exit writes the rest
        server.wait(60)
    sent = figures["requests"] - figures["non_3xx"]
    stored = stored_clicks(campaign_id)
    result = {
        "requests_per_s": round(figures["requests"] / (figures["duration_us"] / 1e6)),
        "p50_ms": round(figures["p50_us"] / 1000, 2),
        "p90_ms": round(figures["p90_us"] / 1000, 2),
        "p99_ms": round(figures["p99_us"] / 1000, 2),
        "max_ms": round(figures["max_us"] / 1000, 2),
        "requests": figures["requests"],
        "errors": {
            k: figures[k]
            for k in ("non_3xx", "connect_errors", "read_errors", "timeouts")
        },
        # the probe at start made one click too
        "clicks_sent": sent + 1,
        "clicks_stored": stored,
        "stored_before_shutdown": flushed,
        "lost": max(0, sent + 1 - stored),
        "codes": args.codes,
        "seconds": args.seconds,
        "connections": args.connections,
        "gunicorn": gunicorn_settings(args),
        "database": "postgres",
        "loadavg_before": [round(x, 2) for x in load_before],
        "loadavg_after": [round(x, 2) for x in load_after],
        "cpus": os.cpu_count(),
        "machine": f"{os.cpu_count()} cores, {platform.machine()}, "
        f"Python {platform.python_version()}",
    }
    if not args.keep:
        remove_run(folder, "postgres", DB_NAME)
    emit(result)


if __name__ == "__main__":
    main()
