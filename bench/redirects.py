"""Benchmark: the short-link redirect (GET /l/<code>) under gunicorn on PostgreSQL.

    python bench/redirects.py [--rate 2000] [--codes 100000] [--seconds 20]
                              [--connections N] [--connection-per-request]
                              [--workers N] [--threads N] [--max-requests N]

A fresh PostgreSQL database gets one tracked-links campaign with --codes
short links (ShortLink rows, as the dispatch writes them; vacuumed and
analysed before the clock starts, as autovacuum would after the load).
gunicorn starts with config/gunicorn.conf.py as production runs it (its
defaults: 2 workers x 4 threads, gthread; --workers/--threads/--max-requests
only for experiments), DEBUG off, no access log, and answers /l/ through
config.wsgi's thin door (campaigns.tracking.redirect). wrk (Debian package
`wrk`) requests random codes with a phone browser's User-Agent for
--seconds. Afterwards the bench waits for the workers' flushes (every
0.5 s), stops gunicorn with SIGTERM (the worker_exit hook writes what is
left) and counts the stored clicks.

**Open loop (the default, --rate 2000)**: clicks come from phones that do not
wait for each other, so the bench offers a fixed rate, as wrk2 does: 32
connections (one per wrk thread), each sending on its own schedule of
rate / 32 per second with a random phase, and each request's latency counts
from when it was due, not when it went out (a request held up behind a slow
answer counts its wait: no coordinated omission). requests_per_s is what
was answered over the run; a server that cannot keep up answers fewer than
offered and its latencies grow with the backlog. (The schedule runs a few
per cent ahead of --rate against gunicorn: wrk's timers take whole
milliseconds.)

**Closed loop (--rate 0)**: 16 connections over 2 wrk threads, each sending
its next request when the answer came: the most the server answers, with
latency then about connections / throughput, whatever the server does.

The last line of stdout is JSON: requests_per_s, p50/p90/p99/max_ms,
clicks_sent (302s wrk received, plus the start-up probe), clicks_stored
(Click rows; a few more than sent when wrk stopped with answers in flight),
lost (sent but not stored), the gunicorn settings, the load average before
and after, and the machine.
"""

import argparse
import json
import os
import platform
import random
import re
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
local headers = {["User-Agent"] = "%(agent)s"%(close)s}
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

