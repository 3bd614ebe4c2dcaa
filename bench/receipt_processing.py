"""Receipt processing: stored Sinch delivery receipts into recipient statuses
and campaign counters.

    python bench/receipt_processing.py [--recipients 250000]
        [--database sqlite|postgres]
        [--chunk 2000] [--keep]

Fills a fresh database with one submitted campaign of --recipients recipients
(250 batches of 1000 for the default, accepted, with Sinch batch ids) and
4 receipts per recipient, so 1,000,000 WebhookEvent rows by default, stored
as the webhook intake stores them (state NEW, a unique nonce, the raw body
exactly as the simulator signs and sends it: envelope, message_delivery_report,
the metadata JSON string with the recipient id, the campaign and `_batch_id`).
The mix per recipient (seeded):

- 70 %  WhatsApp: QUEUED_ON_CHANNEL, DELIVERED, READ, and DELIVERED again;
- 15 %  SMS: QUEUED_ON_CHANNEL, DELIVERED, and both again (fresh nonces);
- 10 %  QUEUED_ON_CHANNEL, FAILED (a reason code), FAILED and QUEUED again;
- 5 %   fallback: SWITCHING_CHANNEL, QUEUED_ON_CHANNEL, DELIVERED, READ.

Receipts arrive interleaved across recipients, in time order within windows
of 10,000 recipients, and one recipient in ten has two receipts swapped (out
of order). So a quarter of the receipts are duplicates or stale, as they are
when Sinch retries.

The timed part is one child process (DEBUG off, as in production; measured:
wall time, peak RSS) that calls `campaigns.tracking.receipts.process_pending()` until
no NEW event is left, as the `process_webhook_events` task does. Afterwards
the parent checks every recipient's status against what the receipts imply,
that every event is PROCESSED, and that the campaign's kept counters equal a
full count (`counters_match`). Target (issue 6): >= 5,000 receipts/s on
SQLite and on PostgreSQL. `load_avg_before` says how busy the shared machine
was.
"""

import argparse
import json
import os
import random
import secrets
import sys
import time
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _common as common

TARGET_PER_S = 5_000
BATCH_SIZE = 1000
WINDOW = 10_000

PATTERNS = [
    (0.70, "WHATSAPP", ["QUEUED_ON_CHANNEL", "DELIVERED", "READ", "DELIVERED"]),
    (0.15, "SMS", ["QUEUED_ON_CHANNEL", "DELIVERED", "QUEUED_ON_CHANNEL", "DELIVERED"]),
    (0.10, "SMS", ["QUEUED_ON_CHANNEL", "FAILED", "FAILED", "QUEUED_ON_CHANNEL"]),
    (0.05, "RCS", ["SWITCHING_CHANNEL", "QUEUED_ON_CHANNEL", "DELIVERED", "READ"]),
]
FINAL = {"READ": 3, "DELIVERED": 2, "QUEUED_ON_CHANNEL": 1}
REASONS = ["RECIPIENT_NOT_REACHABLE", "DELIVERY_TIMED_OUT", "CHANNEL_FAILURE"]


def expected_status(statuses: list[str]) -> str:
    if "FAILED" in statuses:
        return "FAILED"
    return max((s for s in statuses if s in FINAL), key=FINAL.get)


