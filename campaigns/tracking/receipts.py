"""Stored webhook events applied in bulk: the processor.

`process_pending` takes NEW WebhookEvent rows a chunk at a time (one
transaction each; on PostgreSQL the chunk is locked with SKIP LOCKED so two
processors share the work, on SQLite the IMMEDIATE transactions serialise
them), parses each body (sinch.callbacks) and hands the chunk to the module of
each event kind, which applies it with a handful of queries:

- delivery receipts and batch processing reports: campaigns.tracking.deliveries;
- batch status updates: campaigns.tracking.batch_statuses;
- inbound messages and consent notifications: campaigns.tracking.replies.

Events that match nothing we know (recipient, batch, identity) are kept as
ORPHAN with the reason in `error`; an event that cannot be read is FAILED
with the error; neither stops the rest of the chunk.
"""

import logging
from collections import Counter, defaultdict
from datetime import datetime

from django.db import OperationalError, connection, transaction
from django.utils import timezone

from campaigns.models import WebhookEvent
from campaigns.tracking import batch_statuses, deliveries, erased_senders, replies
from campaigns.tracking.event_chunk import Chunk, Outcome, State, error_text
from config.lib.bulk import bulk_update, db_time
from config.lib.json_input import parse_json, without_nul
from config.lib.lookups import id_lists
from sinch import callbacks, wire

logger = logging.getLogger(__name__)

CHUNK = 2000


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
                    _write_events([Outcome(row[0], State.FAILED, error_text(exc))])
                    outcome[State.FAILED] += 1
        return len(rows), rows[-1][0], outcome


def _apply(rows) -> Counter:
    chunk = Chunk(now=timezone.now())
    for event_id, body, received_at in rows:
        try:
            # PostgreSQL stores no NUL character: a "STOP\u0000" is stored
            # and matched without it rather than lost with its chunk.
            data = parse_json(body, nul=True)
            parsed = callbacks.parse_callback(without_nul(data))
        except (ValueError, TypeError) as exc:
            chunk.outcomes.append(
                Outcome(event_id, State.FAILED, f"not a callback: {error_text(exc)}")
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
        elif parsed.kind == wire.UNKNOWN_BATCH_CALLBACK_KIND:
            # Never guessed to be a status update or a processing report:
            # kept, and counted on the health page.
            keys = [k for k in parsed.raw if k.startswith("batch_")][:3]
            chunk.outcomes.append(
                Outcome(
                    event_id,
                    State.UNKNOWN,
                    f"unknown batch callback {', '.join(keys)}: stored, not "
                    "applied (add its key to sinch.wire if Sinch sends it)",
                    parsed.kind,
                )
            )
        else:
            chunk.outcomes.append(
                Outcome(event_id, State.IGNORED, "nothing to do", parsed.kind)
            )
    if chunk.receipts or chunk.reports:
        deliveries.apply_receipts(chunk)
    if chunk.statuses:
        batch_statuses.apply_batch_statuses(chunk)
    if chunk.inbound:
        replies.apply_inbound(chunk)
    if chunk.consents:
        replies.apply_consents(chunk)
    batch_statuses.write_last_receipts(chunk)
    erased_senders.redact_bodies(chunk)
    _write_events(chunk.outcomes, chunk.now)
    return Counter(outcome.state for outcome in chunk.outcomes)


def _write_events(outcomes, now: datetime | None = None) -> None:
    if not outcomes:
        return
    at = db_time(now or timezone.now())
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
                for part, marks in id_lists(ids):
                    cursor.execute(
                        f"UPDATE {table} SET state = %s, error = %s, "
                        f"processed_at = %s, kind = %s, campaign_id = %s "
                        f"WHERE id {marks}",
                        [state, error, at, kind, campaign_id, *part],
                    )
        return
    bulk_update(
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
