"""Stored webhook events turned into recipient statuses, batch statuses,
replies and consent, in bulk.

`process_pending` takes NEW WebhookEvent rows a chunk at a time (one
transaction each; on PostgreSQL the chunk is locked with SKIP LOCKED so two
processors share the work, on SQLite the IMMEDIATE transactions serialise
them) and applies the whole chunk with a handful of queries:

- delivery receipts move the Recipient named by RECIPIENT_KEY in their
  metadata (checked against the campaign and Sinch batch id it also carries).
  A status never moves backwards: QUEUED_ON_CHANNEL < DELIVERED < READ;
  FAILED is final unless the recipient was switched to a fallback channel
  (SWITCHING_CHANNEL) and a success follows; a success is never undone by a
  late FAILED. A receipt delivered twice therefore changes nothing the second
  time, and receipts in any order end in the same state. Every actual move is
  reported to campaigns.counters and to the CampaignTimeline (per minute of
  the event, per status reached, counting the statuses a jump implies: READ
  received first also counts as queued and delivered), in the same
  transaction;
- batch status updates set Batch.remote_status as received (an opaque
  string), except that a known final status (PROCESSED, CANCELLED) is not
  replaced by a late known earlier one (READY, SCHEDULED);
- batch processing reports fail the recipient at that index of the batch;
- inbound messages become InboundMessage rows, linked to the contact (by
  channel identity) and the campaign (by the conversation metadata); STOP /
  START keywords (campaigns.keywords) go to the consent ledger with the
  message as evidence, for settings.INBOUND_STOP_PURPOSES (marketing by
  default: see below); HELP is logged;
- opt-out / opt-in notifications of Sinch's consent management go to the
  same ledger (source API).

Why STOP opts out of marketing only (by default): a STOP nearly always
answers a campaign, and the same person may still need the order, delivery
or security messages they asked for; carriers require the sender to stop
*marketing* at once, which is what the ledger then guarantees (the next
freeze excludes the identity, batches not yet submitted drop it). Set
INBOUND_STOP_PURPOSES=MARKETING,TRANSACTIONAL to make STOP stop everything.
A STOP from a number we do not know yet creates a bare contact for it, opted
out: a later import cannot opt it back in (an import never overrides an
opt-out), so the person is never messaged after saying STOP.

Events that match nothing we know (recipient, batch, identity) are kept as
ORPHAN with the reason in `error`; an event that cannot be read is FAILED
with the error; neither stops the rest of the chunk.
"""

import logging
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from datetime import datetime

from django.conf import settings
from django.db import OperationalError, connection, transaction
from django.utils import timezone

from campaigns import counters
from campaigns.dispatch.batch_request import BATCH_KEY, CAMPAIGN_KEY, RECIPIENT_KEY
from campaigns.models import (
    Batch,
    Campaign,
    CampaignTimeline,
    InboundMessage,
    Recipient,
    WebhookEvent,
)
from campaigns.tracking import keywords
from contacts.models import ChannelIdentity, ConsentEvent, Contact
from contacts.phones import InvalidIdentity, normalise_identity
from contacts.services.consent import Evidence, record_consent
from sinch import callbacks, wire

logger = logging.getLogger(__name__)

CHUNK = 2000
State = WebhookEvent.State
R = Recipient.Status

SWITCHING = "SWITCHING_CHANNEL"
# Statuses a receipt can move a recipient out of, and the order receipts
# move it along (FAILED apart).
_RANK = {
    R.PENDING: 0,
    R.SUBMITTED: 0,
    R.CANCELLED: 0,
    R.QUEUED_ON_CHANNEL: 1,
    R.DELIVERED: 2,
    R.READ: 3,
}
_SUCCESS = frozenset({R.DELIVERED, R.READ})
_FINAL_BATCH = frozenset({"PROCESSED", "CANCELLED"})
_EARLY_BATCH = frozenset({"READY", "SCHEDULED"})
INBOUND_ACTOR = "Sinch inbound message"
CONSENT_ACTOR = "Sinch consent management"


# --- the entry points ---------------------------------------------------------


