"""Pre-send check of a 1,000,000-recipient audience.

    python bench/presend_check.py [--n 1000000] [--database sqlite|postgres]
        [--capped-share 0.1] [--plain]

Fills a fresh database with N contacts (one SMS identity each, 80 % opted in,
the rest opted out or without consent; half on each of two lists), creates a
template using a contact field, a custom attribute with a default and a
campaign value, and a campaign on both lists. Then runs the check in a child
process (DEBUG off, as in production) through the same task the admin
queues (run in place of the worker), and measures its wall time and peak RSS.
The figures are checked against what the fill put in: every contact counted
once, the opted-out and no-consent people excluded, the CSV holding one row
per recipient.

With the frequency cap (FREQUENCY_CAP, default 2/7d,1/1d): two earlier
marketing campaigns, accepted by Sinch and delivered, reached 40 % and 10 % of
the contacts (bench/_prior.py), so --capped-share (default 0.1) of the
audience is over the cap and excluded; --capped-share 0 runs without them.

With the other compliance guards (the default; --plain leaves them out): the
numbers spread over four countries and ten time zones (admin_pages.fill with
world=True), the campaign is sent at 10:00 in each recipient's local time
under quiet hours (bench/_guards.py), and the template has no opt-out wording
of its own, so the compliance footer is added to every message. The check's
time zones must then account for every recipient in at least 8 zones.

Target (design §8): <= 30 s and peak RSS <= 300 MB for 1,000,000 recipients.
"""

import argparse
import csv
import json
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _common as common
from _guards import local_time_fields, use_guard_settings, zone_problems
from _prior import add_prior_marketing, is_capped
from admin_pages import fill

TARGET_WALL_S = 30
TARGET_PEAK_RSS_MB = 300


def prepare(n: int, every: int, guards: bool) -> int:
    """Fill the database, add the earlier campaigns of one contact in `every`
    over the cap (none when 0), create the campaign (sent in local time,
    with the footer, when `guards`); return its id."""
    from django.utils import timezone

    from campaigns.models import Campaign, MessageTemplate, TemplateParameter
    from contacts.models import ContactList

    fill(n, world=guards)
    add_prior_marketing(n, every)
    text = "Hi ${first_name}, ${offer} for ${tier} members this week only."
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
        **(local_time_fields(timezone.now()) if guards else {}),
    )
    campaign.lists.set(ContactList.objects.all())
    return campaign.pk


