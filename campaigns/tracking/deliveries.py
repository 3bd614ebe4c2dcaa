"""Delivery receipts and batch processing reports move recipients along.

A receipt moves the Recipient named by RECIPIENT_KEY in its metadata (checked
against the campaign and Sinch batch id it also carries). A status never moves
backwards (campaigns.models.states.RECEIPT_RANK): QUEUED_ON_CHANNEL <
DELIVERED < READ; FAILED is final unless the recipient was switched to a
fallback channel (SWITCHING_CHANNEL) and a success follows; a success is never
undone by a late FAILED. The channel a success receipt names is kept
(`delivered_channel`: the fallback channel when the first one failed). A
receipt delivered twice therefore changes nothing the second time, and
receipts in any order end in the same state. Every actual move is reported
to campaigns.counters and to the CampaignTimeline (per minute of the event,
per status reached, counting the statuses a jump implies: READ received
first also counts as queued and delivered), in the same transaction. A
processing report fails the recipient at its index of the batch, checked
against the identity the report names when it names one
(campaigns.tracking.report_positions): a mismatch is kept, not applied.
A receipt that names the Sinch batch of a recipient whose batch has no Sinch id
yet (its submission's answer was lost) teaches that id to the batch.
"""

from collections import Counter, defaultdict
from datetime import datetime

from django.db import connection

from campaigns import counters
from campaigns.dispatch.batch_request import CAMPAIGN_KEY, RECIPIENT_KEY
from campaigns.models import CampaignTimeline, Recipient
from campaigns.models.states import ALONG, RECEIPT_RANK, SUCCESS
from campaigns.tracking import report_positions
from campaigns.tracking.event_chunk import (
    Chunk,
    Outcome,
    RecipientRow,
    State,
)
from config.lib.bulk import bulk_update, db_time
from sinch import wire

R = Recipient.Status
SWITCHING = "SWITCHING_CHANNEL"


def apply_receipts(chunk: Chunk) -> None:
    wanted: dict[int, tuple] = {}  # event id -> (recipient id, report, at)
    for event_id, report, at in chunk.receipts:
        raw = report.metadata.get(RECIPIENT_KEY)
        try:
            recipient_id = int(raw)
        except (TypeError, ValueError):
            chunk.outcomes.append(
                Outcome(
                    event_id,
                    State.ORPHAN,
                    f"the receipt names no recipient ({RECIPIENT_KEY} missing "
                    f"from its metadata); Sinch batch {report.batch_id or '?'}",
                    report.kind,
                )
            )
            continue
        wanted[event_id] = (recipient_id, report, at)
    positions = report_positions.resolve(chunk.reports) if chunk.reports else {}
    ids = {rid for rid, _, _ in wanted.values()} | {
        r.recipient_id for r in positions.values() if r.recipient_id is not None
    }
    recipients = _load_recipients(ids)
    for event_id, (recipient_id, report, at) in wanted.items():
        row = recipients.get(recipient_id)
        problem = _mismatch(row, recipient_id, report)
        if problem:
            chunk.outcomes.append(Outcome(event_id, State.ORPHAN, problem, report.kind))
            continue
        status = report.status
        if status not in wire.DELIVERY_STATUSES:
            chunk.outcomes.append(
                Outcome(
                    event_id,
                    State.IGNORED,
                    f"unknown delivery status {status!r}",
                    report.kind,
                    row.campaign_id,
                )
            )
            continue
        code = report.reason.code if report.reason else ""
        advance(row, status, code, report.message_id, _minute(report, at))
        _delivered_on(row, status, report.channel_identity)
        if report.batch_id and not row.sinch_batch_id and row.batch_id:
            # Its submission's answer was lost: Sinch's id for the batch.
            chunk.learnt_sinch_ids[row.batch_id] = report.batch_id
        _seen(chunk, row, at)
        chunk.outcomes.append(
            Outcome(event_id, State.PROCESSED, "", report.kind, row.campaign_id)
        )
    for event_id, report, at in chunk.reports:
        _apply_processing_report(chunk, event_id, report, at, positions, recipients)
    _write_recipients(recipients.values(), chunk.now)


