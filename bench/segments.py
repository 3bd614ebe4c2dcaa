"""Segments at 1,000,000 contacts: the live count and the freeze.

    python bench/segments.py [--n 1000000] [--database sqlite|postgres]
        [--repeat 5] [--keep]

Fills a fresh database with N contacts (languages, attributes, numbers of
several countries, SMS marketing consent mixed, two lists, and two earlier
campaigns' recipients and replies for engagement), times the live count
(campaigns.segments.evaluate.count) of typical definitions, each --repeat
times after a warm-up (median reported), then launches a campaign on one
typical segment and times its freeze (campaigns.dispatch.freeze). The last
line of stdout is JSON: contacts, count_ms_max (slowest definition),
freeze_s, count_ms per definition, and rebuild_s. Target: count <= 500 ms.

The rows go in with raw SQL, past the identity model that keeps each
contact's segment facts (contacts.segment_facts) fresh; so, as for data
that existed before those facts did, the facts are then computed by
segment_facts.rebuild (what the migration and `manage.py
rebuild_segment_facts` run), timed apart as rebuild_s.
"""

import argparse
import json
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

NUMBERS = (  # (country, number of contact i)
    ("US", lambda i: f"+1{2012000000 + i}"),
    ("US", lambda i: f"+1{3122000000 + i}"),
    ("CA", lambda i: f"+1{4162000000 + i}"),
    ("GB", lambda i: f"+44{7400000000 + i}"),
    ("FR", lambda i: f"+33{612000000 + i}"),
    ("DE", lambda i: f"+49{15110000000 + i}"),
    ("ES", lambda i: f"+34{612000000 + i}"),
    ("BR", lambda i: f"+55{11910000000 + i}"),
)
LANGUAGES = ["en"] * 5 + ["fr", "de", "es", "pt-BR", ""]
TIERS = ["gold", "silver", "bronze", "", "silver"]
STATES = ["OPTED_IN"] * 7 + ["OPTED_OUT", "UNKNOWN", "UNKNOWN"]


def fill(n: int) -> dict:
    """Insert n contacts with their data; return the ids the definitions use."""
    from django.db import connection, transaction

    from campaigns.models import Batch, Campaign
    from contacts.models import ContactList

    now = datetime.now(UTC)
    lists = [ContactList.objects.create(name=name).pk for name in ("Newsletter", "VIP")]
    from campaigns.models import MessageTemplate

    template = MessageTemplate.objects.create(name="Bench", text="Hi ${first_name}")
    earlier = []
    for k in range(2):
        campaign = Campaign.objects.create(
            name=f"Earlier {k}", template=template, status="COMPLETED"
        )
        batch = Batch.objects.create(
            campaign=campaign,
            sequence=1,
            metadata_key=f"bench-{k}",
            submitted_at=now - timedelta(days=10 + 20 * k),
            status="ACCEPTED",
        )
        earlier.append((campaign.pk, batch.pk))
    rng, vendor, chunk = random.Random(7), connection.vendor, 50_000
    recipient_id = inbound_id = 0
    for start in range(0, n, chunk):
        ids = range(start + 1, min(n, start + chunk) + 1)
        contacts, identities, members, recipients, replies = [], [], [], [], []
        for i in ids:
            attributes = {"tier": TIERS[i % 5], "points": str(rng.randint(0, 500))}
            if i % 3 == 0:
                attributes["birthday"] = f"19{50 + i % 50}-0{1 + i % 9}-1{i % 10}"
            created = now - timedelta(days=i % 700)
            contacts.append(
                (
                    i,
                    f"First{i}",
                    f"Last{i % 5000}",
                    LANGUAGES[i % 10],
                    "",
                    json.dumps(attributes),
                    "",
                    created,
                    created,
                )
            )
            number = NUMBERS[i % len(NUMBERS)][1](i)
            identities.append(
                (i, i, "SMS", number, rng.choice(STATES), now, "UNKNOWN", now)
            )
            members.append((i, lists[i % 2], i, now, "IMPORT"))
            for k, (campaign_id, batch_id) in enumerate(earlier):
                if i % (3 + k) == 0:
                    recipient_id += 1
                    status = "DELIVERED" if i % 10 else "FAILED"
                    recipients.append(
                        (
                            recipient_id,
                            campaign_id,
                            batch_id,
                            i,
                            number,
                            status,
                            *(False, "[]", "{}", False, "", "", "", "", now, now),
                        )
                    )
                    if i % 50 == 0:
                        inbound_id += 1
                        replies.append(
                            (
                                inbound_id,
                                i,
                                campaign_id,
                                "SMS",
                                number,
                                "Yes",
                                *(now, False, "", "", f"in-{inbound_id}"),
                            )
                        )
        with transaction.atomic(), connection.cursor() as cur:
            insert_people(cur, vendor, contacts, identities, members)
            insert_rows(
                cur,
                vendor,
                "campaigns_recipient",
                "id, campaign_id, batch_id, contact_id, identity, status, "
                "is_test, fallback_identities, parameters, switched_channel, "
                "reason, failure_code, delivered_channel, message_id, "
                "created_at, updated_at",
                recipients,
            )
            insert_rows(
                cur,
                vendor,
                "campaigns_inboundmessage",
                "id, contact_id, campaign_id, channel, identity, text, received_at, "
                "campaign_inferred, keyword, review, message_id",
                replies,
            )
        say(f"filled {ids[-1]:,} / {n:,} contacts")
    return {"lists": lists, "campaigns": [c for c, _ in earlier]}


