"""Dispatch of a 1,000,000-recipient campaign: launch to every batch accepted.

    python bench/dispatch.py [--n 1000000] [--database sqlite|postgres]
        [--workers 2] [--capped-share 0.1] [--plain]

Fills a fresh database with contacts (one SMS identity each, about 80 % opted
in, the rest opted out or without consent, see admin_pages.fill) and keeps on
the campaign's two lists exactly the contacts up to the one that makes --n
opted in, so the audience holds --n people who may receive it and about a
quarter as many who may not. Creates a template (a contact field, a custom
attribute with a default, a campaign value) and the campaign, and runs the
pre-send check (timed separately: `presend_s`).

With the frequency cap (FREQUENCY_CAP, default 2/7d,1/1d): two earlier
marketing campaigns, accepted by Sinch and delivered, reached 40 % and 10 % of
the contacts (bench/_prior.py), so --capped-share (default 0.1) of them are
over the cap; the lists then hold enough contacts for --n people to receive
it besides those (--capped-share 0: no earlier campaigns).

With the other compliance guards (the default; --plain sends at once to the
New Jersey numbers of admin_pages.fill): the numbers spread over four
countries and ten time zones, the campaign is sent at 10:00 tomorrow in each
recipient's local time under quiet hours with one override (Japan from
11:00), and the template has no opt-out wording, so the compliance footer is
added (bench/_guards.py). Every batch then carries its group's send_after;
Sinch's scheduling horizon is raised to 72 hours so that all are handed over
at the launch. The check: every batch holds one send time, each wave's
recipients are packed into whole batches, and nobody's send time falls in
their quiet hours (checked on one recipient in ten against phonenumbers' and
zoneinfo's own answers). Either way a Marketing user requests the launch and
the Sender approves it first (four-eyes approval), untimed.

The timed part runs as in production: a real `manage.py qcluster`
(django-q2, ORM broker, DEBUG off; Q_WORKERS worker processes and
DISPATCH_CONCURRENCY drain loops, both --workers, default 2 as in the
settings) is started and proven ready with a probe task. Then the clock
starts and `launching.launch` is called as the admin's Launch button does: it
queues the freeze on the cluster (the audience is above
LAUNCH_INLINE_RECIPIENTS), a worker freezes the recipients into batches and
queues the drain loops, and the clock stops when every batch is ACCEPTED
(`freeze_s` + `dispatch_s` = `wall_s`). The measured process tree is a small
driver (launch, then polling the database) and the cluster; `peak_rss_mb` is
its largest single process, `peak_tree_rss_mb` / `peak_tree_pss_mb` the tree
added up (sampled).

Sinch is the simulator, run by this script as its own process (not measured)
with its default drain rate (20 messages/s, so it spends no CPU on receipts)
and no processing delay (a batch is PROCESSED as soon as it is accepted, so
the in-flight cap of SINCH_MAX_IN_FLIGHT_MESSAGES is released by the
dispatcher's status reads, as against Sinch). It counts the API calls by
method and keeps the bodies of the accepted batches, which are read at the
end: what Sinch received is checked against the database (exactly one POST
per batch, every recipient once, nobody without consent).

Target: peak RSS <= 300 MB and, for 1,000,000 recipients in 1000 batches on
SQLite and on PostgreSQL, <= 60 s wall with the compliance guards (issue 5)
and <= 30 s with --plain (issue 17's launch); `target_wall_s` says which.
The machine is shared: `load_avg_before` says how busy it was, and figures
taken under load are much slower (see the README).
"""

import argparse
import json
import os
import platform
import signal
import socket
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _common as common
from _guards import approve, local_time_fields, quiet_hours_breaches, use_guard_settings
from _prior import add_prior_marketing
from admin_pages import fill

TARGET_WALL_S = 60  # with the compliance guards (issue 5)
TARGET_PLAIN_WALL_S = 30  # --plain: issue 17's launch
TARGET_PEAK_RSS_MB = 300
BENCH_PATH = "/_bench/report"


# --- the simulator process ----------------------------------------------------