def advance(row: RecipientRow, status: str, code: str, message_id: str, minute) -> bool:
    """Apply one receipt to `row`; True when its status moved."""
    if message_id and not row.message_id:
        row.message_id = message_id[:64]
        row.changed = True
    if row.status == R.EXCLUDED:
        return False
    if status == SWITCHING:
        if not row.switched:
            row.switched = row.changed = True
        return False
    if status == R.FAILED:
        if row.status in SUCCESS or row.status == R.FAILED:
            return False
        _move(row, R.FAILED, minute)
        row.failure_code = code[:64]
        return True
    if row.status == R.FAILED:
        if not (row.switched and status in SUCCESS):
            return False
        row.failure_code = ""
    elif RECEIPT_RANK[status] <= RECEIPT_RANK.get(row.status, 0):
        return False
    _move(row, status, minute)
    return True


def _delivered_on(row: RecipientRow, status: str, identity) -> None:
    """Note the channel a success receipt names (a fallback channel when the
    first one failed: SWITCHING_CHANNEL, then DELIVERED on the next)."""
    channel = identity.channel[:16] if identity is not None else ""
    if (
        channel
        and status in SUCCESS
        and row.status in SUCCESS
        and row.delivered_channel != channel
    ):
        row.delivered_channel = channel
        row.changed = True


def _move(row: RecipientRow, status: str, minute) -> None:
    """Move `row` to `status`; the timeline counts each status the move
    implies (READ straight from SUBMITTED was queued and delivered too), so
    its figures do not depend on the order the receipts came in."""
    if row.status in RECEIPT_RANK and status in RECEIPT_RANK:
        passed = RECEIPT_RANK[row.status]
        for step in ALONG:
            if passed < RECEIPT_RANK[step] <= RECEIPT_RANK[status]:
                row.reached.append((step, minute))
    else:
        row.reached.append((status, minute))
    row.status = status
    row.changed = True


def _mismatch(row: RecipientRow | None, recipient_id: int, report) -> str:
    if row is None:
        return f"no recipient #{recipient_id} (from the receipt's metadata)"
    campaign = report.metadata.get(CAMPAIGN_KEY)
    if campaign not in (None, "") and str(campaign) != str(row.campaign_id):
        return (
            f"recipient #{recipient_id} belongs to campaign {row.campaign_id}, "
            f"the receipt says campaign {campaign}"
        )
    if report.batch_id and row.sinch_batch_id and report.batch_id != row.sinch_batch_id:
        return (
            f"recipient #{recipient_id} was sent in Sinch batch "
            f"{row.sinch_batch_id}, the receipt says {report.batch_id}"
        )
    return ""


def _apply_processing_report(chunk, event_id, report, at, positions, recipients):
    hits = 0
    campaign_id = None
    mismatches = []
    for n, failure in enumerate(report.failures):
        found = positions.get((event_id, n))
        if found is not None and found.mismatch:
            mismatches.append(found.mismatch)
            continue
        rid = found.recipient_id if found is not None else None
        row = recipients.get(rid) if rid is not None else None
        if row is None:
            continue
        hits += 1
        campaign_id = row.campaign_id
        code = failure.reason.code if failure.reason else "PROCESSING_FAILED"
        advance(row, R.FAILED, code, "", _minute(report, at))
        _seen(chunk, row, at)
    if mismatches:
        # Stored and shown on the health page; a failure is never put on
        # someone the report does not name.
        text = f"Sinch batch {report.batch_id or '?'}: " + "; ".join(mismatches)
        if hits:
            text = f"applied to {hits}, but {text}"
        chunk.outcomes.append(
            Outcome(event_id, State.MISMATCH, text[:2000], report.kind, campaign_id)
        )
    elif hits:
        chunk.outcomes.append(
            Outcome(event_id, State.PROCESSED, "", report.kind, campaign_id)
        )
    else:
        chunk.outcomes.append(
            Outcome(
                event_id,
                State.ORPHAN,
                f"no recipient at the reported positions of Sinch batch "
                f"{report.batch_id or '?'}",
                report.kind,
            )
        )