def prepare(recipients: int) -> tuple[int, Counter]:
    """The campaign, its batches, recipients and stored receipts."""
    from django.db import connection, transaction

    from campaigns import counters
    from campaigns.models import Batch, Campaign, MessageTemplate
    from sinch.config import (
        SIMULATOR_APP_ID,
        SIMULATOR_KEY_ID,
        SIMULATOR_KEY_SECRET,
        SIMULATOR_PROJECT_ID,
        SIMULATOR_WEBHOOK_SECRET,
    )
    from sinch.simulator import Account, events
    from sinch.simulator.state import Message

    account = Account(
        SIMULATOR_PROJECT_ID,
        SIMULATOR_APP_ID,
        SIMULATOR_KEY_ID,
        SIMULATOR_KEY_SECRET,
        SIMULATOR_WEBHOOK_SECRET,
    )
    vendor = connection.vendor
    adapt = connection.ops.adapt_datetimefield_value
    now = datetime.now(UTC)
    stamp = adapt(now)
    template = MessageTemplate.objects.create(name="Bench", text="Hi ${first_name}")
    campaign = Campaign.objects.create(
        name="Bench", template=template, status=Campaign.Status.SUBMITTED
    )
    n_batches = (recipients + BATCH_SIZE - 1) // BATCH_SIZE
    batches = Batch.objects.bulk_create(
        Batch(
            campaign=campaign,
            sequence=s + 1,
            size=min(BATCH_SIZE, recipients - s * BATCH_SIZE),
            metadata_key=f"bench-{s + 1}",
            status=Batch.Status.ACCEPTED,
            sinch_batch_id=f"01BENCHBATCH{s + 1:014d}",
            remote_status="PROCESSED",
            submitted_at=now,
        )
        for s in range(n_batches)
    )
    batch_ids = [b.pk for b in sorted(batches, key=lambda b: b.sequence)]
    rng = random.Random(7)
    expected: Counter = Counter()
    event_id = 0
    base = now - timedelta(hours=1)
    weights = [p[0] for p in PATTERNS]
    for start in range(0, recipients, WINDOW):
        stop = min(recipients, start + WINDOW)
        rows, receipts = [], []
        for i in range(start, stop):
            rid = i + 1
            seq = i // BATCH_SIZE
            rows.append(
                (
                    rid,
                    campaign.pk,
                    batch_ids[seq],
                    i % BATCH_SIZE,
                    False,
                    f"+1{2012000000 + rid}",
                    "{}",
                    "SUBMITTED",
                    "",
                    "",
                    False,
                    "",
                    stamp,
                    stamp,
                )
            )
            _, channel, statuses = rng.choices(PATTERNS, weights)[0]
            expected[expected_status(statuses)] += 1
            sent_at = (i - start) * 0.05
            times = [sent_at + 2.0 * (k + 1) + rng.random() for k in range(4)]
            if rng.random() < 0.1:
                k = rng.randrange(3)
                times[k], times[k + 1] = times[k + 1], times[k]
            metadata = json.dumps(
                {
                    "cm_campaign": str(campaign.pk),
                    "cm_recipient": str(rid),
                    "_batch_id": f"01BENCHBATCH{seq + 1:014d}",
                },
                separators=(",", ":"),
            )
            message = Message(
                message_id=f"01BENCHMSG{rid:016d}", contact_id="", metadata=metadata
            )
            reason = rng.choice(REASONS)
            for at, status in zip(times, statuses, strict=True):
                receipts.append((at, message, status, channel, rid, reason))
        receipts.sort(key=lambda r: r[0])
        events_rows = []
        for at, message, status, channel, rid, reason in receipts:
            moment = base + timedelta(seconds=start * 0.05 + at)
            payload = events.delivery_report(
                account,
                message,
                status=status,
                channel=channel,
                identity=f"+1{2012000000 + rid}",
                reason=reason if status in ("FAILED", "SWITCHING_CHANNEL") else "",
                mode="DISPATCH",
                correlation_id="",
                now=moment.timestamp(),
            )
            event_id += 1
            events_rows.append(
                (
                    event_id,
                    adapt(moment),
                    adapt(moment.replace(microsecond=0)),
                    secrets.token_hex(13),
                    events.dumps(payload).decode(),
                    "",
                    "NEW",
                    "",
                )
            )
        with transaction.atomic(), connection.cursor() as cur:
            _insert(
                cur,
                vendor,
                "campaigns_recipient",
                'id, campaign_id, batch_id, "index", is_test, identity, parameters, '
                "status, reason, failure_code, switched_channel, message_id, "
                "created_at, updated_at, fallback_identities, delivered_channel",
                [(*row, "[]", "") for row in rows],
            )
            _insert(
                cur,
                vendor,
                "campaigns_webhookevent",
                "id, received_at, signed_at, nonce, body, kind, state, error",
                events_rows,
            )
        common.say(f"  {stop:,} recipients, {event_id:,} receipts stored")
    counters.add(campaign.pk, {"SUBMITTED": recipients})
    if vendor == "postgresql":
        with connection.cursor() as cur:
            for table in ("campaigns_recipient", "campaigns_webhookevent"):
                cur.execute(
                    f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), "
                    f"(SELECT max(id) FROM {table}))"
                )
                cur.execute(f"ANALYZE {table}")
    return campaign.pk, expected