def child(campaign_id: int) -> None:
    """Run the check as the worker does and print what it found."""
    from campaigns.authoring.presend import request_check
    from campaigns.models import Campaign

    started = time.perf_counter()
    # PRESEND_INLINE_RECIPIENTS is raised for this process: the check runs
    # here, through the same claim and progress code as on a worker.
    request_check(Campaign.objects.get(pk=campaign_id))
    wall = time.perf_counter() - started
    campaign = Campaign.objects.get(pk=campaign_id)
    summary = campaign.presend or {}
    print(
        json.dumps(
            {
                "check_s": wall,
                "state": campaign.presend_state,
                "error": campaign.presend_error,
                "audience": summary.get("audience"),
                "ok": summary.get("ok"),
                "excluded": summary.get("excluded"),
                "blocking": summary.get("blocking"),
                "excluded_by_reason": summary.get("excluded_by_reason"),
                "frequency_cap_excluded": (summary.get("frequency_cap") or {}).get(
                    "excluded"
                ),
                "send_times": summary.get("send_times"),
                "footer": (summary.get("footer") or {}).get("note"),
                "histogram": summary.get("histogram"),
                "time": summary.get("time"),
                "cost": summary.get("cost"),
            }
        )
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=1_000_000)
    parser.add_argument("--database", choices=["sqlite", "postgres"], default="sqlite")
    parser.add_argument(
        "--capped-share",
        type=float,
        default=0.1,
        help="share of the audience over the frequency cap (0: no earlier campaigns)",
    )
    parser.add_argument(
        "--plain",
        action="store_true",
        help="without local-time sending, the world-wide audience and the footer",
    )
    parser.add_argument("--keep", action="store_true")
    parser.add_argument("--child", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        common.setup_django(os.environ["DATABASE_URL"], os.environ["MEDIA_ROOT"])
        child(args.child)
        return

    folder = common.workdir("presend-bench-")
    name = f"bench_presend_{os.getpid()}"
    url = common.fresh_database(args.database, name, folder)
    media = os.path.join(folder, "media")
    if not args.plain:
        use_guard_settings()
    try:
        common.setup_django(url, media)
        common.say(f"filling {args.n:,} contacts ({args.database})")
        every = round(1 / args.capped_share) if args.capped_share else 0
        campaign_id = prepare(args.n, every, guards=not args.plain)
        from django.db import connections

        connections.close_all()
        common.say("running the pre-send check in a child process")
        env_debug = os.environ.pop("DEBUG", None)
        os.environ["DEBUG"] = "false"
        os.environ.setdefault("SECRET_KEY", "bench-" + name)
        os.environ.setdefault("ERASURE_HASH_KEY", "bench-" + name)
        os.environ["PRESEND_INLINE_RECIPIENTS"] = str(10**9)
        measured = common.run_measured(
            [common.PYTHON, __file__, "--child", str(campaign_id)]
        )
        if env_debug is not None:
            os.environ["DEBUG"] = env_debug
        if measured.returncode != 0:
            raise SystemExit(f"the check failed (exit {measured.returncode})")
        found = json.loads(measured.stdout.strip().splitlines()[-1])
        send_times = found.pop("send_times") or {}
        common.say(f"check: {json.dumps(found, ensure_ascii=False)}")
        problems = verify(args.n, found, media, campaign_id, every)
        if not args.plain:
            problems += zone_problems({"send_times": send_times}, found["ok"], 8)
        for problem in problems:
            common.say(f"WRONG: {problem}")
        result = {
            "recipients": found["audience"],
            "wall_s": round(found["check_s"], 2),
            "process_wall_s": round(measured.wall_s, 2),
            "peak_rss_mb": round(measured.peak_rss_mb, 1),
            "recipients_per_s": round(found["audience"] / found["check_s"]),
            "ok": found["ok"],
            "excluded": found["excluded"],
            "excluded_by_frequency_cap": found["frequency_cap_excluded"],
            "capped_share": args.capped_share,
            "guards": not args.plain,
            "time_zones": len(send_times.get("zones") or {}),
            "held_by_quiet_hours": send_times.get("held"),
            "database": args.database,
            "correct": not problems,
            "meets_target": (
                not problems
                and found["check_s"] <= TARGET_WALL_S
                and measured.peak_rss_mb <= TARGET_PEAK_RSS_MB
            ),
        }
    finally:
        if not args.keep:
            common.remove_run(folder, args.database, name)
    common.emit(result)


def verify(n: int, found: dict, media: str, campaign_id: int, every: int) -> list[str]:
    """What the fill put in, compared with what the check reported."""
    from contacts.models import ChannelIdentity

    counts = dict.fromkeys(("OPTED_IN", "OPTED_OUT", "UNKNOWN"), 0)
    for state, count in _consent_counts(ChannelIdentity):
        counts[state] = count
    opted_in = ChannelIdentity.objects.filter(marketing_consent="OPTED_IN")
    capped = sum(
        1
        for contact in opted_in.values_list("contact_id", flat=True).iterator()
        if is_capped(contact, every)
    )
    problems = []
    if found["state"] != "DONE":
        problems.append(f"state {found['state']}: {found['error']}")
    if found["audience"] != n:
        problems.append(f"audience {found['audience']} != {n}")
    if found["ok"] != counts["OPTED_IN"] - capped:
        problems.append(
            f"ok {found['ok']} != opted in {counts['OPTED_IN']} - capped {capped}"
        )
    if found["excluded"] != counts["OPTED_OUT"] + counts["UNKNOWN"] + capped:
        problems.append(f"excluded {found['excluded']} != {counts} + capped {capped}")
    if found["frequency_cap_excluded"] != capped:
        problems.append(
            f"excluded by the cap {found['frequency_cap_excluded']} != {capped}"
        )
    csv_file = Path(media) / "presend" / f"campaign-{campaign_id}.csv"
    # Records, not lines: a rendered text may span lines (the compliance
    # footer starts on a line of its own).
    with open(csv_file, newline="", encoding="utf-8") as handle:
        rows = sum(1 for _ in csv.reader(handle)) - 1
    if rows != n:
        problems.append(f"CSV has {rows} rows, expected {n}")
    return problems


def _consent_counts(model):
    from django.db.models import Count

    return model.objects.values_list("marketing_consent").annotate(Count("id"))


if __name__ == "__main__":
    main()
