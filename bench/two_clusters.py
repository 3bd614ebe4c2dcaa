"""Two django-q2 clusters, as on two machines, dispatch one campaign together;
one is SIGKILLed halfway and the other finishes it.

    REDIS_URL=redis://127.0.0.1:6379/0 python bench/two_clusters.py
        [--n 1000000] [--workers 2] [--kill-at 0.5] [--lease-s 30]
        [--grace-s 10] [--keep]

PostgreSQL (BENCH_POSTGRES_URL, default postgres://postgres@127.0.0.1:5432)
and Redis (REDIS_URL) are required: they are what several machines share.
The run refuses with a message when either is missing or does not answer.

A fresh database is filled with contacts as bench/dispatch.py --plain does
(one SMS identity each, about 80 % opted in; the campaign's lists hold
exactly --n opted-in people), the campaign is created, checked and approved.
The simulator runs as its own process (bench/dispatch.py's, which keeps the
bodies of the batches it accepted). Two `manage.py qcluster` processes are
started, each in a process group of its own and with a name of its own
(WORKER_NAME=cluster-a / cluster-b, as two machines' hostnames), sharing the
database, the Redis broker (one queue) and the request limit; each batch
records the worker that claimed it (Batch.claimed_by, "name:pid").

The clock starts when `launching.launch` is called, as the admin's Launch
button does: a worker of either cluster freezes the recipients, and the drain
loops (DISPATCH_CONCURRENCY, by default one per worker of both clusters) go
to whichever cluster takes them from the queue. When --kill-at of the
batches are accepted, the cluster that has posted the most so far is killed
(SIGKILL to its process group: every process of it at once, as when a
machine dies). The other goes on. The batches the dead one had claimed wait
for their claim's lease (--lease-s: DISPATCH_CLAIM_LEASE_S, and
LAUNCH_LEASE_S for a freeze it was running; production's defaults are 600 s
and 300 s), then the periodic tick, run by the survivor's scheduler every
minute, settles them (looked up at Sinch by their metadata, sent again only
when Sinch does not have them after the grace, --grace-s) or resumes the
freeze. The clock stops when the campaign is SUBMITTED (`wall_s`).

Figures: batches_posted (POSTs the simulator received),
recipients_in_two_batches (identities the simulator received more than once;
must be 0), batches_by_cluster (from claimed_by of the batches; both > 0),
wall_s; killed_at_batches, killed_at_s, in_flight_at_kill (the dead
cluster's claims without an outcome), freezing_at_kill and launch_resumes
(the freeze still ran at the kill; resumed by the tick), rest_accepted_s
(every batch but the dead cluster's claims accepted), all_accepted_s,
resent_after_kill (batches claimed more than once). Progress goes to stderr;
the last line of stdout is one JSON object.
"""

import argparse
import math
import os
import platform
import secrets
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _common as common
from dispatch import BENCH_PATH, prepare, start_simulator

CLUSTERS = ("cluster-a", "cluster-b")


def refuse(message: str) -> None:
    sys.stderr.write(f"two_clusters: {message}\n")
    raise SystemExit(2)


def check_services() -> str:
    """REDIS_URL, with Redis and PostgreSQL answering; refuses otherwise."""
    redis_url = os.environ.get("REDIS_URL", "")
    if not redis_url.startswith(("redis://", "rediss://", "unix://")):
        refuse(
            "needs Redis, the broker several machines share: set REDIS_URL "
            "(e.g. redis://127.0.0.1:6379/0)."
        )
    import psycopg
    import redis

    try:
        redis.Redis.from_url(redis_url, socket_timeout=5).ping()
    except redis.RedisError as exc:
        refuse(f"Redis at REDIS_URL does not answer: {exc}")
    try:
        with psycopg.connect(f"{common.POSTGRES_SERVER}/postgres", connect_timeout=5):
            pass
    except psycopg.Error as exc:
        refuse(
            "needs PostgreSQL, the database several machines share "
            f"(BENCH_POSTGRES_URL={common.POSTGRES_SERVER}): {exc}"
        )
    return redis_url


