"""Delivery dashboard and recipients changelist of a 1,000,000-recipient campaign.

    python bench/dashboard.py [--n 1000000] [--database sqlite|postgres]
        [--repeat 5] [--keep]

Fills a fresh database with N contacts (one SMS identity each) and one
launched campaign of N recipients as delivery left them: 10 % excluded (three
reasons), the rest in 1000-recipient batches accepted and processed by Sinch,
and of those 70 % delivered, 10 % read, 6 % failed (five reason codes, one
batch failed as a whole), 4 % queued on the channel, 10 % awaiting a receipt;
two hours of per-minute timeline; the kept counts rebuilt with
counters.recount. A second, small campaign shares the tables.

Then requests, through Django's test client as a logged-in superuser (DEBUG
off), each page --repeat times after a warm-up and reports the median server
time (request in, response out) and the worst: the dashboard, its live JSON
(polled every 3 s by the page), and the recipients changelist filtered to the
campaign: page 1, the FAILED status filter, a failure-code filter and a phone
search. The dashboard's failure and exclusion breakdowns are cached while the
rows they count are unchanged: `dashboard_uncached_ms` and
`dashboard_live_uncached_ms` are the first view and a poll after new
receipts. Target (issue 6): <= 300 ms each.
"""

import argparse
import os
import random
import statistics
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import (
    emit,
    fresh_database,
    insert_people,
    insert_rows,
    remove_run,
    say,
    setup_django,
    workdir,
)

BATCH = 1000
CODES = [
    "RECIPIENT_NOT_REACHABLE",
    "RECIPIENT_NOT_REACHABLE",
    "DELIVERY_TIMED_OUT",
    "CHANNEL_FAILURE",
    "DELIVERY_REJECTED_DUE_TO_POLICY",
]
EXCLUDED = ["opted out", "no consent", "missing parameter first_name"]


def phone(i: int) -> str:
    return f"+1{2012000000 + i}"


def fill(n: int) -> int:
    """Contacts, the campaign, its batches, recipients and timeline; its pk."""
    from django.db import connection, transaction

    from campaigns import counters
    from campaigns.models import Batch, Campaign, CampaignTimeline, MessageTemplate

    now = datetime.now(UTC)
    vendor = connection.vendor
    template = MessageTemplate.objects.create(name="Bench", text="Hi ${first_name}")
    small = Campaign.objects.create(
        name="Earlier", template=template, status="COMPLETED"
    )
    campaign = Campaign.objects.create(
        name="Big sale",
        template=template,
        status="SUBMITTED",
        launched_at=now - timedelta(hours=2),
        last_receipt_at=now,
    )
    rng = random.Random(7)
    excluded_n = n // 10
    sent = n - excluded_n
    n_batches = -(-sent // BATCH)
    Batch.objects.bulk_create(
        Batch(
            campaign=campaign,
            sequence=s + 1,
            size=min(BATCH, sent - s * BATCH),
            metadata_key=f"bench-{s}",
            status="FAILED" if s == 3 else "ACCEPTED",
            sinch_batch_id="" if s == 3 else f"01BENCH{s:019d}",
            remote_status="" if s == 3 else "PROCESSED",
            last_error="Sinch refused the batch: invalid request" if s == 3 else "",
            attempts=1,
            submitted_at=now - timedelta(hours=2),
        )
        for s in range(n_batches)
    )
    batch_ids = dict(
        Batch.objects.filter(campaign=campaign).values_list("sequence", "pk")
    )
    chunk = 50_000
    rid = 0
    for start in range(0, n, chunk):
        stop = min(n, start + chunk)
        contacts, identities, recipients = [], [], []
        for i in range(start + 1, stop + 1):
            contacts.append((i, f"First{i}", "", "en", "UTC", "{}", "", now, now))
            identities.append((i, i, "SMS", phone(i), "OPTED_IN", now, "UNKNOWN", now))
            rid += 1
            k = i - 1
            if k < excluded_n:
                row = (None, None, "EXCLUDED", EXCLUDED[k % 3], "", "")
            else:
                pos = k - excluded_n
                seq = pos // BATCH + 1
                r = rng.random()
                if seq == 4:
                    status, code, reason = "FAILED", "", "Sinch refused the batch"
                elif r < 0.70:
                    status, code, reason = "DELIVERED", "", ""
                elif r < 0.80:
                    status, code, reason = "READ", "", ""
                elif r < 0.86:
                    status, code, reason = "FAILED", rng.choice(CODES), ""
                elif r < 0.90:
                    status, code, reason = "QUEUED_ON_CHANNEL", "", ""
                else:
                    status, code, reason = "SUBMITTED", "", ""
                row = (
                    batch_ids[seq],
                    pos % BATCH,
                    status,
                    reason,
                    code,
                    f"01MSG{i:021d}",
                )
            batch, index, status, reason, code, mid = row
            recipients.append(
                (
                    rid,
                    campaign.pk,
                    batch,
                    index,
                    i,
                    False,
                    phone(i),
                    "{}",
                    status,
                    reason,
                    code,
                    False,
                    mid or "",
                    now,
                    now,
                )
            )
        with transaction.atomic(), connection.cursor() as cur:
            insert_people(cur, vendor, contacts, identities)
            insert_rows(
                cur,
                vendor,
                "campaigns_recipient",
                'id, campaign_id, batch_id, "index", contact_id, is_test, identity, '
                "parameters, status, reason, failure_code, switched_channel, "
                "message_id, created_at, updated_at, fallback_identities, "
                "delivered_channel",
                [(*row, "[]", "") for row in recipients],
            )
        say(f"filled {stop:,} / {n:,} recipients")
    # A small earlier campaign after the big one in id order.
    with transaction.atomic(), connection.cursor() as cur:
        insert_rows(
            cur,
            vendor,
            "campaigns_recipient",
            'id, campaign_id, batch_id, "index", contact_id, is_test, identity, '
            "parameters, status, reason, failure_code, switched_channel, "
            "message_id, created_at, updated_at, fallback_identities, "
            "delivered_channel",
            [
                (
                    rid + j + 1,
                    small.pk,
                    None,
                    None,
                    j + 1,
                    False,
                    phone(j + 1),
                    "{}",
                    "DELIVERED",
                    "",
                    "",
                    False,
                    "",
                    now,
                    now,
                    "[]",
                    "",
                )
                for j in range(1000)
            ],
        )
    start = now.replace(second=0, microsecond=0) - timedelta(minutes=120)
    CampaignTimeline.objects.bulk_create(
        CampaignTimeline(
            campaign=campaign,
            minute=start + timedelta(minutes=m),
            status=status,
            count=rng.randint(100, 8000),
        )
        for m in range(120)
        for status in ("DELIVERED", "READ", "FAILED")
    )
    if vendor == "postgresql":
        with connection.cursor() as cur:
            for table in (
                "contacts_contact",
                "contacts_channelidentity",
                "campaigns_recipient",
            ):
                cur.execute(
                    f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), "
                    f"(SELECT MAX(id) FROM {table}))"
                )
    with connection.cursor() as cur:
        cur.execute("ANALYZE")
    counters.recount(campaign.pk)
    counters.recount(small.pk)
    return campaign.pk