def process_pending(
    limit: int | None = None,
    *,
    chunk: int | None = None,
    received_before: datetime | None = None,
) -> Counter:
    """Process NEW events, oldest first, until none are left (or `limit`
    were taken); returns how many ended in each state."""
    chunk = chunk or CHUNK
    totals: Counter = Counter()
    taken = 0
    after = 0  # the chunks move up the ids: no rescan of processed rows
    while limit is None or taken < limit:
        size = chunk if limit is None else min(chunk, limit - taken)
        n, after, outcome = _process_chunk(size, after, received_before)
        taken += n
        totals.update(outcome)
        if n < size:
            break
    return totals


def summary(outcome: Counter) -> str:
    if not outcome:
        return "no webhook events to process"
    return ", ".join(f"{n} {state.lower()}" for state, n in sorted(outcome.items()))


def _process_chunk(
    size: int, after: int, received_before: datetime | None
) -> tuple[int, int, Counter]:
    """Take up to `size` NEW events with ids above `after` and apply them;
    returns how many were taken, the last id, and their outcomes.

    (Events below `after` that are still NEW were locked by another
    processor; if it rolls back, the next run takes them.)
    """
    with transaction.atomic():
        events = WebhookEvent.objects.filter(state=State.NEW, id__gt=after)
        if received_before is not None:
            events = events.filter(received_at__lt=received_before)
        if connection.features.has_select_for_update_skip_locked:
            events = events.select_for_update(skip_locked=True)
        rows = list(
            events.order_by("id").values_list("id", "body", "received_at")[:size]
        )
        if not rows:
            return 0, after, Counter()
        try:
            with transaction.atomic():
                outcome = _apply(rows)
        except OperationalError:
            # A deadlock, a lost connection: nothing is the events' fault. The
            # chunk rolls back and stays NEW for the next run (or the tick).
            raise
        except Exception:
            # One event broke the bulk path: apply them one by one, so that
            # only the culprit is FAILED and the rest go through.
            logger.exception("webhook chunk failed; retrying its events one by one")
            outcome = Counter()
            for row in rows:
                try:
                    with transaction.atomic():
                        outcome.update(_apply([row]))
                except OperationalError:
                    raise
                except Exception as exc:
                    logger.exception("webhook event %s failed", row[0])
                    _write_events([_Outcome(row[0], State.FAILED, _error(exc))])
                    outcome[State.FAILED] += 1
        return len(rows), rows[-1][0], outcome


# --- one chunk ------------------------------------------------------------------


@dataclass(slots=True)
class _Outcome:
    id: int
    state: str
    error: str = ""
    kind: str = ""
    campaign_id: int | None = None


@dataclass(slots=True)
class _Row:
    """A recipient as the receipts of this chunk see it."""

    id: int
    campaign_id: int
    batch_id: int | None
    sinch_batch_id: str
    is_test: bool
    status: str
    failure_code: str
    switched: bool
    message_id: str
    start_status: str = ""
    changed: bool = False
    reached: list = field(default_factory=list)  # (status, minute)


@dataclass
class _Chunk:
    now: datetime
    outcomes: list = field(default_factory=list)
    receipts: list = field(default_factory=list)  # (event id, report, at)
    reports: list = field(default_factory=list)  # (event id, report, at)
    statuses: list = field(default_factory=list)  # (event id, update, at)
    inbound: list = field(default_factory=list)  # (event id, message, at)
    consents: list = field(default_factory=list)  # (event id, notification, at)
    batch_receipts: dict = field(default_factory=dict)  # batch id -> received_at
    campaign_receipts: dict = field(default_factory=dict)  # campaign -> received_at
    remote_statuses: dict = field(default_factory=lambda: defaultdict(list))