def _insert(cur, vendor, table, columns, rows):
    if vendor == "postgresql":
        with cur.cursor.copy(f"COPY {table} ({columns}) FROM STDIN") as copy:
            for row in rows:
                copy.write_row(row)
    else:
        marks = ", ".join(["%s"] * len(rows[0]))
        cur.executemany(f"INSERT INTO {table} ({columns}) VALUES ({marks})", rows)


def child(chunk: int) -> None:
    """The timed part: drain every NEW event as the task does."""
    from campaigns.tracking import receipts

    started = time.perf_counter()
    outcome = receipts.process_pending(chunk=chunk)
    elapsed = time.perf_counter() - started
    common.emit({"outcome": dict(outcome), "processing_s": elapsed})


def verify(campaign_id: int, expected: Counter, receipts_n: int) -> dict:
    from django.db.models import Count

    from campaigns import counters
    from campaigns.models import WebhookEvent

    states = dict(WebhookEvent.objects.values_list("state").annotate(n=Count("id")))
    actual = counters.actual(campaign_id)
    return {
        "statuses": actual,
        "statuses_match": actual == {k: v for k, v in expected.items() if v},
        "counters_match": counters.counts(campaign_id) == actual,
        "events": states,
        "all_processed": states == {"PROCESSED": receipts_n},
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--recipients", type=int, default=250_000)
    parser.add_argument("--database", choices=["sqlite", "postgres"], default="sqlite")
    parser.add_argument("--chunk", type=int, default=2000)
    parser.add_argument("--keep", action="store_true")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        common.setup_django(
            os.environ["DATABASE_URL"], os.environ["MEDIA_ROOT"], debug=False
        )
        child(args.chunk)
        return

    folder = common.workdir("receipts-bench-")
    name = f"bench_receipts_{os.getpid()}"
    url = common.fresh_database(args.database, name, folder)
    media = os.path.join(folder, "media")
    try:
        common.setup_django(url, media)
        receipts_n = args.recipients * 4
        common.say(
            f"storing {receipts_n:,} receipts for {args.recipients:,} "
            f"recipients ({args.database})"
        )
        started = time.monotonic()
        campaign_id, expected = prepare(args.recipients)
        common.say(f"filled in {time.monotonic() - started:.0f} s")
        from django.db import connections

        connections.close_all()
        load_before = os.getloadavg()
        common.say(f"processing in a child process (load {load_before[0]:.2f})")
        measured = common.run_measured(
            [common.PYTHON, __file__, "--child", "--chunk", str(args.chunk)]
        )
        load_after = os.getloadavg()
        if measured.returncode != 0:
            raise SystemExit(f"processing failed (exit {measured.returncode})")
        timed = json.loads(measured.stdout.strip().splitlines()[-1])
        checks = verify(campaign_id, expected, receipts_n)
        common.say(f"outcome {timed['outcome']}; checks {json.dumps(checks)}")
        per_s = receipts_n / timed["processing_s"]
        result = {
            "receipts": receipts_n,
            "recipients": args.recipients,
            "receipts_per_s": round(per_s),
            "processing_s": round(timed["processing_s"], 2),
            "wall_s": round(measured.wall_s, 2),
            "peak_rss_mb": round(measured.peak_rss_mb, 1),
            "cpu_s": round(measured.cpu_s, 1),
            "database": args.database,
            "chunk": args.chunk,
            "counters_match": checks["counters_match"],
            "statuses_match": checks["statuses_match"],
            "all_processed": checks["all_processed"],
            "load_avg_before": round(load_before[0], 2),
            "load_avg_after": round(load_after[0], 2),
            "meets_target": per_s >= TARGET_PER_S
            and checks["counters_match"]
            and checks["statuses_match"]
            and checks["all_processed"],
        }
    finally:
        if not args.keep:
            common.remove_run(folder, args.database, name)
    common.emit(result)


if __name__ == "__main__":
    main()
