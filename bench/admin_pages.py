"""Admin pages at 1,000,000 contacts: changelist, phone search, consent filter,
sort by name, name search; and the campaign list: a page of 100 campaigns with
N recipients in total.

    python bench/admin_pages.py [--n 1000000] [--database sqlite|postgres] [--keep]

Fills a fresh database with N contacts (one SMS identity each, mixed consent,
two lists), then requests each page through Django's test client as a
logged-in superuser and measures server time (request in, response out). Each
page is requested --repeat times after one warm-up; the figure is the median,
the worst is reported too. Target: <= 300 ms each.
"""

import argparse
import os
import random
import statistics
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import (
    emit,
    fresh_database,
    insert_people,
    remove_run,
    say,
    setup_django,
    workdir,
)

# A world-wide audience (`fill(world=True)`): contact i's number comes from
# the i % 10-th of these, each a range of valid numbers; every seventh contact
# has a time zone of its own (the rest are inferred from the number).
WORLD_NUMBERS = (
    lambda i: f"+1{2012000000 + i}",  # New Jersey: America/New_York
    lambda i: f"+1{2012000000 + i}",
    lambda i: f"+1{3122000000 + i}",  # Chicago
    lambda i: f"+1{4152000000 + i}",  # San Francisco
    lambda i: f"+44{7400000000 + i}",  # UK mobile: London and the islands
    lambda i: f"+49{15110000000 + i}",  # Germany
    lambda i: f"+61{412000000 + i}",  # Australian mobile: eight zones
    lambda i: f"+55{11910000000 + i}",  # Sao Paulo
    lambda i: f"+81{9010000000 + i}",  # Japan
    lambda i: f"+1{3032000000 + i}",  # Denver
)
WORLD_OWN_ZONE = "Europe/Paris"


def fill(n: int, *, world: bool = False) -> str:
    """Insert n contacts with identities, consent and memberships; return a phone.

    By default every contact is in UTC with a New Jersey number; `world`
    spreads the numbers over four countries and ten time zones
    (WORLD_NUMBERS) and leaves the contacts' own zone empty but for every
    seventh (WORLD_OWN_ZONE).
    """
    from django.db import connection, transaction

    from contacts.models import ContactList

    now = datetime.now(UTC)
    lists = [
        ContactList.objects.create(name="Newsletter").pk,
        ContactList.objects.create(name="VIP").pk,
    ]
    rng = random.Random(7)
    states = ["OPTED_IN"] * 8 + ["OPTED_OUT", "UNKNOWN"]
    chunk = 50_000
    vendor = connection.vendor
    for start in range(0, n, chunk):
        stop = min(n, start + chunk)
        ids = range(start + 1, stop + 1)
        contacts = [
            (i, f"First{i}", f"Last{i % 5000}", "en", zone, "{}", "", now, now)
            for i in ids
            for zone in [_zone(i, world)]
        ]
        identities = []
        for i in ids:
            state = rng.choice(states)
            identities.append(
                (i, i, "SMS", _number(i, world), state, now, "UNKNOWN", now)
            )
        members = [(i, lists[i % 2], i, now, "IMPORT") for i in ids]
        with transaction.atomic(), connection.cursor() as cur:
            insert_people(cur, vendor, contacts, identities, members)
        say(f"filled {stop:,} / {n:,} contacts")
    if vendor == "postgresql":
        with connection.cursor() as cur:
            for table in (
                "contacts_contact",
                "contacts_channelidentity",
                "contacts_listmembership",
            ):
                cur.execute(
                    f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), "
                    f"(SELECT MAX(id) FROM {table}))"
                )
            cur.execute("ANALYZE")
    else:
        with connection.cursor() as cur:
            cur.execute("ANALYZE")
    return f"+1{2012000000 + n // 2}"