def _seen(chunk: Chunk, row: RecipientRow, at: datetime) -> None:
    if row.batch_id is not None:
        last = chunk.batch_receipts.get(row.batch_id)
        if last is None or at > last:
            chunk.batch_receipts[row.batch_id] = at
    if not row.is_test:
        last = chunk.campaign_receipts.get(row.campaign_id)
        if last is None or at > last:
            chunk.campaign_receipts[row.campaign_id] = at


def _load_recipients(ids) -> dict[int, RecipientRow]:
    if not ids:
        return {}
    found: dict[int, RecipientRow] = {}
    ordered = sorted(ids)
    step = 5000
    for start in range(0, len(ordered), step):
        query = Recipient.objects.filter(pk__in=ordered[start : start + step])
        if connection.features.has_select_for_update:
            # Another processor may hold receipts for the same recipients.
            query = query.select_for_update(of=("self",)).order_by("pk")
        for values in query.values_list(
            "id",
            "campaign_id",
            "batch_id",
            "batch__sinch_batch_id",
            "is_test",
            "status",
            "failure_code",
            "switched_channel",
            "message_id",
            "delivered_channel",
        ):
            row = RecipientRow(*values[:3], values[3] or "", *values[4:])
            row.start_status = row.status
            found[row.id] = row
    return found


def _write_recipients(rows, now: datetime) -> None:
    changed = [row for row in rows if row.changed]
    if not changed:
        return
    bulk_update(
        Recipient._meta.db_table,
        [
            ("status", "text"),
            ("failure_code", "text"),
            ("switched_channel", "boolean"),
            ("message_id", "text"),
            ("delivered_channel", "text"),
            ("updated_at", "timestamptz"),
        ],
        [
            (
                row.id,
                row.status,
                row.failure_code,
                row.switched,
                row.message_id,
                row.delivered_channel,
                db_time(now),
            )
            for row in changed
        ],
    )
    deltas: dict[int, Counter] = defaultdict(Counter)
    timeline: Counter = Counter()
    for row in changed:
        if row.is_test or not row.reached:
            continue
        if row.status != row.start_status:
            deltas[row.campaign_id][row.start_status] -= 1
            deltas[row.campaign_id][row.status] += 1
        for status, minute in row.reached:
            timeline[(row.campaign_id, minute, status)] += 1
    # In a fixed order, so that concurrent processors never wait on each
    # other's count rows in a cycle.
    for campaign_id, delta in sorted(deltas.items()):
        counters.add(campaign_id, dict(sorted(delta.items())))
    _add_timeline(timeline)


def _add_timeline(timeline: Counter) -> None:
    if not timeline:
        return
    table = connection.ops.quote_name(CampaignTimeline._meta.db_table)
    items = sorted(
        timeline.items(), key=lambda item: (item[0][0], item[0][1], item[0][2])
    )
    with connection.cursor() as cursor:
        for start in range(0, len(items), 500):
            part = items[start : start + 500]
            values = ", ".join(["(%s, %s, %s, %s)"] * len(part))
            params = []
            for (campaign_id, minute, status), n in part:
                params += [campaign_id, db_time(minute), status, n]
            cursor.execute(
                f"INSERT INTO {table} (campaign_id, minute, status, count) "
                f"VALUES {values} ON CONFLICT (campaign_id, minute, status) "
                f"DO UPDATE SET count = {table}.count + excluded.count",
                params,
            )


def _minute(callback, received_at: datetime) -> datetime:
    at = callback.envelope.event_time or received_at
    return at.replace(second=0, microsecond=0)
