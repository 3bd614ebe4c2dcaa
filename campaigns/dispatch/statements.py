"""The drain's statements on each batch it sends, written out in SQL.

A drain loop runs about a dozen statements for each batch; a launch of a
million recipients sends a thousand batches, and Django's query compiler
(filters, Q objects and clones: 0.1 to 0.4 ms a statement) came to a few CPU
seconds of it, on the two cores the freeze, the database and Sinch's answers
share (issue 17). These are the statements on that path, each spelled once,
with the queryset it stands for in its docstring; the rest of the code still
uses the ORM. tests/campaigns/test_drain_statements.py holds each one to the
answer of its queryset.
"""

from datetime import datetime
from typing import Any

from django.db import connection

from campaigns.models import Batch, Campaign, Recipient
from campaigns.models.states import REMOTE_DONE
from config.lib.bulk import db_time

BatchStatus = Batch.Status
BATCH = Batch._meta.db_table
CAMPAIGN = Campaign._meta.db_table
RECIPIENT = Recipient._meta.db_table
_REMOTE_DONE = sorted(REMOTE_DONE)
# The claim's candidates: a few, for when another worker takes the first.
CANDIDATES = 5


def _marks(values) -> str:
    return ", ".join(["%s"] * len(values))


def _fetch(sql: str, params: list) -> list[tuple]:
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return cursor.fetchall()


def _execute(sql: str, params: list) -> int:
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return cursor.rowcount


def campaign_status(campaign_id: int) -> str | None:
    """`Campaign.objects.filter(pk=campaign_id).values_list("status",
    flat=True).first()`: None if there is no such campaign."""
    rows = _fetch(f"SELECT status FROM {CAMPAIGN} WHERE id = %s", [campaign_id])
    return rows[0][0] if rows else None


def in_flight_size(until: datetime, *, without_waves: bool = False) -> int:
    """Messages of accepted batches Sinch has not finished, sent without a
    send_after or with one no later than `until`: `Batch.objects.filter(
    status=ACCEPTED).exclude(remote_status__in=REMOTE_DONE).filter(
    Q(send_after__isnull=True) | Q(send_after__lte=until))`, and
    `wave_at__isnull=True` when `without_waves`; the sum of their sizes."""
    waves = " AND wave_at IS NULL" if without_waves else ""
    rows = _fetch(
        f"SELECT SUM(size) FROM {BATCH} WHERE status = %s "
        f"AND remote_status NOT IN ({_marks(_REMOTE_DONE)}) "
        f"AND (send_after IS NULL OR send_after <= %s){waves}",
        [BatchStatus.ACCEPTED, *_REMOTE_DONE, db_time(until)],
    )
    return rows[0][0] or 0


def due_batches(campaign_id: int, now: datetime) -> list[int]:
    """The ids of the campaign's first few due batches, in sequence order:
    `Batch.objects.filter(campaign_id=campaign_id, is_test=False,
    status=PENDING).filter(Q(not_before__isnull=True) |
    Q(not_before__lte=now)).order_by("sequence")`, CANDIDATES of them."""
    rows = _fetch(
        f"SELECT id FROM {BATCH} WHERE campaign_id = %s AND is_test = %s "
        "AND status = %s AND (not_before IS NULL OR not_before <= %s) "
        f"ORDER BY sequence LIMIT {CANDIDATES}",
        [campaign_id, False, BatchStatus.PENDING, db_time(now)],
    )
    return [pk for (pk,) in rows]


def claim(pk: int, now: datetime, worker: str) -> bool:
    """PENDING -> SUBMITTING, if the batch is still PENDING; True if this
    call changed it: `Batch.objects.filter(pk=pk, status=PENDING).update(
    status=SUBMITTING, claimed_at=now, claimed_by=worker,
    attempts=F("attempts") + 1)`."""
    return bool(
        _execute(
            f"UPDATE {BATCH} SET status = %s, claimed_at = %s, claimed_by = %s, "
            "attempts = attempts + 1 WHERE id = %s AND status = %s",
            [BatchStatus.SUBMITTING, db_time(now), worker, pk, BatchStatus.PENDING],
        )
    )


def batch(pk: int) -> Batch:
    """`Batch.objects.get(pk=pk)` (Batch.DoesNotExist if it is gone)."""
    found = list(Batch.objects.raw(f"SELECT * FROM {BATCH} WHERE id = %s", [pk]))
    if not found:
        raise Batch.DoesNotExist(f"batch {pk}")
    return found[0]


def _assignments(model, fields: dict[str, Any]) -> tuple[list[str], list]:
    """SET clauses and their parameters for plain values (no expressions),
    each prepared as its field prepares it for a save."""
    quote, sets, params = connection.ops.quote_name, [], []
    for name, value in fields.items():
        field = model._meta.get_field(name)
        sets.append(f"{quote(field.column)} = %s")
        params.append(field.get_db_prep_save(value, connection))
    return sets, params


def settle_claim(pk: int, claim: datetime | None, fields: dict[str, Any]) -> bool:
    """Write the outcome of a claim, unless the batch moved on: `Batch.
    objects.filter(pk=pk, claimed_at=claim, status__in=(SUBMITTING,
    UNCERTAIN)).update(**fields)` for plain values; True if it changed."""
    sets, params = _assignments(Batch, fields)
    claimed = "claimed_at IS NULL" if claim is None else "claimed_at = %s"
    return bool(
        _execute(
            f"UPDATE {BATCH} SET {', '.join(sets)} WHERE id = %s AND {claimed} "
            "AND status IN (%s, %s)",
            [
                *params,
                pk,
                *([] if claim is None else [db_time(claim)]),
                BatchStatus.SUBMITTING,
                BatchStatus.UNCERTAIN,
            ],
        )
    )


def move_recipients(batch: Batch, old: str, new: str, **fields) -> int:
    """The batch's recipients in status `old` to `new` (and `fields`, plain
    values): `Recipient.in_batch(batch, old).update(status=new, **fields)`;
    how many moved."""
    sets, params = _assignments(Recipient, {"status": new, **fields})
    return _execute(
        f"UPDATE {RECIPIENT} SET {', '.join(sets)} "
        "WHERE campaign_id = %s AND batch_id = %s AND status = %s",
        [*params, batch.campaign_id, batch.pk, old],
    )
