"""Simulator throughput: 1000 batches x 1000 recipients through the real client.

    python bench/simulator_throughput.py [--batches 1000] [--recipients 1000]
        [--processes 2] [--threads 2] [--callback-window 10] [--callback-workers 4]

Starts `manage.py sinch_simulator` on a free port (as its own process, the
way `make run` does) with a webhook receiver in a second process that counts
the signed callbacks (and verifies one in a hundred), then submits the
batches through `SinchClient` from --processes processes (as several
django-q2 workers would) of --threads threads each. The simulator drains
messages and sends callbacks without Sinch's rate limits, so the figures
show what the simulator can do, not what Sinch allows.

Figures: submit_s (first request to last acceptance; target <= 20 s for
1000 x 1000), callbacks_per_s (callbacks received per second during the
--callback-window seconds after the last acceptance). While API calls are
being answered the simulator holds callbacks back (API first), so few
arrive during the submission (callbacks_during_submit).
"""

import argparse
import gc
import multiprocessing
import os
import platform
import socket
import subprocess
import sys
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(ROOT))
from _common import emit, say  # noqa: E402

SECRET = "bench-webhook-secret"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def receive(port: int, count, bad) -> None:
    """The webhook: answer 200 to everything, count, verify a sample."""
    from sinch import signatures

    lock = threading.Lock()

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_POST(self):
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            with lock:
                count.value += 1
                n = count.value
            if n % 100 == 1:
                verdict = signatures.verify(dict(self.headers.items()), body, [SECRET])
                if not verdict.ok:
                    bad.value += 1
            self.send_response(200)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args):
            pass

    class Server(ThreadingHTTPServer):
        daemon_threads = True

        def handle_error(self, request, client_address):
            pass  # the simulator hanging up at the end is expected

    server = Server(("127.0.0.1", port), Handler)
    server.serve_forever()


def start_simulator(port: int, webhook: str, args) -> subprocess.Popen:
    env = {**os.environ, "DEBUG": "true", "DJANGO_SETTINGS_MODULE": "config.settings"}
    for name in ("PROJECT_ID", "KEY_ID", "KEY_SECRET", "APP_ID"):
        env[f"SINCH_{name}"] = ""  # the bench always talks to the simulator
    command = [
        sys.executable,
        str(ROOT / "manage.py"),
        "sinch_simulator",
        f"--port={port}",
        f"--webhook-url={webhook}",
        f"--webhook-secret={SECRET}",
        f"--drain-rate={args.drain_rate}",
        f"--callback-rate={args.callback_rate}",
        "--latency-s=0.05",
        "--processing-delay-s=0",
        f"--callback-workers={args.callback_workers}",
        "--seed=1",
    ]

    child = subprocess.Popen(command, cwd=ROOT, env=env, stdout=subprocess.DEVNULL)
    import requests

    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            requests.get(f"http://127.0.0.1:{port}/_simulator/knobs", timeout=1)
            return child
        except requests.ConnectionError:
            time.sleep(0.1)
    child.kill()
    raise SystemExit("the simulator did not start")