# Open loop (--rate): one connection per wrk thread, each sending on its own
# schedule (rate / connections per second, phases spread at random). Latency
# is measured from when a request was due, not when it went out: a request
# sent late because the answer before it was slow counts its wait
# (coordinated omission corrected, as wrk2 does). Clock: CLOCK_MONOTONIC
# through LuaJIT's ffi; 0.1 ms buckets, each reported by its upper bound.
OPEN_LOOP_SCRIPT = """
local ffi = require("ffi")
ffi.cdef[[
typedef struct { long tv_sec; long tv_nsec; } bench_timespec;
int clock_gettime(int clock, bench_timespec *ts);
]]
local ts = ffi.new("bench_timespec")
local function now_us()
  ffi.C.clock_gettime(1, ts)
  return tonumber(ts.tv_sec) * 1000000 + tonumber(ts.tv_nsec) / 1000
end
local paths = {}
for line in io.lines("%(codes)s") do paths[#paths + 1] = line end
local headers = {["User-Agent"] = "%(agent)s"%(close)s}
local interval = %(interval_us)f
local threads = {}
function setup(thread) table.insert(threads, thread) end
function init(args)
  math.randomseed(os.time() + math.floor(os.clock() * 1000000) + now_us() %% 1000003)
  base, k, due, hist, answered, bad, worst = nil, 0, 0, {}, 0, 0, {}
end
function delay()
  if base == nil then return 0 end
  local wait = (base + k * interval - now_us()) / 1000
  if wait < 0 then return 0 end
  return wait
end
function request()
  local now = now_us()
  if base == nil then
    base = now + math.random() * interval - interval
    k = 1
    due = now
  else
    due = math.min(base + k * interval, now)
    k = k + 1
  end
  return wrk.format("GET", paths[math.random(#paths)], headers)
end
function response(status, headers, body)
  local took = now_us() - due
  local bucket = math.floor(took / 100)
  hist[bucket] = (hist[bucket] or 0) + 1
  local second = math.floor((due - base) / 1000000) + 1
  if second >= 1 and took > (worst[second] or 0) then worst[second] = took end
  answered = answered + 1
  if status ~= 302 then bad = bad + 1 end
end
function done(summary, latency, requests)
  local all, keys, total, non3xx, due_by_now = {}, {}, 0, 0, 0
  local worst_of, seconds = {}, 0
  for _, thread in ipairs(threads) do
    for second, took in pairs(thread:get("worst")) do
      if took > (worst_of[second] or 0) then worst_of[second] = took end
      if second > seconds then seconds = second end
    end
    for bucket, n in pairs(thread:get("hist")) do
      if all[bucket] == nil then keys[#keys + 1] = bucket; all[bucket] = 0 end
      all[bucket] = all[bucket] + n
      total = total + n
    end
    non3xx = non3xx + thread:get("bad")
    due_by_now = due_by_now + thread:get("k")
  end
  table.sort(keys)
  local function pct(p)
    local want, seen = math.ceil(total * p / 100), 0
    for _, bucket in ipairs(keys) do
      seen = seen + all[bucket]
      if seen >= want then return (bucket + 1) * 100 end
    end
    return 0
  end
  local by_second = {}
  for second = 1, seconds do
    by_second[second] = string.format("%%d", math.floor((worst_of[second] or 0) / 1000))
  end
  io.write(string.format(
    '{"requests": %%d, "duration_us": %%d, "non_3xx": %%d, "connect_errors": %%d,'
    .. ' "read_errors": %%d, "write_errors": %%d, "timeouts": %%d,'
    .. ' "p50_us": %%d, "p90_us": %%d, "p99_us": %%d, "max_us": %%d,'
    .. ' "scheduled": %%d, "max_ms_by_second": [%%s]}\\n',
    total, summary.duration, non3xx,
    summary.errors.connect, summary.errors.read, summary.errors.write,
    summary.errors.timeout, pct(50), pct(90), pct(99), pct(100), due_by_now,
    table.concat(by_second, ", ")))
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
    # What autovacuum does shortly after a bulk load, done before the clock
    # starts rather than during the run (it took the first seconds' CPU).
    connection.close()
    with connection.cursor() as cur:
        cur.execute("VACUUM ANALYZE campaigns_shortlink")
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
        ("GUNICORN_REUSE_PORT", "0" if args.shared_socket else None),
    ):
        if value is not None:
            env[name] = str(value)
    command = [PYTHON, "-m", "gunicorn", "-c", "config/gunicorn.conf.py"]
    command += ["--error-logfile", f"{folder}/gunicorn.log"]
    command.append("config.wsgi")
    server = subprocess.Popen(command, cwd=ROOT, env=env)
    settings = gunicorn_settings(args)
    ready_when = settings["workers"] if settings["reuse_port"] else 1
    deadline = time.monotonic() + 30
    opener = urllib.request.build_opener(NoRedirect)
    while True:
        try:
            opener.open(f"http://127.0.0.1:{port}{probe}", timeout=2)
        except urllib.error.HTTPError as answer:
            # Every worker up: with a socket each, one still loading Django
            # would not get its share of the connections wrk opens at once.
            if answer.code == 302 and listening_sockets(port) >= ready_when:
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
    env["GUNICORN_REUSE_PORT"] = "0" if args.shared_socket else None
    saved = dict(os.environ)
    os.environ.update({k: str(v) for k, v in env.items() if v is not None})
    try:
        conf = runpy.run_path(str(ROOT / "config" / "gunicorn.conf.py"))
    finally:
        os.environ.clear()
        os.environ.update(saved)
    keys = ("workers", "threads", "max_requests", "keepalive", "reuse_port")
    return {k: conf[k] for k in keys}


def kernel_setting(name: str) -> str | None:
    path = Path("/proc/sys") / name
    return path.read_text().strip() if path.exists() else None


def listening_sockets(port: int) -> int:
    listing = subprocess.run(
        ["ss", "-Hltn", f"( sport = :{port} )"], capture_output=True, text=True
    ).stdout
    return len(listing.splitlines())


def connections_per_worker(port: int) -> list[int]:
    """How many established connections each gunicorn process holds on
    `port` (from `ss`), largest first: whether the load is spread."""
    listing = subprocess.run(
        ["ss", "-Htnp", "state", "established", f"( sport = :{port} )"],
        capture_output=True,
        text=True,
    ).stdout
    per_pid: dict[str, int] = {}
    for pid in re.findall(r"pid=(\d+)", listing):
        per_pid[pid] = per_pid.get(pid, 0) + 1
    return sorted(per_pid.values(), reverse=True)


def stored_clicks(campaign_id: int) -> int:
    from campaigns.models import Click

    return Click.objects.filter(campaign_id=campaign_id).count()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--codes", type=int, default=100_000)
    parser.add_argument("--seconds", type=int, default=20)
    parser.add_argument(
        "--rate",
        type=int,
        default=2000,
        help="requests/s offered, open loop (0: closed loop, as fast as answered)",
    )
    parser.add_argument(
        "--connections", type=int, help="default: 32 open loop, 16 closed loop"
    )
    parser.add_argument("--wrk-threads", type=int, default=2, help="closed loop only")
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
    parser.add_argument(
        "--shared-socket",
        action="store_true",
        help="all workers accept from one socket (GUNICORN_REUSE_PORT=0), "
        "as before each worker had its own",
    )
    parser.add_argument("--keep", action="store_true", help="keep the database")
    parser.add_argument(
        "--connection-per-request",
        action="store_true",
        help="a new connection per request (default: connections kept alive)",
    )
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
    # --connection-per-request: "Connection: close", as nginx talks to an
    # upstream without `keepalive` (HTTP/1.0; deploy/nginx.conf.example keeps
    # them alive).
    close = ', ["Connection"] = "close"' if args.connection_per_request else ""
    if args.connections is None:
        args.connections = 32 if args.rate else 16
    if args.rate:
        threads = args.connections  # one connection per thread: own schedule
        interval_us = args.connections * 1e6 / args.rate
        text = OPEN_LOOP_SCRIPT % {
            "codes": codes_file,
            "agent": PHONE,
            "close": close,
            "interval_us": interval_us,
        }
    else:
        threads = args.wrk_threads
        text = WRK_SCRIPT % {"codes": codes_file, "agent": PHONE, "close": close}
    script.write_text(text)

    port = free_port()
    server = start_gunicorn(args, port, folder, paths[0])
    say(f"gunicorn on {port}")
    load_before = os.getloadavg()
    try:
        load = subprocess.Popen(
            [
                wrk,
                "-t",
                str(threads),
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
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        # Mid-run: wrk's threads each load the codes file and connect over the
        # first second or two.
        time.sleep(args.seconds / 2)
        spread = connections_per_worker(port)
        out, err = load.communicate()
        if load.returncode:
            raise SystemExit(f"wrk failed ({load.returncode}): {err}")
        run = subprocess.CompletedProcess(load.args, 0, out, err)
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
        # open loop: the slowest answer to a request due in each second
        "max_ms_by_second": figures.get("max_ms_by_second"),
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
        "rate_offered_per_s": args.rate or None,
        "loop": "open" if args.rate else "closed",
        "connections": args.connections,
        "connection_per_request": args.connection_per_request,
        "tcp_migrate_req": kernel_setting("net/ipv4/tcp_migrate_req"),
        # sampled once, mid-run (kept-alive connections stay put)
        "connections_per_worker": spread,
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