def run_simulator(port: int) -> None:
    """Serve the simulator, counting API calls and keeping accepted bodies."""
    sys.path.insert(0, str(common.ROOT))
    import gc

    from sinch.config import (
        SIMULATOR_APP_ID,
        SIMULATOR_KEY_ID,
        SIMULATOR_KEY_SECRET,
        SIMULATOR_PROJECT_ID,
        SIMULATOR_WEBHOOK_SECRET,
    )
    from sinch.simulator import Account, Knobs, Simulator
    from sinch.simulator.api import PROJECT_ROUTE, Response

    knobs = Knobs()
    # No ingress queue limit: at 20 messages/s Sinch's queue (500,000 per app)
    # would hold the second half of an immediate million back for hours; the
    # bench measures our side of the hand-over.
    knobs.update(
        {
            "processing_delay_s": 0,
            "latency_s": 0.05,
            "seed": 1,
            "drain_rate": 20,
            "ingress_queue_limit": 0,
        }
    )
    account = Account(
        project_id=SIMULATOR_PROJECT_ID,
        app_id=SIMULATOR_APP_ID,
        key_id=SIMULATOR_KEY_ID,
        key_secret=SIMULATOR_KEY_SECRET,
        webhook_secret=SIMULATOR_WEBHOOK_SECRET,
    )
    sim = Simulator(account=account, knobs=knobs, port=port)
    bodies: list[bytes] = []
    handle = sim.handle

    def counted(request):
        if request.path == BENCH_PATH:
            return Response(200, report(sim, bodies))
        response = handle(request)
        match = PROJECT_ROUTE.match(request.path)
        if match:
            _, resource, item = match.groups()
            kind = f"{resource}/{{id}}" if item else resource
            sim.state.count(f"{request.method} {kind} {response.status}")
            if (request.method, kind, response.status) == ("POST", "messages", 200):
                bodies.append(request.body)
        return response

    sim.handle = counted
    gc.collect()
    gc.freeze()
    gc.set_threshold(50_000, 20, 100)
    sim.serve_forever()


def report(sim, bodies: list[bytes]) -> dict:
    """What the simulator received: counters, and every recipient sent."""
    identities: Counter = Counter()
    rows: Counter = Counter()
    batch_keys: Counter = Counter()
    for body in bodies:
        data = json.loads(body)
        batch_keys[data.get("batch_metadata", {}).get("cm_batch")] += 1
        for item in data["recipient_and_params"]:
            for identity in item["recipient"]["identified_by"]["channel_identities"]:
                identities[identity["identity"]] += 1
            rows[item.get("message_metadata", {}).get("cm_recipient")] += 1
    return {
        "counters": dict(sim.state.counters),
        "batches_received": len(bodies),
        "batch_keys_received_twice": sum(1 for c in batch_keys.values() if c > 1),
        "recipients_received": sum(identities.values()),
        "identities_received_twice": sum(1 for c in identities.values() if c > 1),
        "recipient_rows_received_twice": sum(1 for c in rows.values() if c > 1),
        "identities": sorted(identities),
        "batch_keys": sorted(k for k in batch_keys if k),
    }