def measure(client, url: str, repeat: int, check, before=None) -> tuple[float, float]:
    # Over "HTTPS", as behind production's TLS proxy: with DEBUG off a plain
    # HTTP request gets a 301 to https:// (README, "Production settings").
    response = client.get(url, secure=True)  # warm-up, and a check of the page
    assert response.status_code == 200, (url, response.status_code)
    check(response)
    times = []
    for _ in range(repeat):
        if before:
            before()
        started = time.perf_counter()
        response = client.get(url, secure=True)
        times.append((time.perf_counter() - started) * 1000)
        assert response.status_code == 200
    return statistics.median(times), max(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=1_000_000)
    parser.add_argument("--database", choices=["sqlite", "postgres"], default="sqlite")
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--keep", action="store_true", help="keep the database")
    args = parser.parse_args()

    load_before = os.getloadavg()[0]
    folder = workdir("bench-dashboard-")
    os.environ["ALLOWED_HOSTS"] = "*"
    # DEBUG off links pages to collectstatic's hashed files, as in production.
    os.environ["STATIC_ROOT"] = os.path.join(folder, "static")
    setup_django(
        fresh_database(args.database, "bench_dashboard", folder), folder, debug=False
    )
    try:
        measure_pages(args, load_before)
    finally:
        if not args.keep:
            remove_run(folder, args.database, "bench_dashboard")


def measure_pages(args, load_before: float) -> None:
    from django.core.management import call_command

    call_command("collectstatic", interactive=False, verbosity=0)
    say(f"filling {args.n:,} recipients ({args.database})")
    started = time.monotonic()
    pk = fill(args.n)
    fill_s = time.monotonic() - started

    from django.contrib.auth.models import User
    from django.test import Client

    user = User.objects.create_superuser("bench", password="bench")
    client = Client()
    client.force_login(user)
    base = f"/admin/campaigns/campaign/{pk}"
    recipients = f"/admin/campaigns/recipient/?campaign__id__exact={pk}"
    target = phone(args.n // 2)
    national = f"({target[2:5]}) {target[5:8]}-{target[8:]}"

    def rows(expected):
        def check(response):
            found = response.content.count(b'class="field-identity"')
            assert expected is None or found == expected, (
                f"{found} rows, expected {expected}"
            )

        return check

    def contains(text):
        def check(response):
            assert text.encode() in response.content, f"missing {text!r}"

        return check

    pages = {
        "dashboard": (f"{base}/dashboard/", contains("Why messages failed")),
        "dashboard_live": (f"{base}/dashboard/live/", contains('"percent_complete"')),
        "recipients": (recipients, rows(50)),
        "recipients_failed": (f"{recipients}&status__exact=FAILED", rows(50)),
        "recipients_failure_code": (
            f"{recipients}&status__exact=FAILED&failure_code=CHANNEL_FAILURE",
            rows(50),
        ),
        "recipients_phone_search": (f"{recipients}&q={national}", rows(1)),
    }
    result = {
        "recipients": args.n,
        "database": args.database,
        "fill_s": round(fill_s, 1),
    }
    from django.core.cache import cache

    # The failure and exclusion breakdowns are cached while their rows do not
    # change; *_uncached is the first view, or a poll after new receipts.
    pages["dashboard_uncached"] = (pages["dashboard"][0], pages["dashboard"][1])
    pages["dashboard_live_uncached"] = pages["dashboard_live"]
    for name, (url, check) in pages.items():
        before = cache.clear if name.endswith("_uncached") else None
        median, worst = measure(client, url, args.repeat, check, before)
        say(f"{name}: median {median:.1f} ms, worst {worst:.1f} ms ({url})")
        result[f"{name}_ms"] = round(median, 1)
        result[f"{name}_worst_ms"] = round(worst, 1)
    result["load_avg_before"] = round(load_before, 2)
    result["load_avg_after"] = round(os.getloadavg()[0], 2)
    emit(result)


if __name__ == "__main__":
    main()