class Cluster:
    """A `manage.py qcluster` in a process group of its own."""

    def __init__(self, name: str, folder: str) -> None:
        self.name = name
        self.log = Path(folder) / f"{name}.log"
        with open(self.log, "ab") as out:
            self.process = subprocess.Popen(
                [common.PYTHON, str(common.ROOT / "manage.py"), "qcluster"],
                cwd=common.ROOT,
                env={**os.environ, "WORKER_NAME": name},
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )

    def kill(self) -> None:
        """SIGKILL the whole process group at once (the machine died)."""
        import psutil

        group = [psutil.Process(self.process.pid)]
        group += group[0].children(recursive=True)
        os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait(timeout=30)

        def alive(proc) -> bool:
            try:
                return proc.status() != psutil.STATUS_ZOMBIE
            except psutil.NoSuchProcess:
                return False

        deadline = time.monotonic() + 30
        while any(alive(p) for p in group):
            if time.monotonic() > deadline:
                raise SystemExit(f"{self.name}: a process survived SIGKILL")
            time.sleep(0.05)

    def stop(self) -> None:
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait()

    def tail(self) -> str:
        return self.log.read_text(errors="replace")[-3000:]


def wait_for_clusters(clusters: list[Cluster], timeout: float = 120) -> None:
    """Until both clusters report to the broker (django-q2's own stats)."""
    from django_q.status import Stat

    deadline = time.monotonic() + timeout
    pids = {c.process.pid for c in clusters}
    while True:
        for cluster in clusters:
            if cluster.process.poll() is not None:
                raise SystemExit(f"{cluster.name} exited:\n{cluster.tail()}")
        up = {s.pid for s in Stat.get_all() if s.status in ("Idle", "Working")}
        if pids <= up:
            return
        if time.monotonic() > deadline:
            raise SystemExit("the clusters did not start in time")
        time.sleep(0.5)


def accepted_by(campaign_id: int) -> Counter:
    """Accepted batches per cluster, from the worker each batch names."""
    from campaigns.models import Batch

    rows = Batch.objects.filter(
        campaign_id=campaign_id, is_test=False, status=Batch.Status.ACCEPTED
    ).values_list("claimed_by", flat=True)
    return Counter(claimed.rsplit(":", 1)[0] for claimed in rows)


def run(campaign_id: int, user_id: int, clusters: dict, expected: int, args) -> dict:
    """Launch, kill one cluster at --kill-at, wait for SUBMITTED; timings."""
    from django.contrib.auth.models import User

    from campaigns.dispatch import launching
    from campaigns.models import Batch, Campaign

    campaign = Campaign.objects.get(pk=campaign_id)
    started = time.monotonic()
    launching.launch(campaign, User.objects.get(pk=user_id))
    facts: dict = {}
    shown = 0
    limit = 1800 + args.lease_s
    while True:
        time.sleep(0.2)
        elapsed = time.monotonic() - started
        if elapsed > limit:
            done = dict(accepted_by(campaign_id))
            raise SystemExit(f"not finished after {limit} s: accepted {done}")
        status = Campaign.objects.values_list("status", flat=True).get(pk=campaign_id)
        if status == Campaign.Status.SUBMITTED:
            if "victim" not in facts:
                raise SystemExit("the campaign was sent before the kill: raise --n")
            break
        if status not in (
            Campaign.Status.LAUNCHING,
            Campaign.Status.SCHEDULED,
            Campaign.Status.SUBMITTING,
        ):
            raise SystemExit(f"the campaign is {status}")
        done = accepted_by(campaign_id)
        total = sum(done.values())
        if total // 100 > shown:
            shown = total // 100
            common.say(f"{total} batches accepted at {elapsed:.1f} s: {dict(done)}")
        if "victim" not in facts and total >= args.kill_at * expected:
            victim = max(CLUSTERS, key=lambda name: done[name])
            clusters[victim].kill()
            # Counted once it is dead: it claims nothing more.
            facts["in_flight_at_kill"] = Batch.objects.filter(
                campaign_id=campaign_id,
                status=Batch.Status.SUBMITTING,
                claimed_by__startswith=f"{victim}:",
            ).count()
            facts.update(
                victim=victim,
                killed_at_s=round(elapsed, 2),
                killed_at_batches=sum(accepted_by(campaign_id).values()),
                victim_batches_at_kill=done[victim],
                freezing_at_kill=status == Campaign.Status.LAUNCHING,
            )
            common.say(
                f"SIGKILLed {victim} at {elapsed:.1f} s after {total} batches "
                f"({facts['in_flight_at_kill']} of its claims in flight)"
            )
        if (
            "victim" in facts
            and "rest_accepted_s" not in facts
            and total >= expected - facts["in_flight_at_kill"]
        ):
            # All but the dead cluster's claims: the survivor went on alone.
            facts["rest_accepted_s"] = round(elapsed, 2)
            common.say(f"all but the dead cluster's claims at {elapsed:.1f} s")
        if "all_accepted_s" not in facts and total == expected:
            facts["all_accepted_s"] = round(elapsed, 2)
            common.say(f"all {expected} batches accepted at {elapsed:.1f} s")
    facts["wall_s"] = round(time.monotonic() - started, 2)
    facts["launch_resumes"] = Campaign.objects.values_list(
        "launch_resumes", flat=True
    ).get(pk=campaign_id)
    facts.setdefault("all_accepted_s", facts["wall_s"])
    facts.setdefault("rest_accepted_s", facts["all_accepted_s"])
    common.say(f"SUBMITTED at {facts['wall_s']:.1f} s")
    return facts