def _finish(vendor: str) -> None:
    from django.db import connection

    with connection.cursor() as cur:
        if vendor == "postgresql":
            for table in (
                "contacts_contact",
                "contacts_channelidentity",
                "contacts_listmembership",
                "campaigns_recipient",
                "campaigns_inboundmessage",
            ):
                cur.execute(
                    f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), "
                    f"(SELECT COALESCE(MAX(id), 1) FROM {table}))"
                )
        # As autovacuum leaves a table: visibility map set (index-only scans).
        cur.execute("VACUUM ANALYZE" if vendor == "postgresql" else "ANALYZE")


def definitions(ids: dict) -> dict:
    sms_in = {
        "field": "consent",
        "channel": "SMS",
        "purpose": "MARKETING",
        "op": "is",
        "value": "OPTED_IN",
    }

    def all_of(*conditions, match="all"):
        return {
            "match": "all",
            "groups": [{"match": match, "conditions": list(conditions)}],
        }

    first, second = ids["campaigns"]
    return {
        "language_and_consent": all_of(
            {"field": "language", "op": "equals", "value": "fr"}, sms_in
        ),
        "country_in": all_of(
            {"field": "country", "op": "in", "value": ["FR", "DE", "ES"]}, sms_in
        ),
        "country_us_shared_code": all_of(
            {"field": "country", "op": "equals", "value": "US"}
        ),
        "list_not_in_other": all_of(
            {"field": "list", "op": "in", "value": [ids["lists"][0]]},
            {"field": "list", "op": "not_in", "value": [ids["lists"][1]]},
        ),
        "engagement_or": all_of(
            {"field": "engagement", "op": "replied", "campaign": first},
            {"field": "engagement", "op": "delivered", "campaign": second},
            match="any",
        ),
        "not_messaged_30_days": all_of(
            {"field": "last_messaged", "op": "not_in_days", "value": 30}, sms_in
        ),
        "attribute_tier_and_points": all_of(
            {"field": "attribute", "key": "tier", "op": "equals", "value": "gold"},
            {"field": "attribute", "key": "points", "op": "gt", "value": 250},
        ),
        "created_within_90_days": all_of(
            {"field": "created_at", "op": "within_days", "value": 90}
        ),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=1_000_000)
    parser.add_argument("--database", choices=["sqlite", "postgres"], default="sqlite")
    parser.add_argument("--db-name", default="bench_segments")
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--keep", action="store_true", help="keep the database")
    args = parser.parse_args()

    folder = workdir("bench-segments-")
    setup_django(
        fresh_database(args.database, args.db_name, folder), folder, debug=False
    )
    try:
        measure_counts(args)
    finally:
        if not args.keep:
            remove_run(folder, args.database, args.db_name)


def measure_counts(args) -> None:
    say(f"filling {args.n:,} contacts ({args.database})")
    ids = fill(args.n)
    from contacts import segment_facts

    started = time.perf_counter()
    segment_facts.rebuild()
    rebuild_s = round(time.perf_counter() - started, 2)
    say(f"segment facts rebuilt in {rebuild_s} s")
    from django.db import connection

    _finish(connection.vendor)  # after the rebuild: its rows vacuumed too
    from campaigns.segments.evaluate import count
    from contacts.countries import country_prefixes

    for country in ("US", "CA"):  # compiled once per process, then cached
        country_prefixes(country)
    result = {
        "contacts": args.n,
        "database": args.database,
        "count_ms": {},
        "matched": {},
        "rebuild_s": rebuild_s,
    }
    for name, definition in definitions(ids).items():
        result["matched"][name] = count(definition)  # warm-up
        times = []
        for _ in range(args.repeat):
            started = time.perf_counter()
            count(definition)
            times.append((time.perf_counter() - started) * 1000)
        result["count_ms"][name] = round(statistics.median(times), 1)
        say(
            f"{name}: {result['matched'][name]:,} matched, "
            f"median {result['count_ms'][name]} ms"
        )
    result["count_ms_max"] = max(result["count_ms"].values())
    result["freeze_s"], result["frozen"] = freeze(
        definitions(ids)["language_and_consent"]
    )
    say(f"freeze: {result['frozen']:,} recipients in {result['freeze_s']} s")
    emit(result)


def freeze(definition: dict) -> tuple[float, int]:
    """Launch a campaign on one segment and time its freeze (no dispatch)."""
    from unittest import mock

    from campaigns.dispatch import freeze as freezing
    from campaigns.models import Campaign, MessageTemplate, Recipient, Segment

    segment = Segment.objects.create(name="French, SMS opted in", definition=definition)
    campaign = Campaign.objects.create(
        name="On a segment",
        template=MessageTemplate.objects.get(name="Bench"),
        status=Campaign.Status.LAUNCHING,
    )
    campaign.segments.add(segment)
    # Only the freeze is timed: the drains that submit to Sinch are not started.
    with (
        mock.patch.object(freezing.drain, "start"),
        mock.patch.object(freezing.drain, "schedule_release"),
    ):
        started = time.perf_counter()
        freezing.freeze_recipients(campaign.pk)
        elapsed = time.perf_counter() - started
    frozen = Recipient.objects.filter(campaign=campaign).count()
    return round(elapsed, 2), frozen


if __name__ == "__main__":
    main()