def fill_campaigns(recipients: int, campaigns: int = 100) -> None:
    """`campaigns` finished campaigns sharing `recipients` recipients, as the
    launch and the receipts leave their kept counts (campaigns.counters: what
    the campaign list reads), each with a few replies and a cost estimate."""
    from django.utils import timezone

    from campaigns.models import (
        Campaign,
        CampaignCount,
        InboundMessage,
        MessageTemplate,
    )

    template = MessageTemplate.objects.create(name="Bench", text="Hi ${first_name}!")
    now = timezone.now()
    made = Campaign.objects.bulk_create(
        Campaign(
            name=f"Bench campaign {n}",
            template=template,
            status=Campaign.Status.COMPLETED,
            launched_at=now,
            presend={"cost": f"EUR {n}.00", "cost_total": f"{n}.00"},
        )
        for n in range(campaigns)
    )
    each = recipients // campaigns
    counts, replies = [], []
    for n, campaign in enumerate(made):
        failed = each * (n % 7) // 100
        for status, count in (
            ("DELIVERED", each - failed - 10),
            ("FAILED", failed),
            ("EXCLUDED", 10),
        ):
            counts.append(CampaignCount(campaign=campaign, status=status, count=count))
        replies += [
            InboundMessage(
                campaign=campaign,
                received_at=now,
                channel="SMS",
                identity="+12015550100",
                keyword="STOP" if r % 4 == 0 else "",
            )
            for r in range(n % 20)
        ]
    CampaignCount.objects.bulk_create(counts)
    InboundMessage.objects.bulk_create(replies)
    say(f"filled {campaigns} campaigns, {each * campaigns:,} recipients in total")


def _zone(i: int, world: bool) -> str:
    if not world:
        return "UTC"
    return WORLD_OWN_ZONE if i % 7 == 0 else ""


def _number(i: int, world: bool) -> str:
    if not world:
        return f"+1{2012000000 + i}"
    return WORLD_NUMBERS[i % len(WORLD_NUMBERS)](i)


def measure(client, url: str, repeat: int, rows: int | None) -> tuple[float, float]:
    response = client.get(url)  # warm-up, and a check that the page is right
    assert response.status_code == 200, (url, response.status_code)
    found = response.content.count(b'name="_selected_action"')
    assert rows is None or found == rows, f"{url}: {found} rows, expected {rows}"
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        response = client.get(url)
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

    folder = workdir("bench-admin-")
    os.environ["ALLOWED_HOSTS"] = "*"
    setup_django(fresh_database(args.database, "bench_admin", folder), folder)
    try:
        measure_pages(args)
    finally:
        if not args.keep:
            remove_run(folder, args.database, "bench_admin")


def measure_pages(args) -> None:
    say(f"filling {args.n:,} contacts ({args.database})")
    phone = fill(args.n)
    fill_campaigns(args.n)

    from django.contrib.auth.models import User
    from django.test import Client

    user = User.objects.create_superuser("bench", password="bench")
    client = Client()
    client.force_login(user)
    base = "/admin/contacts/contact/"
    national = f"({phone[2:5]}) {phone[5:8]}-{phone[8:]}"
    pages = {
        "changelist": (base, 50),
        "phone_search": (f"{base}?q={national}", 1),
        "consent_filter": (f"{base}?consent=MARKETING:OPTED_OUT", None),
        "sorted_by_name": (f"{base}?o=1", 50),
        # 200 contacts have this last name (fill: Last{i % 5000}).
        "name_search": (f"{base}?q=Last4242", 50),
        "campaign_list": ("/admin/campaigns/campaign/", 100),
        "campaign_list_by_delivered": ("/admin/campaigns/campaign/?o=-4", 100),
    }
    result = {"contacts": args.n, "database": args.database}
    for name, (url, rows) in pages.items():
        median, worst = measure(client, url, args.repeat, rows)
        say(f"{name}: median {median:.1f} ms, worst {worst:.1f} ms ({url})")
        result[f"{name}_ms"] = round(median, 1)
        result[f"{name}_worst_ms"] = round(worst, 1)
    emit(result)


if __name__ == "__main__":
    main()