def cpu_seconds(pid: str) -> float:
    """User + system CPU of a process so far (Linux /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def build_request(seq: int, recipients: int, run: str):
    from sinch.payloads import AppMessage, ChannelIdentity, Recipient, SendBatchRequest

    base = seq * recipients
    return SendBatchRequest(
        message=AppMessage.text("Hi ${first_name}, your code is ${code}. Reply STOP"),
        recipients=[
            Recipient(
                identities=(ChannelIdentity("SMS", f"+1555{base + n:07d}"),),
                parameters={"first_name": f"Person{base + n}", "code": str(n)},
                message_metadata={"recipient": str(base + n)},
            )
            for n in range(recipients)
        ],
        batch_metadata={"bench_run": run, "batch_seq": str(seq)},
        message_metadata={"bench_run": run},
    )


def make_client(url: str, threads: int):
    from sinch.client import SinchClient
    from sinch.config import (
        SIMULATOR_APP_ID,
        SIMULATOR_KEY_ID,
        SIMULATOR_KEY_SECRET,
        SIMULATOR_PROJECT_ID,
    )
    from sinch.transport import Transport

    return SinchClient(
        project_id=SIMULATOR_PROJECT_ID,
        app_id=SIMULATOR_APP_ID,
        key_id=SIMULATOR_KEY_ID,
        key_secret=SIMULATOR_KEY_SECRET,
        batch_api_url=url,
        auth_url=url,
        transport=Transport(pool_size=threads),
    )


def submit_share(share: int, args, url: str, run: str, accepted, failed, go) -> None:
    """One submitting process (like one worker): every --processes-th batch,
    sent from --threads threads through its own client."""
    client = make_client(url, args.threads)
    # As a long-running worker would after start-up: the objects of the
    # imports are never garbage, so keep them out of every collection.
    gc.collect()
    gc.freeze()
    go.wait()

    def send(seq: int) -> None:
        try:
            client.send_batch(build_request(seq, args.recipients, run))
        except Exception as exc:
            with failed.get_lock():
                failed.value += 1
            say(f"batch {seq} failed: {exc}")
        else:
            with accepted.get_lock():
                accepted.value += 1

    with ThreadPoolExecutor(args.threads) as pool:
        list(pool.map(send, range(share, args.batches, args.processes)))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batches", type=int, default=1000)
    parser.add_argument("--recipients", type=int, default=1000)
    parser.add_argument("--processes", type=int, default=2)
    parser.add_argument("--threads", type=int, default=2, help="per process")
    parser.add_argument("--callback-workers", type=int, default=4)
    parser.add_argument("--callback-window", type=float, default=10.0)
    parser.add_argument("--drain-rate", type=float, default=0, help="0: no limit")
    parser.add_argument("--callback-rate", type=float, default=0, help="0: no limit")
    args = parser.parse_args()

    count = multiprocessing.Value("q", 0, lock=False)
    bad = multiprocessing.Value("q", 0, lock=False)
    accepted = multiprocessing.Value("q", 0)
    failed = multiprocessing.Value("q", 0)
    go = multiprocessing.Event()
    receiver_port, sim_port = free_port(), free_port()
    receiver = multiprocessing.Process(
        target=receive, args=(receiver_port, count, bad), daemon=True
    )
    receiver.start()
    say(f"starting the simulator on port {sim_port}")
    sim = start_simulator(sim_port, f"http://127.0.0.1:{receiver_port}/", args)
    url = f"http://127.0.0.1:{sim_port}"
    run = uuid.uuid4().hex[:8]
    senders = [
        multiprocessing.Process(
            target=submit_share, args=(n, args, url, run, accepted, failed, go)
        )
        for n in range(args.processes)
    ]
    try:
        for sender in senders:
            sender.start()
        time.sleep(1)  # let them import and build their clients
        say(
            f"submitting {args.batches} x {args.recipients} from {args.processes} "
            f"processes x {args.threads} threads"
        )
        started = time.monotonic()
        go.set()
        shown = 0
        while any(sender.is_alive() for sender in senders):
            time.sleep(0.2)
            done = accepted.value + failed.value
            if done // 100 > shown:
                shown = done // 100
                say(
                    f"{done} answered in {time.monotonic() - started:.1f}s; "
                    f"{count.value} callbacks"
                )
        submit_s = time.monotonic() - started
        at_submit = count.value
        say(f"submitted in {submit_s:.2f}s; counting callbacks {args.callback_window}s")
        window_started = time.monotonic()
        time.sleep(args.callback_window)
        window_s = time.monotonic() - window_started
        received = count.value
        listed = make_client(url, 1).batches_by_metadata("bench_run", run)
        simulator_cpu = cpu_seconds(str(sim.pid))
    finally:
        sim.terminate()
        sim.wait(timeout=10)
        receiver.terminate()
    emit(
        {
            "batches": args.batches,
            "recipients": args.recipients,
            "processes": args.processes,
            "threads_per_process": args.threads,
            "batches_accepted": accepted.value,
            "batches_failed": failed.value,
            "batches_listed_by_metadata": len(listed),
            "submit_s": round(submit_s, 2),
            "recipients_per_s": round(accepted.value * args.recipients / submit_s),
            "callbacks_received": received,
            "callbacks_during_submit": at_submit,
            "callbacks_bad_signature_in_sample": bad.value,
            "callbacks_per_s": round((received - at_submit) / window_s)
            if window_s
            else None,
            "simulator_cpu_s": round(simulator_cpu, 1),
            "machine": f"{os.cpu_count()} cores, {platform.machine()}, "
            f"Python {platform.python_version()}",
        }
    )


if __name__ == "__main__":
    main()
