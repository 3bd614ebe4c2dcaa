"""Everything the simulator remembers, behind one lock.

Memory stays bounded for a million recipients: a batch keeps its raw request
body only until its messages are generated, and per-message and per-callback
detail is kept for the most recent ones only (counts are kept for all).
"""

import threading
from collections import Counter, defaultdict, deque
from datetime import UTC, datetime
from typing import Any

from sinch import wire

MAX_MESSAGES_KEPT = 100_000
MAX_CALLBACKS_KEPT = 20_000


def iso(moment: float) -> str:
    return wire.format_time(datetime.fromtimestamp(moment, UTC))


def identity_key(identity: str) -> str:
    """Phone numbers match with or without "+", spaces or dashes."""
    digits = identity.replace(" ", "").replace("-", "").lstrip("+")
    return digits if digits.isdigit() else identity


class Batch:
    __slots__ = (
        "accepted_at",
        "batch_id",
        "body",
        "callback_url",
        "counts",
        "metadata",
        "scheduled",
        "send_after",
        "size",
        "status",
    )

    def __init__(
        self,
        *,
        batch_id: str,
        body: bytes,
        size: int,
        metadata: dict,
        accepted_at: float,
        send_after: float,
        scheduled: bool,
        callback_url: str,
    ) -> None:
        self.batch_id = batch_id
        self.body: bytes | None = body
        self.size = size
        self.metadata = metadata
        self.accepted_at = accepted_at
        self.send_after = send_after
        self.scheduled = scheduled
        self.status = "SCHEDULED" if scheduled else "READY"
        self.callback_url = callback_url
        self.counts: Counter = Counter()

    def to_wire(self) -> dict[str, Any]:
        return {
            "batch_id": self.batch_id,
            "meta_data": self.metadata,
            "status": self.status,
            "send_after": iso(self.send_after),
        }

    def summary(self) -> dict[str, Any]:
        return {
            **self.to_wire(),
            "accepted_at": iso(self.accepted_at),
            "size": self.size,
            "message_statuses": {k: n for k, n in self.counts.items() if n},
        }


class Message:
    __slots__ = (
        "batch_id",
        "channel",
        "contact_id",
        "identity",
        "index",
        "message_id",
        "metadata",
        "rendered",
        "status",
        "step",
    )

    def __init__(self, **values: Any) -> None:
        for name in self.__slots__:
            setattr(self, name, values.get(name, ""))
        self.step = -1

    def to_json(self) -> dict[str, Any]:
        return {name: getattr(self, name) for name in self.__slots__ if name != "step"}


class State:
    def __init__(self) -> None:
        self.lock = threading.RLock()
        self.clear()

    def clear(self) -> None:
        with self.lock:
            self.batches: dict[str, Batch] = {}
            self.by_metadata: dict[tuple[str, str], list[Batch]] = defaultdict(list)
            self.messages: deque[Message] = deque(maxlen=MAX_MESSAGES_KEPT)
            self.callbacks: deque[dict] = deque(maxlen=MAX_CALLBACKS_KEPT)
            self.contacts: dict[str, dict] = {}
            self.opt_outs: dict[str, set[str]] = defaultdict(set)
            # Conversation metadata of the last message to an identity, for replies.
            self.conversations: dict[str, str] = {}
            # When each identity last wrote on WhatsApp (its 24-hour window).
            self.whatsapp_inbound: dict[str, float] = {}
            self.tokens: dict[str, float] = {}
            # The app's webhooks as registered (sinch.simulator.app_setup).
            self.webhooks: dict[str, dict] = {}
            self.injected: deque[dict] = deque()
            self.counters: Counter = Counter()

    def add_batch(self, batch: Batch) -> None:
        with self.lock:
            self.batches[batch.batch_id] = batch
            for item in batch.metadata.items():
                self.by_metadata[item].append(batch)
            self.counters["batches_accepted"] += 1
            self.counters["recipients_accepted"] += batch.size

    def count(self, name: str, n: int = 1) -> None:
        with self.lock:
            self.counters[name] += n

    def to_json(self, *, batch_id: str = "", limit: int = 100) -> dict[str, Any]:
        with self.lock:
            batches = (
                [self.batches[batch_id]]
                if batch_id in self.batches
                else list(self.batches.values())[-limit:]
            )
            messages = [
                m for m in self.messages if not batch_id or m.batch_id == batch_id
            ][-limit:]
            return {
                "counters": dict(self.counters),
                "batches": [b.summary() for b in batches],
                "messages": [m.to_json() for m in messages],
                "callbacks": list(self.callbacks)[-limit:],
                "contacts": list(self.contacts.values())[-limit:],
                "opt_outs": {k: sorted(v) for k, v in self.opt_outs.items()},
            }