def cpu_seconds(pid: int) -> float:
    """User + system CPU of a process so far (Linux /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def start_simulator() -> tuple[subprocess.Popen, str]:
    import requests

    port = free_port()
    child = subprocess.Popen(
        [common.PYTHON, __file__, "--simulator", str(port)],
        cwd=common.ROOT,
        stdout=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            requests.get(f"{url}/_simulator/knobs", timeout=1)
            return child, url
        except requests.ConnectionError:
            time.sleep(0.1)
    child.kill()
    raise SystemExit("the simulator did not start")


# --- preparing the database ---------------------------------------------------


def prepare(
    n: int, every: int, guards: bool, variants: int = 0, tracked: bool = False
) -> tuple[int, int, dict]:
    """Fill, add the earlier campaigns that put one contact in `every` over
    the frequency cap (none when 0), keep on the lists exactly enough
    contacts for n opted-in ones within the cap, create the campaign and run
    the pre-send check. Returns (campaign id, sender id, facts)."""
    from django.contrib.auth.models import Group, User
    from django.db import connection
    from django.utils import timezone

    from campaigns.authoring.presend import request_check
    from campaigns.models import Campaign, MessageTemplate, TemplateParameter
    from contacts import roles
    from contacts.models import ContactList

    # About 80 % are opted in, (every - 1) / every of them within the cap: a
    # little more than n / 0.8 / that share contacts are enough.
    within = (every - 1) / every if every else 1
    total = int(n / 0.8 / within * 1.01) + 1000
    common.say(f"filling {total:,} contacts")
    fill(total, world=guards)
    add_prior_marketing(total, every)
    within_cap = "AND contact_id %% %s <> 0 " if every else ""
    with connection.cursor() as cur:
        cur.execute(
            "SELECT contact_id FROM contacts_channelidentity "
            f"WHERE marketing_consent = 'OPTED_IN' {within_cap}"
            "ORDER BY contact_id LIMIT 1 OFFSET %s",
            [every, n - 1] if every else [n - 1],
        )
        (last,) = cur.fetchone()
        cur.execute("DELETE FROM contacts_listmembership WHERE contact_id > %s", [last])
        cur.execute("ANALYZE")
    common.say(
        f"the lists hold contacts 1..{last:,}: {n:,} of them opted in and "
        "within the frequency cap"
    )

    text = "Hi ${first_name}, ${offer} for ${tier} members this week only."
    if tracked:  # --tracked-links: one more per-recipient value, a short link
        text += " Shop: https://shop.example.com/spring?ref=sms"
    template = MessageTemplate.objects.create(
        name="Spring sale",
        text=text if guards else text + " Reply STOP to opt out.",
    )
    TemplateParameter.objects.filter(template=template, name="offer").update(
        source=TemplateParameter.Source.CAMPAIGN
    )
    TemplateParameter.objects.filter(template=template, name="tier").update(
        source=TemplateParameter.Source.ATTRIBUTE, attribute="tier", default="valued"
    )
    campaign = Campaign.objects.create(
        name="Spring sale",
        template=template,
        campaign_values={"offer": "20% off"},
        track_links=tracked,
        utm_source="sms" if tracked else "",
        **(local_time_fields(timezone.now()) if guards else {}),
    )
    campaign.lists.set(ContactList.objects.all())
    if variants:
        add_variants(campaign, template, variants)
    user = User.objects.create_user("sandra", password="pw", is_staff=True)
    user.groups.add(Group.objects.get(name=roles.SENDER))

    common.say("running the pre-send check")
    started = time.perf_counter()
    request_check(campaign)
    presend_s = time.perf_counter() - started
    campaign.refresh_from_db()
    summary = campaign.presend or {}
    common.say(
        f"pre-send check in {presend_s:.1f} s: {summary.get('ok'):,} ok, "
        f"{summary.get('excluded'):,} excluded"
    )
    if summary.get("ok") != n:
        raise SystemExit(f"the pre-send check found {summary.get('ok')} ok, not {n}")
    approve(campaign, user)
    return (
        campaign.pk,
        user.pk,
        {"audience": last, "presend_s": round(presend_s, 2)},
    )


def add_variants(campaign, template, count: int) -> None:
    """An A/B test of `count` variants (equal shares): A is the campaign's
    template, the others a shorter text with the same placeholders."""
    from campaigns.models import MessageTemplate, Variant

    other = MessageTemplate.objects.create(
        name="Spring sale, short",
        text="${first_name}: ${offer} for ${tier} members!"
        + (" Reply STOP to opt out." if "STOP" in template.text else ""),
    )
    for parameter in template.parameters.all():
        other.parameters.filter(name=parameter.name).update(
            source=parameter.source,
            attribute=parameter.attribute,
            default=parameter.default,
        )
    for index, label in enumerate("ABCD"[:count]):
        Variant.objects.create(
            campaign=campaign,
            label=label,
            template=None if index == 0 else other,
            share=100 // count + (100 % count if index == 0 else 0),
        )


# --- the measured driver ------------------------------------------------------


def driver(campaign_id: int, user_id: int) -> None:
    """Start a cluster, launch, wait until every batch is accepted."""
    from django.contrib.auth.models import User
    from django_q.tasks import async_task, result

    from campaigns.dispatch import launching
    from campaigns.models import Batch, Campaign

    cluster = subprocess.Popen(
        [common.PYTHON, str(common.ROOT / "manage.py"), "qcluster"],
        cwd=common.ROOT,
        stdout=subprocess.DEVNULL,
        start_new_session=False,
    )
    try:
        probe = async_task("math.floor", 1.5)
        if result(probe, wait=60_000) != 1:
            raise SystemExit("the cluster did not answer the probe task")
        common.say("cluster ready: launching")
        campaign = Campaign.objects.get(pk=campaign_id)
        user = User.objects.get(pk=user_id)
        started = time.monotonic()
        launching.launch(campaign, user)
        frozen_s = None
        shown = 0
        batches = Batch.objects.filter(campaign_id=campaign_id, is_test=False)
        while True:
            time.sleep(0.2)
            status = (
                Campaign.objects.filter(pk=campaign_id)
                .values_list("status", flat=True)
                .get()
            )
            elapsed = time.monotonic() - started
            if status == Campaign.Status.LAUNCHING:
                if elapsed > 1800:
                    raise SystemExit("the freeze did not finish in 30 minutes")
                continue
            if frozen_s is None:
                frozen_s = elapsed
                total = batches.count()
                common.say(f"frozen in {frozen_s:.1f} s: {total} batches")
            accepted = batches.filter(status=Batch.Status.ACCEPTED).count()
            if accepted // 100 > shown:
                shown = accepted // 100
                common.say(f"{accepted} batches accepted at {elapsed:.1f} s")
            if accepted == total:
                break
            running = (Campaign.Status.SCHEDULED, Campaign.Status.SUBMITTING)
            if status not in (*running, Campaign.Status.SUBMITTED):
                raise SystemExit(f"the campaign is {status}")
            if elapsed > 3600:
                raise SystemExit("dispatch did not finish in an hour")
        wall = time.monotonic() - started
    finally:
        cluster.send_signal(signal.SIGTERM)
        try:
            cluster.wait(timeout=60)
        except subprocess.TimeoutExpired:
            cluster.kill()
            cluster.wait()
    print(
        json.dumps(
            {
                "launch_to_accepted_s": wall,
                "freeze_s": frozen_s,
                "dispatch_s": wall - frozen_s,
                "batches": total,
            }
        )
    )


# --- checks -------------------------------------------------------------------


def short_links_of(campaign_id: int) -> int:
    from campaigns.models import ShortLink

    return ShortLink.objects.filter(link__campaign_id=campaign_id).count()


def verify(
    campaign_id: int, n: int, sim: dict, every: int, guards: bool
) -> tuple[dict, list[str]]:
    """The database and what the simulator received, against each other."""
    from django.db import connection
    from django.db.models import Count, Sum

    from campaigns.models import Batch, Campaign, Recipient

    facts: dict = {}
    problems: list[str] = []
    batches = Batch.objects.filter(campaign_id=campaign_id, is_test=False)
    facts["batches"] = batches.count()
    facts["batches_accepted"] = batches.filter(status=Batch.Status.ACCEPTED).count()
    facts["batch_sizes_over_1000"] = batches.filter(size__gt=1000).count()
    facts["batches_claimed_more_than_once"] = batches.filter(attempts__gt=1).count()
    facts["distinct_sinch_batch_ids"] = (
        batches.values("sinch_batch_id").distinct().count()
    )
    # Each wave (send time) in whole batches but its last.
    waves = list(
        batches.values("send_after").annotate(n=Sum("size"), batches=Count("id"))
    )
    facts["waves"] = len(waves)
    facts["batches_beyond_whole_waves"] = sum(
        w["batches"] - -(-w["n"] // 1000) for w in waves
    )
    facts["batches_without_send_after"] = batches.filter(send_after=None).count()
    if guards:
        checked, breaches = quiet_hours_breaches(campaign_id)
        facts["quiet_hours_checked"] = checked
        facts["sent_in_quiet_hours"] = breaches
    rows = Recipient.objects.filter(campaign_id=campaign_id, is_test=False)
    facts["recipients_submitted"] = rows.filter(
        status=Recipient.Status.SUBMITTED
    ).count()
    facts["recipients_excluded"] = rows.filter(status=Recipient.Status.EXCLUDED).count()
    facts["campaign_status"] = (
        Campaign.objects.filter(pk=campaign_id).values_list("status", flat=True).get()
    )
    table = Recipient._meta.db_table
    with connection.cursor() as cur:
        # A contact in two batches (or twice in one), by contact.
        cur.execute(
            f"SELECT COUNT(*) FROM (SELECT contact_id FROM {table} "
            "WHERE campaign_id = %s AND is_test = %s AND batch_id IS NOT NULL "
            "GROUP BY contact_id HAVING COUNT(*) > 1) t",
            [campaign_id, False],
        )
        (facts["recipients_in_two_batches"],) = cur.fetchone()
        # Sent to someone not opted in.
        cur.execute(
            f"SELECT COUNT(*) FROM {table} r JOIN contacts_channelidentity i "
            "ON i.contact_id = r.contact_id AND i.channel = 'SMS' "
            "WHERE r.campaign_id = %s AND r.is_test = %s AND r.batch_id IS NOT NULL "
            "AND i.marketing_consent <> 'OPTED_IN'",
            [campaign_id, False],
        )
        (facts["batched_without_consent"],) = cur.fetchone()
        # Sent to someone over the frequency cap (both earlier campaigns).
        cur.execute(
            f"SELECT COUNT(*) FROM {table} WHERE campaign_id = %s AND is_test = %s "
            "AND batch_id IS NOT NULL AND %s > 0 AND contact_id %% %s = 0",
            [campaign_id, False, every, every or 1],
        )
        (facts["batched_over_the_cap"],) = cur.fetchone()
        facts["excluded_by_frequency_cap"] = rows.filter(
            reason__startswith="frequency cap:"
        ).count()
        cur.execute(
            "SELECT identity FROM contacts_channelidentity "
            "WHERE channel = 'SMS' AND marketing_consent <> 'OPTED_IN'"
        )
        not_opted_in = {row[0] for row in cur.fetchall()}
    received = sim["identities"]
    facts["sent_without_consent"] = sum(1 for i in received if i in not_opted_in)
    counters = sim["counters"]
    facts["posts"] = sum(
        v for k, v in counters.items() if k.startswith("POST messages ")
    )
    facts["status_reads"] = sum(
        v for k, v in counters.items() if k.startswith("GET messages/")
    )
    facts["api_calls"] = counters.get("api_calls", 0)
    for key in (
        "batches_received",
        "recipients_received",
        "identities_received_twice",
        "recipient_rows_received_twice",
        "batch_keys_received_twice",
    ):
        facts[key] = sim[key]
    expected = sum(-(-w["n"] // 1000) for w in waves) if guards else -(-n // 1000)
    checks = {
        "batches": expected,
        "batches_accepted": expected,
        "distinct_sinch_batch_ids": expected,
        "batch_sizes_over_1000": 0,
        "posts": expected,
        "batches_received": expected,
        "recipients_submitted": n,
        "recipients_received": n,
        "recipients_in_two_batches": 0,
        "identities_received_twice": 0,
        "recipient_rows_received_twice": 0,
        "batch_keys_received_twice": 0,
        "batched_without_consent": 0,
        "batched_over_the_cap": 0,
        "sent_without_consent": 0,
        "campaign_status": "SUBMITTED",
        "batches_beyond_whole_waves": 0,
    }
    if guards:
        checks["batches_without_send_after"] = 0
        checks["sent_in_quiet_hours"] = 0
    for key, want in checks.items():
        if facts[key] != want:
            problems.append(f"{key} is {facts[key]}, expected {want}")
    return facts, problems


# --- main ---------------------------------------------------------------------


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=1_000_000)
    parser.add_argument("--database", choices=["sqlite", "postgres"], default="sqlite")
    parser.add_argument(
        "--workers",
        type=int,
        default=2,
        help="cluster worker processes and drain loops (Q_WORKERS, "
        "DISPATCH_CONCURRENCY)",
    )
    parser.add_argument(
        "--capped-share",
        type=float,
        default=0.1,
        help="share of the contacts over the frequency cap (0: no earlier campaigns)",
    )
    parser.add_argument(
        "--plain",
        action="store_true",
        help="sent at once, without the world-wide audience and the footer",
    )
    parser.add_argument(
        "--variants",
        type=int,
        default=0,
        help="an A/B test of this many variants (2 to 4; 0: none)",
    )
    parser.add_argument(
        "--tracked-links",
        action="store_true",
        help="the message has a link, tracked: each recipient gets a short link",
    )
    parser.add_argument("--keep", action="store_true")
    parser.add_argument("--child", nargs=2, type=int, help=argparse.SUPPRESS)
    parser.add_argument("--simulator", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.simulator:
        run_simulator(args.simulator)
        return
    if args.child:
        common.setup_django(os.environ["DATABASE_URL"], os.environ["MEDIA_ROOT"])
        driver(*args.child)
        return

    import requests

    folder = common.workdir("dispatch-bench-")
    name = f"bench_dispatch_{os.getpid()}"
    url = common.fresh_database(args.database, name, folder)
    media = os.path.join(folder, "media")
    os.environ.pop("REDIS_URL", None)  # the ORM broker, the rate limit in the DB
    for key in ("PROJECT_ID", "KEY_ID", "KEY_SECRET", "APP_ID"):
        os.environ[f"SINCH_{key}"] = ""  # the bench always talks to the simulator
    os.environ["PRESEND_INLINE_RECIPIENTS"] = str(10**9)  # checked here, inline
    os.environ["Q_WORKERS"] = os.environ["DISPATCH_CONCURRENCY"] = str(args.workers)
    if not args.plain:
        use_guard_settings()
    sim_process, sim_url = start_simulator()
    os.environ["SINCH_BATCH_API_URL"] = sim_url
    os.environ["SINCH_AUTH_URL"] = sim_url
    try:
        common.setup_django(url, media, debug=False)
        every = round(1 / args.capped_share) if args.capped_share else 0
        campaign_id, user_id, facts = prepare(
            args.n, every, not args.plain, args.variants, args.tracked_links
        )
        from django.db import connections

        connections.close_all()
        load_before = os.getloadavg()
        sim_cpu_before = cpu_seconds(sim_process.pid)
        common.say("launching, with a cluster in a measured child process")
        server = common.postgres_cpu_reader() if args.database == "postgres" else None
        measured = common.run_measured(
            [common.PYTHON, __file__, "--child", str(campaign_id), str(user_id)],
            server_cpu=server,
        )
        load_after = os.getloadavg()
        sim_cpu = cpu_seconds(sim_process.pid) - sim_cpu_before
        if measured.returncode != 0:
            raise SystemExit(f"the run failed (exit {measured.returncode})")
        timed = json.loads(measured.stdout.strip().splitlines()[-1])
        common.say(f"run: {json.dumps(timed)}")
        sim = requests.get(sim_url + BENCH_PATH, timeout=600).json()
        found, problems = verify(campaign_id, args.n, sim, every, not args.plain)
        for problem in problems:
            common.say(f"WRONG: {problem}")
        wall = timed["launch_to_accepted_s"]
        target_wall_s = TARGET_PLAIN_WALL_S if args.plain else TARGET_WALL_S
        result = {
            "recipients": found["recipients_submitted"],
            "batches_posted": found["posts"],
            "recipients_in_two_batches": found["recipients_in_two_batches"],
            "wall_s": round(wall, 2),
            "peak_rss_mb": round(measured.peak_rss_mb, 1),
            "peak_tree_rss_mb": round(measured.peak_tree_rss_mb, 1),
            "peak_tree_pss_mb": round(measured.peak_tree_pss_mb, 1),
            "freeze_s": round(timed["freeze_s"], 2),
            "dispatch_s": round(timed["dispatch_s"], 2),
            "presend_s": facts["presend_s"],
            "capped_share": args.capped_share,
            "guards": not args.plain,
            "variants": args.variants,
            "tracked_links": args.tracked_links,
            "short_links": short_links_of(campaign_id),
            "audience": facts["audience"],
            "cpu_s": round(measured.cpu_s, 1),
            "simulator_cpu_s": round(sim_cpu, 1),
            **common.cpu_figures(measured, sim_cpu),
            "database": args.database,
            "workers": args.workers,
            **{k: v for k, v in found.items() if k != "recipients_submitted"},
            "load_avg_before": round(load_before[0], 2),
            "load_avg_after": round(load_after[0], 2),
            "machine": f"{os.cpu_count()} cores, {platform.machine()}, "
            f"{platform.processor() or ''} Python {platform.python_version()}",
            "correct": not problems,
            "target_wall_s": target_wall_s,
            "meets_target": (
                not problems
                and wall <= target_wall_s
                and measured.peak_rss_mb <= TARGET_PEAK_RSS_MB
            ),
        }
    finally:
        sim_process.terminate()
        sim_process.wait(timeout=30)
        if not args.keep:
            common.remove_run(folder, args.database, name)
    common.emit(result)


if __name__ == "__main__":
    main()