def _apply(rows) -> Counter:
    chunk = _Chunk(now=timezone.now())
    for event_id, body, received_at in rows:
        try:
            parsed = callbacks.parse_callback(body)
        except (ValueError, TypeError) as exc:
            chunk.outcomes.append(
                _Outcome(event_id, State.FAILED, f"not a callback: {_error(exc)}")
            )
            continue
        item = (event_id, parsed, received_at)
        if isinstance(parsed, callbacks.DeliveryReport):
            chunk.receipts.append(item)
        elif isinstance(parsed, callbacks.BatchStatusUpdate):
            chunk.statuses.append(item)
        elif isinstance(parsed, callbacks.BatchProcessingReport):
            chunk.reports.append(item)
        elif isinstance(parsed, callbacks.InboundMessage):
            chunk.inbound.append(item)
        elif isinstance(parsed, callbacks.ConsentNotification):
            chunk.consents.append(item)
        else:
            chunk.outcomes.append(
                _Outcome(event_id, State.IGNORED, "nothing to do", parsed.kind)
            )
    if chunk.receipts or chunk.reports:
        _apply_receipts(chunk)
    if chunk.statuses:
        _apply_batch_statuses(chunk)
    if chunk.inbound:
        _apply_inbound(chunk)
    if chunk.consents:
        _apply_consents(chunk)
    _write_last_receipts(chunk)
    _write_events(chunk.outcomes, chunk.now)
    return Counter(outcome.state for outcome in chunk.outcomes)


# --- delivery receipts ----------------------------------------------------------