def verify(campaign_id: int, n: int, expected: int, sim: dict) -> tuple[dict, list]:
    """What the simulator received against the database."""
    from django.db import connection

    from campaigns.models import Batch, Recipient

    batches = Batch.objects.filter(campaign_id=campaign_id, is_test=False)
    found = {
        "batches": batches.count(),
        "batches_accepted": batches.filter(status=Batch.Status.ACCEPTED).count(),
        "resent_after_kill": batches.filter(attempts__gt=1).count(),
        "recipients_submitted": Recipient.objects.filter(
            campaign_id=campaign_id, is_test=False, status=Recipient.Status.SUBMITTED
        ).count(),
        "batches_posted": sum(
            v for k, v in sim["counters"].items() if k.startswith("POST messages ")
        ),
        "batches_received": sim["batches_received"],
        "batch_keys_received_twice": sim["batch_keys_received_twice"],
        "recipients_received": sim["recipients_received"],
        "recipients_in_two_batches": sim["identities_received_twice"],
        "batch_keys_match": sorted(batches.values_list("metadata_key", flat=True))
        == sim["batch_keys"],
    }
    with connection.cursor() as cur:
        cur.execute(
            "SELECT COUNT(*) FROM (SELECT contact_id FROM campaigns_recipient "
            "WHERE campaign_id = %s AND is_test = false AND batch_id IS NOT NULL "
            "GROUP BY contact_id HAVING COUNT(*) > 1) t",
            [campaign_id],
        )
        (found["db_recipients_in_two_batches"],) = cur.fetchone()
    by_cluster = Counter(
        c.rsplit(":", 1)[0] for c in batches.values_list("claimed_by", flat=True)
    )
    found["batches_by_cluster"] = {name: by_cluster[name] for name in CLUSTERS}
    checks = {
        "batches": expected,
        "batches_accepted": expected,
        "batches_posted": expected,
        "batches_received": expected,
        "batch_keys_received_twice": 0,
        "recipients_submitted": n,
        "recipients_received": n,
        "recipients_in_two_batches": 0,
        "db_recipients_in_two_batches": 0,
        "batch_keys_match": True,
    }
    problems = [
        f"{key} is {found[key]}, expected {want}"
        for key, want in checks.items()
        if found[key] != want
    ]
    problems += [
        f"{name} posted no batch"
        for name, count in found["batches_by_cluster"].items()
        if not count
    ]
    return found, problems


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=1_000_000)
    parser.add_argument(
        "--workers", type=int, default=2, help="worker processes per cluster"
    )
    parser.add_argument(
        "--kill-at", type=float, default=0.5, help="share of batches accepted"
    )
    parser.add_argument(
        "--lease-s", type=int, default=30, help="DISPATCH_CLAIM_LEASE_S"
    )
    parser.add_argument(
        "--grace-s", type=int, default=10, help="DISPATCH_UNCERTAIN_GRACE_S"
    )
    parser.add_argument("--keep", action="store_true", help="keep the database")
    args = parser.parse_args()
    if args.n < 2000:
        refuse("--n must be at least 2000 (two batches, one per cluster)")
    if not 0 < args.kill_at < 1:
        refuse("--kill-at must be between 0 and 1 (a share of the batches)")
    redis_url = check_services()

    import requests

    folder = common.workdir("two-clusters-bench-")
    name = f"bench_two_clusters_{os.getpid()}"
    url = common.fresh_database("postgres", name, folder)
    for key in ("PROJECT_ID", "KEY_ID", "KEY_SECRET", "APP_ID"):
        os.environ[f"SINCH_{key}"] = ""  # the bench always talks to the simulator
    os.environ.update(
        REDIS_URL=redis_url,
        # A queue of its own: Redis may be shared with other runs.
        Q_CLUSTER_NAME=f"bench-{secrets.token_hex(4)}",
        Q_WORKERS=str(args.workers),
        DISPATCH_CONCURRENCY=str(2 * args.workers),
        DISPATCH_CLAIM_LEASE_S=str(args.lease_s),
        DISPATCH_UNCERTAIN_GRACE_S=str(args.grace_s),
        LAUNCH_LEASE_S=str(args.lease_s),  # a freeze on the dead cluster
        PRESEND_INLINE_RECIPIENTS=str(10**9),  # checked here, inline
        QUIET_HOURS="00:00-24:00",  # sent at once, whatever the hour
    )
    sim_process, sim_url = start_simulator()
    os.environ["SINCH_BATCH_API_URL"] = os.environ["SINCH_AUTH_URL"] = sim_url
    clusters: dict[str, Cluster] = {}
    try:
        common.setup_django(url, os.path.join(folder, "media"), debug=False)
        campaign_id, user_id, facts = prepare(args.n, 0, False)
        expected = math.ceil(args.n / 1000)
        common.say("starting two clusters")
        clusters = {c: Cluster(c, folder) for c in CLUSTERS}
        wait_for_clusters(list(clusters.values()))
        load_before = os.getloadavg()
        common.say("clusters ready: launching")
        timed = run(campaign_id, user_id, clusters, expected, args)
        load_after = os.getloadavg()
        sim = requests.get(sim_url + BENCH_PATH, timeout=600).json()
        found, problems = verify(campaign_id, args.n, expected, sim)
        for problem in problems:
            common.say(f"WRONG: {problem}")
        result = {
            "batches_posted": found["batches_posted"],
            "recipients_in_two_batches": found["recipients_in_two_batches"],
            "batches_by_cluster": found["batches_by_cluster"],
            "wall_s": timed["wall_s"],
            "killed": timed["victim"],
            "killed_at_batches": timed["killed_at_batches"],
            "killed_at_s": timed["killed_at_s"],
            "killed_cluster_batches_at_kill": timed["victim_batches_at_kill"],
            "in_flight_at_kill": timed["in_flight_at_kill"],
            "freezing_at_kill": timed["freezing_at_kill"],
            "launch_resumes": timed["launch_resumes"],
            "resent_after_kill": found["resent_after_kill"],
            "rest_accepted_s": timed["rest_accepted_s"],
            "all_accepted_s": timed["all_accepted_s"],
            "n": args.n,
            **{k: v for k, v in found.items() if k not in ("batches_by_cluster",)},
            "presend_s": facts["presend_s"],
            "workers_per_cluster": args.workers,
            "drain_loops": 2 * args.workers,
            "lease_s": args.lease_s,
            "grace_s": args.grace_s,
            "load_avg_before": round(load_before[0], 2),
            "load_avg_after": round(load_after[0], 2),
            "machine": f"{os.cpu_count()} cores, {platform.machine()}, "
            f"Python {platform.python_version()}",
            "correct": not problems,
        }
    finally:
        for cluster in clusters.values():
            cluster.stop()
        sim_process.terminate()
        sim_process.wait(timeout=30)
        if os.environ.get("DJANGO_SETTINGS_MODULE"):
            try:
                from django_q.brokers import get_broker

                get_broker().delete_queue()
            except Exception as exc:  # the figures matter more than the cleanup
                common.say(f"the bench's queue was not removed: {exc}")
        if not args.keep:
            common.remove_run(folder, "postgres", name)
    common.emit(result)


if __name__ == "__main__":
    main()
