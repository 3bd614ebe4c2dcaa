"""What the processors of one chunk of webhook events share: the chunk, its
outcomes, and the recipients its receipts see (campaigns.tracking.receipts
takes the chunk; deliveries, batch_statuses and replies apply their kind)."""

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime

from django.db import connection

from campaigns.models import WebhookEvent

State = WebhookEvent.State


@dataclass(slots=True)
class Outcome:
    id: int
    state: str
    error: str = ""
    kind: str = ""
    campaign_id: int | None = None


@dataclass(slots=True)
class RecipientRow:
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
    delivered_channel: str = ""
    start_status: str = ""
    changed: bool = False
    reached: list = field(default_factory=list)  # (status, minute)


@dataclass
class Chunk:
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
    # batch id -> Sinch batch id a callback revealed (batch not settled yet)
    learnt_sinch_ids: dict = field(default_factory=dict)


def lock_in_order(model, ids) -> None:
    if ids and connection.vendor == "postgresql":
        table = connection.ops.quote_name(model._meta.db_table)
        with connection.cursor() as cursor:
            cursor.execute(
                f"SELECT id FROM {table} WHERE id = ANY(%s) ORDER BY id FOR UPDATE",
                [sorted(ids)],
            )


def as_int(value) -> int | None:
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


def error_text(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}"[:2000]