def _apply_receipts(chunk: _Chunk) -> None:
    wanted: dict[int, tuple] = {}  # event id -> (recipient id, report, at)
    for event_id, report, at in chunk.receipts:
        raw = report.metadata.get(RECIPIENT_KEY)
        try:
            recipient_id = int(raw)
        except (TypeError, ValueError):
            chunk.outcomes.append(
                _Outcome(
                    event_id,
                    State.ORPHAN,
                    f"the receipt names no recipient ({RECIPIENT_KEY} missing "
                    f"from its metadata); Sinch batch {report.batch_id or '?'}",
                    report.kind,
                )
            )
            continue
        wanted[event_id] = (recipient_id, report, at)
    positions: dict[tuple[str, int], int] = {}
    if chunk.reports:
        positions = _positions(chunk)
    ids = {rid for rid, _, _ in wanted.values()} | set(positions.values())
    recipients = _load_recipients(ids)
    for event_id, (recipient_id, report, at) in wanted.items():
        row = recipients.get(recipient_id)
        problem = _mismatch(row, recipient_id, report)
        if problem:
            chunk.outcomes.append(
                _Outcome(event_id, State.ORPHAN, problem, report.kind)
            )
            continue
        status = report.status
        if status not in wire.DELIVERY_STATUSES:
            chunk.outcomes.append(
                _Outcome(
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
        _seen(chunk, row, at)
        chunk.outcomes.append(
            _Outcome(event_id, State.PROCESSED, "", report.kind, row.campaign_id)
        )
    for event_id, report, at in chunk.reports:
        _apply_processing_report(chunk, event_id, report, at, positions, recipients)
    _write_recipients(recipients.values(), chunk.now)


def advance(row: _Row, status: str, code: str, message_id: str, minute) -> bool:
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
        if row.status in _SUCCESS or row.status == R.FAILED:
            return False
        _move(row, R.FAILED, minute)
        row.failure_code = code[:64]
        return True
    if row.status == R.FAILED:
        if not (row.switched and status in _SUCCESS):
            return False
        row.failure_code = ""
    elif _RANK[status] <= _RANK.get(row.status, 0):
        return False
    _move(row, status, minute)
    return True


_ALONG = (R.QUEUED_ON_CHANNEL, R.DELIVERED, R.READ)


def _move(row: _Row, status: str, minute) -> None:
    """Move `row` to `status`; the timeline counts each status the move
    implies (READ straight from SUBMITTED was queued and delivered too), so
    its figures do not depend on the order the receipts came in."""
    if row.status in _RANK and status in _RANK:
        passed = _RANK[row.status]
        for step in _ALONG:
            if passed < _RANK[step] <= _RANK[status]:
                row.reached.append((step, minute))
    else:
        row.reached.append((status, minute))
    row.status = status
    row.changed = True


def _mismatch(row: _Row | None, recipient_id: int, report) -> str:
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


def _positions(chunk: _Chunk) -> dict[tuple[str, int], int]:
    """(Sinch batch id, index) -> recipient id, for the processing reports."""
    batch_ids = {report.batch_id for _, report, _ in chunk.reports if report.batch_id}
    indexes = {
        f.message_index
        for _, report, _ in chunk.reports
        for f in report.failures
        if f.message_index is not None
    }
    if not batch_ids or not indexes:
        return {}
    found = Recipient.objects.filter(
        batch__sinch_batch_id__in=batch_ids, index__in=indexes
    ).values_list("batch__sinch_batch_id", "index", "id")
    return {(sinch_id, index): rid for sinch_id, index, rid in found}


def _apply_processing_report(chunk, event_id, report, at, positions, recipients):
    hits = 0
    campaign_id = None
    for failure in report.failures:
        rid = positions.get((report.batch_id, failure.message_index))
        row = recipients.get(rid) if rid is not None else None
        if row is None:
            continue
        hits += 1
        campaign_id = row.campaign_id
        code = failure.reason.code if failure.reason else "PROCESSING_FAILED"
        advance(row, R.FAILED, code, "", _minute(report, at))
        _seen(chunk, row, at)
    if hits:
        chunk.outcomes.append(
            _Outcome(event_id, State.PROCESSED, "", report.kind, campaign_id)
        )
    else:
        chunk.outcomes.append(
            _Outcome(
                event_id,
                State.ORPHAN,
                f"no recipient at the reported positions of Sinch batch "
                f"{report.batch_id or '?'}",
                report.kind,
            )
        )


def _seen(chunk: _Chunk, row: _Row, at: datetime) -> None:
    if row.batch_id is not None:
        last = chunk.batch_receipts.get(row.batch_id)
        if last is None or at > last:
            chunk.batch_receipts[row.batch_id] = at
    if not row.is_test:
        last = chunk.campaign_receipts.get(row.campaign_id)
        if last is None or at > last:
            chunk.campaign_receipts[row.campaign_id] = at


def _load_recipients(ids) -> dict[int, _Row]:
    if not ids:
        return {}
    found: dict[int, _Row] = {}
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
        ):
            row = _Row(*values[:3], values[3] or "", *values[4:])
            row.start_status = row.status
            found[row.id] = row
    return found


def _write_recipients(rows, now: datetime) -> None:
    changed = [row for row in rows if row.changed]
    if not changed:
        return
    _bulk_update(
        Recipient._meta.db_table,
        [
            ("status", "text"),
            ("failure_code", "text"),
            ("switched_channel", "boolean"),
            ("message_id", "text"),
            ("updated_at", "timestamptz"),
        ],
        [
            (
                row.id,
                row.status,
                row.failure_code,
                row.switched,
                row.message_id,
                _db_time(now),
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
                params += [campaign_id, _db_time(minute), status, n]
            cursor.execute(
                f"INSERT INTO {table} (campaign_id, minute, status, count) "
                f"VALUES {values} ON CONFLICT (campaign_id, minute, status) "
                f"DO UPDATE SET count = {table}.count + excluded.count",
                params,
            )


def _minute(callback, received_at: datetime) -> datetime:
    at = callback.envelope.event_time or received_at
    return at.replace(second=0, microsecond=0)


# --- batch status updates -------------------------------------------------------


def _apply_batch_statuses(chunk: _Chunk) -> None:
    sinch_ids = {u.batch_id for _, u, _ in chunk.statuses if u.batch_id}
    keys = {
        str(u.metadata.get(BATCH_KEY))
        for _, u, _ in chunk.statuses
        if u.metadata.get(BATCH_KEY)
    }
    batches = list(
        Batch.objects.filter(sinch_batch_id__in=sinch_ids).values_list(
            "id", "sinch_batch_id", "metadata_key", "campaign_id", "remote_status"
        )
    ) + list(
        Batch.objects.filter(metadata_key__in=keys).values_list(
            "id", "sinch_batch_id", "metadata_key", "campaign_id", "remote_status"
        )
    )
    by_sinch = {b[1]: b for b in batches if b[1]}
    by_key = {b[2]: b for b in batches}
    remote = {b[0]: b[4] for b in batches}
    final: dict[int, str] = {}
    for event_id, update, at in chunk.statuses:
        batch = by_sinch.get(update.batch_id) or by_key.get(
            str(update.metadata.get(BATCH_KEY, ""))
        )
        if batch is None:
            chunk.outcomes.append(
                _Outcome(
                    event_id,
                    State.ORPHAN,
                    f"no batch with Sinch id {update.batch_id or '?'}",
                    update.kind,
                )
            )
            continue
        batch_id = batch[0]
        current = final.get(batch_id, remote[batch_id])
        status = update.status[:32]
        if not (current in _FINAL_BATCH and status in _EARLY_BATCH):
            final[batch_id] = status
        last = chunk.batch_receipts.get(batch_id)
        if last is None or at > last:
            chunk.batch_receipts[batch_id] = at
        chunk.outcomes.append(
            _Outcome(event_id, State.PROCESSED, "", update.kind, batch[3])
        )
    for batch_id, status in final.items():
        if status != remote[batch_id]:
            chunk.remote_statuses[status].append(batch_id)


def _write_last_receipts(chunk: _Chunk) -> None:
    """Batch and campaign rows, locked in id order first (two processors
    touching the same batches would otherwise deadlock on PostgreSQL)."""
    _lock(Batch, chunk.batch_receipts)
    _lock(Campaign, chunk.campaign_receipts)
    for status, ids in sorted(chunk.remote_statuses.items()):
        Batch.objects.filter(pk__in=ids).update(remote_status=status)
    if chunk.batch_receipts:
        _bulk_update(
            Batch._meta.db_table,
            [("last_receipt_at", "timestamptz")],
            [(pk, _db_time(at)) for pk, at in chunk.batch_receipts.items()],
            newer="last_receipt_at",
        )
    if chunk.campaign_receipts:
        _bulk_update(
            Campaign._meta.db_table,
            [("last_receipt_at", "timestamptz")],
            [(pk, _db_time(at)) for pk, at in chunk.campaign_receipts.items()],
            newer="last_receipt_at",
        )
        # Receipts arrive again: a "receipts stopped" warning no longer holds.
        Campaign.objects.filter(pk__in=list(chunk.campaign_receipts)).exclude(
            receipts_stalled=""
        ).update(receipts_stalled="")


def _lock(model, ids) -> None:
    if ids and connection.vendor == "postgresql":
        table = connection.ops.quote_name(model._meta.db_table)
        with connection.cursor() as cursor:
            cursor.execute(
                f"SELECT id FROM {table} WHERE id = ANY(%s) ORDER BY id FOR UPDATE",
                [sorted(ids)],
            )


# --- inbound messages -------------------------------------------------------------


def _identity_key(channel: str, raw: str) -> tuple[str, str, bool]:
    """(channel, identity as stored, whether it is valid)."""
    try:
        return channel, normalise_identity(channel, raw), True
    except InvalidIdentity:
        return channel, raw, False


def _find_identities(keys) -> dict[tuple[str, str], ChannelIdentity]:
    values = {identity for _, identity, _ in keys}
    if not values:
        return {}
    return {
        (ci.channel, ci.identity): ci
        for ci in ChannelIdentity.objects.filter(identity__in=values)
    }


def _apply_inbound(chunk: _Chunk) -> None:
    items = []
    for event_id, message, at in chunk.inbound:
        ci = message.channel_identity
        key = _identity_key(ci.channel, ci.identity) if ci else ("", "", False)
        items.append((event_id, message, at, key))
    identities = _find_identities(key for *_, key in items)
    seen_ids = set(
        InboundMessage.objects.filter(
            message_id__in={m.message_id for _, m, _, _ in items if m.message_id}
        ).values_list("message_id", flat=True)
    )
    campaign_refs = {
        _int(m.conversation_metadata.get(CAMPAIGN_KEY)) for _, m, _, _ in items
    }
    campaigns = set(
        Campaign.objects.filter(pk__in={c for c in campaign_refs if c}).values_list(
            "pk", flat=True
        )
    )
    purposes = _stop_purposes()
    created = []
    for event_id, message, at, (channel, identity, valid) in items:
        if message.message_id and message.message_id in seen_ids:
            chunk.outcomes.append(
                _Outcome(
                    event_id,
                    State.IGNORED,
                    f"duplicate of inbound message {message.message_id}",
                    message.kind,
                )
            )
            continue
        if message.message_id:
            seen_ids.add(message.message_id)
        if not channel:
            chunk.outcomes.append(
                _Outcome(event_id, State.FAILED, "no channel identity", message.kind)
            )
            continue
        keyword = keywords.classify(message.text) if message.text else ""
        occurred = message.envelope.accepted_time or at
        known = identities.get((channel, identity))
        if known is None and keyword == keywords.STOP and valid:
            known = _new_contact(channel, identity)
            identities[(channel, identity)] = known
        campaign_id = _int(message.conversation_metadata.get(CAMPAIGN_KEY))
        campaign_id = campaign_id if campaign_id in campaigns else None
        if known is not None and keyword in (keywords.STOP, keywords.START):
            evidence = Evidence(
                wording=message.text[:1000],
                note=(
                    f"{keyword} received as an inbound {channel} message from "
                    f"{identity} at {wire.format_time(occurred)}"
                    f" (Sinch message id {message.message_id or 'unknown'}"
                    + (f", replying to campaign {campaign_id}" if campaign_id else "")
                    + f"): {message.text!r}"
                ),
            )
            for purpose in purposes:
                record_consent(
                    identity=known,
                    kind=ConsentEvent.Kind.OPT_OUT
                    if keyword == keywords.STOP
                    else ConsentEvent.Kind.OPT_IN,
                    purpose=purpose,
                    source=ConsentEvent.Source.INBOUND_KEYWORD,
                    evidence=evidence,
                    actor_name=INBOUND_ACTOR,
                    occurred_at=occurred,
                )
        if keyword == keywords.HELP:
            logger.info("HELP from %s %s", channel, identity)
        created.append(
            InboundMessage(
                received_at=occurred,
                channel=channel[:16],
                identity=identity[:255],
                contact_id=known.contact_id if known else None,
                campaign_id=campaign_id,
                text=message.text,
                keyword=keyword,
                event_id=event_id,
                message_id=message.message_id[:64],
            )
        )
        if known is None:
            chunk.outcomes.append(
                _Outcome(
                    event_id,
                    State.ORPHAN,
                    f"no contact with {channel} identity {identity}",
                    message.kind,
                    campaign_id,
                )
            )
        else:
            chunk.outcomes.append(
                _Outcome(event_id, State.PROCESSED, "", message.kind, campaign_id)
            )
    InboundMessage.objects.bulk_create(created)


def _new_contact(channel: str, identity: str) -> ChannelIdentity:
    """A bare contact for a number that said STOP before we knew it."""
    contact = Contact.objects.create()
    return ChannelIdentity.objects.create(
        contact=contact, channel=channel, identity=identity
    )


def _stop_purposes() -> list[str]:
    return list(getattr(settings, "INBOUND_STOP_PURPOSES", None) or ["MARKETING"])


# --- consent notifications ------------------------------------------------------


def _apply_consents(chunk: _Chunk) -> None:
    items = []
    for event_id, note, at in chunk.consents:
        ci = note.channel_identity
        key = _identity_key(ci.channel, ci.identity) if ci else ("", "", False)
        items.append((event_id, note, at, key))
    identities = _find_identities(key for *_, key in items)
    purposes = _stop_purposes()
    for event_id, note, at, (channel, identity, valid) in items:
        opt_out = note.kind == "OPT_OUT"
        if "FAILED" in note.status or (not opt_out and "SUCCEEDED" not in note.status):
            chunk.outcomes.append(
                _Outcome(event_id, State.IGNORED, f"status {note.status!r}", note.kind)
            )
            continue
        known = identities.get((channel, identity))
        if known is None and opt_out and valid:
            known = identities[(channel, identity)] = _new_contact(channel, identity)
        if known is None:
            chunk.outcomes.append(
                _Outcome(
                    event_id,
                    State.ORPHAN,
                    f"no contact with {channel or '?'} identity {identity or '?'}",
                    note.kind,
                )
            )
            continue
        occurred = note.envelope.event_time or note.envelope.accepted_time or at
        evidence = Evidence(
            note=(
                f"{note.kind} notification of Sinch's consent management "
                f"(request {note.request_id or 'unknown'}, status {note.status}) "
                f"for {channel} {identity} at {wire.format_time(occurred)}"
            )
        )
        for purpose in purposes:
            record_consent(
                identity=known,
                kind=ConsentEvent.Kind.OPT_OUT if opt_out else ConsentEvent.Kind.OPT_IN,
                purpose=purpose,
                source=ConsentEvent.Source.API,
                evidence=evidence,
                actor_name=CONSENT_ACTOR,
                occurred_at=occurred,
            )
        chunk.outcomes.append(_Outcome(event_id, State.PROCESSED, "", note.kind))


# --- writing ----------------------------------------------------------------------


def _write_events(outcomes, now: datetime | None = None) -> None:
    if not outcomes:
        return
    at = _db_time(now or timezone.now())
    groups: dict[tuple, list[int]] = defaultdict(list)
    for o in outcomes:
        groups[(o.state, o.error, o.kind[:40], o.campaign_id)].append(o.id)
    if len(groups) <= 4:
        # The usual chunk: a few kinds of outcome, one UPDATE each (no
        # per-row values to send).
        table = connection.ops.quote_name(WebhookEvent._meta.db_table)
        with connection.cursor() as cursor:
            for (state, error, kind, campaign_id), ids in sorted(
                groups.items(), key=lambda item: item[1][0]
            ):
                for part, marks in _id_lists(ids):
                    cursor.execute(
                        f"UPDATE {table} SET state = %s, error = %s, "
                        f"processed_at = %s, kind = %s, campaign_id = %s "
                        f"WHERE id {marks}",
                        [state, error, at, kind, campaign_id, *part],
                    )
        return
    _bulk_update(
        WebhookEvent._meta.db_table,
        [
            ("state", "text"),
            ("error", "text"),
            ("processed_at", "timestamptz"),
            ("kind", "text"),
            ("campaign_id", "bigint"),
        ],
        [(o.id, o.state, o.error, at, o.kind[:40], o.campaign_id) for o in outcomes],
    )


def _id_lists(ids: list[int]):
    """(params, SQL after "id") for `id` matching `ids`: one array on
    PostgreSQL, IN lists small enough for SQLite."""
    if connection.vendor == "postgresql":
        yield [ids], "= ANY(%s)"
        return
    for start in range(0, len(ids), 5000):
        part = ids[start : start + 5000]
        yield part, f"IN ({', '.join(['%s'] * len(part))})"


def _bulk_update(table: str, columns, rows, *, newer: str = "") -> None:
    """UPDATE many rows by id with per-row values in one statement (a few for
    SQLite). `columns` is [(name, PostgreSQL type)], rows are (id, *values).
    With `newer`, a row is only changed where that column is empty or older."""
    if not rows:
        return
    qn = connection.ops.quote_name
    names = [name for name, _ in columns]
    sets = ", ".join(f"{qn(name)} = v.{qn(name)}" for name in names)
    guard = (
        f" AND (t.{qn(newer)} IS NULL OR t.{qn(newer)} < v.{qn(newer)})"
        if newer
        else ""
    )
    alias = ", ".join(qn(c) for c in ["id", *names])
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            arrays = ", ".join(
                f"%s::{kind}[]" for kind in ["bigint", *(k for _, k in columns)]
            )
            cursor.execute(
                f"UPDATE {qn(table)} AS t SET {sets} "
                f"FROM unnest({arrays}) AS v({alias}) WHERE t.id = v.id{guard}",
                [list(column) for column in zip(*rows, strict=True)],
            )
            return
        width = len(names) + 1
        step = max(1, 30000 // width // 10)  # well under SQLite's 32766 variables
        for start in range(0, len(rows), step):
            part = rows[start : start + step]
            row_sql = "(" + ", ".join(["%s"] * width) + ")"
            params = [value for row in part for value in row]
            cursor.execute(
                f"WITH v({alias}) AS (VALUES {', '.join([row_sql] * len(part))}) "
                f"UPDATE {qn(table)} AS t SET {sets} FROM v "
                f"WHERE t.id = v.id{guard}",
                params,
            )


def _db_time(value: datetime):
    return connection.ops.adapt_datetimefield_value(value)


def _int(value) -> int | None:
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


def _error(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}"[:2000]
