"""The simulator's clockwork: batch lifecycle, the message drain and receipts.

One thread owns a heap of timed actions on the simulated clock. Request
threads only push onto it, so an API call never waits for callbacks:

    accepted -> SCHEDULED --(send_after)--> READY --(processing delay)-->
    PROCESSED -> messages drained at `drain_rate` -> receipts over time;
    SCHEDULED --cancel--(cancel delay)--> CANCELLED, unless due by then.

Messages are generated lazily by the drain, never more than DRAIN_CAP
pending actions ahead of the callback workers, so a million recipients
do not have to fit in memory at once.
"""

import heapq
import itertools
import json
import logging
import random
import threading
import time
from collections import deque
from collections.abc import Callable
from typing import Any

from sinch import channel_templates, wire
from sinch.placeholders import render
from sinch.simulator import clicks, events, outcomes
from sinch.simulator.clock import SimClock
from sinch.simulator.delivery import CallbackSender, Delivery
from sinch.simulator.ids import ulid
from sinch.simulator.knobs import Account, Knobs
from sinch.simulator.state import Batch, Message, State, identity_key

logger = logging.getLogger("sinch.simulator")
DRAIN_CAP = 20_000


class _Cursor:
    """A processed batch whose messages are still being generated.

    The body is parsed when the drain first reaches the batch, not before: at
    a million recipients the raw bytes are ten times smaller than the dicts.
    """

    def __init__(self, batch: Batch, ready_at: float) -> None:
        self.batch = batch
        self.ready_at = ready_at
        self.index = 0
        self.items: list | None = None
        self.failed = 0  # recipients reported in processing reports

    def load(self) -> None:
        data = json.loads(self.batch.body or b"{}")
        self.batch.body = None
        self.items = data.get("recipient_and_params", [])
        self.message = data["message"]
        self.message_metadata = data.get("message_metadata") or {}
        self.conversation_metadata = data.get("conversation_metadata") or {}
        self.priority = data.get("channel_priority_order") or []
        ttl = data.get("ttl")
        self.ttl = int(ttl[:-1]) if ttl else None
        self.correlation_id = data.get("correlation_id", "")
        self.content_type = data.get("message_content_type", "")
        self.dispatch_only = data.get("processing_strategy") == "DISPATCH_ONLY"
        self.free_form_on_whatsapp = channel_templates.free_form_on_whatsapp(
            self.message
        )


class Engine:
    def __init__(
        self, *, state: State, knobs: Knobs, clock: SimClock, account: Account
    ) -> None:
        self.state = state
        self.knobs = knobs
        self.clock = clock
        self.account = account
        self.sender = CallbackSender(
            state=state,
            knobs=knobs,
            secret=account.webhook_secret,
            retry_later=lambda delay, d: self.later(delay, self._retry, d),
            current_generation=lambda: self.generation,
        )
        self.generation = 0
        self._heap: list = []
        self._seq = itertools.count()
        self._cond = threading.Condition()
        self._drain: deque[_Cursor] = deque()
        self._next_drain = 0.0
        self._stopped = False
        self._thread: threading.Thread | None = None
        self.rng = random.Random(knobs.seed or None)
        self.busy: Callable[[], bool] = lambda: False

    # --- running ---

    def start(self) -> None:
        self.sender.start(self.knobs.callback_workers)
        self._thread = threading.Thread(
            target=self._run, name="sim-engine", daemon=True
        )
        self._thread.start()

    def stop(self) -> None:
        with self._cond:
            self._stopped = True
            self._cond.notify_all()
        self.sender.stop()
        if self._thread:
            self._thread.join(timeout=2)

    def reset(self) -> None:
        """Forget everything pending; callbacks already queued are not sent."""
        with self._cond:
            self.generation += 1
            self._heap.clear()
            self._drain.clear()
            self.sender.clear()
            self.rng = random.Random(self.knobs.seed or None)
            self._cond.notify_all()

    def wake(self) -> None:
        with self._cond:
            self._cond.notify_all()

    def at(self, when: float, action: Callable, *args: Any) -> None:
        with self._cond:
            entry = (when, next(self._seq), self.generation, action, args)
            heapq.heappush(self._heap, entry)
            if self._heap[0] is entry:
                self._cond.notify_all()

    def later(self, delay: float, action: Callable, *args: Any) -> None:
        self.at(self.clock.now() + delay, action, *args)

    def _run(self) -> None:
        while True:
            with self._cond:
                if self._stopped:
                    return
                now = self.clock.now()
                due = []
                while self._heap and self._heap[0][0] <= now:
                    due.append(heapq.heappop(self._heap))
                generation = self.generation
            for _, _, gen, action, args in due:
                if gen == generation:
                    self._safely(action, *args)
            try:
                drained = self._drain_some()
            except Exception:  # e.g. a reset emptied the drain meanwhile
                logger.exception("simulator drain failed")
                drained = 0
            with self._cond:
                if not due and not drained and not self._stopped:
                    self._cond.wait(self._idle_wait())

    def _safely(self, action: Callable, *args: Any) -> None:
        try:
            action(*args)
        except Exception:  # one bad action must not stop the clock
            logger.exception("simulator action %s failed", action.__name__)

    def _idle_wait(self) -> float:
        now = self.clock.now()
        wait = 0.5
        if self._heap:
            wait = min(wait, self.clock.real_seconds(self._heap[0][0] - now))
        if self._drain and self._pending() < DRAIN_CAP:
            wait = min(wait, self.clock.real_seconds(self._next_drain - now))
        return max(wait, 0.001)

    def queued_now(self) -> int:
        """Messages of processed batches the drain has not sent yet."""
        total = 0
        for cursor in list(self._drain):
            items = cursor.items
            total += (len(items) if items is not None else cursor.batch.size) - (
                cursor.index
            )
        return total

    def _pending(self) -> int:
        return len(self._heap) + self.sender.backlog()

    # --- batches ---

    def accept(self, batch: Batch) -> None:
        """A batch was stored (called from a request thread)."""
        self.later(0, self._emit_status, batch, batch.status)
        if batch.scheduled:
            self.at(batch.send_after, self._due, batch)
        else:
            self.later(self.knobs.processing_delay_s, self._processed, batch)

    def cancel(self, batch: Batch) -> bool:
        """Ask to cancel a scheduled batch (called from a request thread).

        Like Sinch, asynchronously: the cancel takes effect `cancel_delay_s`
        later (a status read meanwhile still says SCHEDULED), and a share
        `cancel_failure_ratio` of cancels silently never happens. False when
        it is too late already (not scheduled, or due).
        """
        with self.state.lock:
            if batch.status != "SCHEDULED" or self.clock.now() >= batch.send_after:
                return False
        if self.rng.random() < self.knobs.cancel_failure_ratio:
            logger.info("simulator: cancel of %s silently dropped", batch.batch_id)
            return True
        self.later(self.knobs.cancel_delay_s, self._cancelled, batch)
        return True

    def _cancelled(self, batch: Batch) -> None:
        """A requested cancel takes effect, unless the batch went meanwhile."""
        with self.state.lock:
            if batch.status != "SCHEDULED" or self.clock.now() >= batch.send_after:
                return
            batch.status = "CANCELLED"
            batch.body = None
        self._emit_status(batch, "CANCELLED")

    def _due(self, batch: Batch) -> None:
        with self.state.lock:
            if batch.status != "SCHEDULED":
                return
            batch.status = "READY"
        self._emit_status(batch, "READY")
        self.later(self.knobs.processing_delay_s, self._processed, batch)

    def _processed(self, batch: Batch) -> None:
        with self.state.lock:
            if batch.status != "READY":
                return
            batch.status = "PROCESSED"
        self._emit_status(batch, "PROCESSED")
        self._drain.append(_Cursor(batch, self.clock.now()))

    def _emit_status(self, batch: Batch, status: str, counts=None) -> None:
        """A batch status update in the knobs' style. The event style tells
        only how a batch ended (COMPLETED / PARTIAL / FAILED, once its
        messages are generated: `_finished`) or that it was CANCELLED."""
        style = self.knobs.batch_status_style
        if style == "event" and status in ("SCHEDULED", "READY", "PROCESSED"):
            return
        payload = events.batch_status_update(
            self.account,
            batch,
            status,
            self.clock.now(),
            style=style,
            key=self.knobs.batch_status_key,
            counts=counts,
        )
        self.emit(payload, "BATCH_STATUS_UPDATE", self.knobs.webhook_url)

    def _finished(self, cursor: _Cursor) -> None:
        """Every message of the batch was generated (or reported failed)."""
        if self.knobs.batch_status_style == "event":
            total = len(cursor.items or ())
            status = events.event_outcome(total, cursor.failed)
            self._emit_status(cursor.batch, status, (total, cursor.failed))

    # --- messages ---

    def _drain_some(self) -> int:
        made = 0
        rate = self.knobs.drain_rate
        while self._drain and self._pending() < DRAIN_CAP and made < 1000:
            now = self.clock.now()
            if rate and self._next_drain > now:
                break
            cursor = self._drain[0]
            if cursor.items is None:
                cursor.load()
            if cursor.index >= len(cursor.items):
                self._drain.popleft()
                self._finished(cursor)
                continue
            self._send_one(cursor, cursor.index, now)
            cursor.index += 1
            made += 1
            if made % 50 == 0 and self.busy():
                time.sleep(0.002)  # the API goes first
            if rate:
                self._next_drain = max(self._next_drain, now) + 1.0 / rate
        return made

    def _send_one(self, cursor: _Cursor, index: int, now: float) -> None:
        item = cursor.items[index]
        batch = cursor.batch
        recipient = item["recipient"]
        mode = self._mode(cursor)
        if "contact_id" in recipient:
            contact = self.state.contacts.get(recipient["contact_id"])
            if mode == "DISPATCH" or contact is None:
                reason = "CONTACT_NOT_FOUND" if contact is None else "BAD_REQUEST"
                known = contact["channel_identities"][:1] if contact else []
                payload = events.processing_report(
                    self.account,
                    batch.batch_id,
                    index,
                    reason,
                    now,
                    style=self.knobs.batch_status_style,
                    key=self.knobs.processing_report_key,
                    base=self.knobs.report_index_base,
                    identity=(known[0]["channel"], known[0]["identity"])
                    if known
                    else None,
                )
                cursor.failed += 1
                self.emit(payload, "BATCH_PROCESSING_REPORT", self.knobs.webhook_url)
                return
            pairs = [
                (c["channel"], c["identity"]) for c in contact["channel_identities"]
            ]
            priority = cursor.priority or contact.get("channel_priority") or []
            contact_id = contact["id"]
        else:
            identities = recipient["identified_by"]["channel_identities"]
            pairs = [(c["channel"], c["identity"]) for c in identities]
            priority = cursor.priority
            contact_id = ""
        given = pairs
        pairs = outcomes.order_identities(pairs, priority)
        batch_key = {wire.RESERVED_METADATA_KEY: batch.batch_id}
        metadata = {
            **cursor.message_metadata,
            **(item.get("message_metadata") or {}),
            **batch_key,
        }
        conversation = {
            **cursor.conversation_metadata,
            **(item.get("conversation_metadata") or {}),
            **batch_key,
        }
        named = pairs[0] if pairs else given[0] if given else ("", "")
        message = Message(
            message_id=ulid(),
            batch_id=batch.batch_id,
            index=index,
            channel=named[0],
            identity=named[1],
            contact_id=contact_id,
            metadata=json.dumps(
                metadata, separators=events.COMPACT, ensure_ascii=False
            ),
            rendered=render(cursor.message, item.get("parameters") or {}),
            status="QUEUED",
        )
        conversation_json = json.dumps(conversation, separators=events.COMPACT)
        expired = cursor.ttl is not None and now - cursor.ready_at > cursor.ttl
        if not pairs:
            steps = outcomes.no_channels_left(named, knobs=self.knobs, rng=self.rng)
        else:
            steps = outcomes.plan(
                pairs,
                knobs=self.knobs,
                rng=self.rng,
                blocked=lambda identity: self._blocked(identity, cursor.content_type),
                expired=expired,
                window_closed=lambda channel, identity: (
                    cursor.free_form_on_whatsapp
                    and channel == "WHATSAPP"
                    and self._window_closed(identity, now)
                ),
            )
        with self.state.lock:
            self.state.messages.append(message)
            batch.counts["QUEUED"] += 1
            for _, identity in pairs:
                self.state.conversations[identity_key(identity)] = conversation_json
        for n, step in enumerate(steps):
            self.at(now + step.delay, self._receipt, message, n, step, cursor, mode)

    def _mode(self, cursor: _Cursor) -> str:
        return "DISPATCH" if cursor.dispatch_only else self.knobs.processing_mode

    def _window_closed(self, identity: str, now: float) -> bool:
        """WhatsApp's customer-service window: open `whatsapp_window_h` hours
        after the identity's last inbound WhatsApp message."""
        with self.state.lock:
            wrote = self.state.whatsapp_inbound.get(identity_key(identity))
        return wrote is None or now - wrote > self.knobs.whatsapp_window_h * 3600

    def _blocked(self, identity: str, content_type: str) -> bool:
        if self.knobs.consent_management != "primary":
            return False
        lists = self.state.opt_outs.get(identity_key(identity))
        if not lists:
            return False
        wanted = {"OPT_OUT_ALL"}
        if content_type == "CONTENT_MARKETING":
            wanted.add("OPT_OUT_MARKETING")
        elif content_type == "CONTENT_NOTIFICATION":
            wanted.add("OPT_OUT_NOTIFICATION")
        return bool(lists & wanted)

    def _receipt(
        self, message: Message, n: int, step: outcomes.Step, cursor: _Cursor, mode: str
    ) -> None:
        batch = cursor.batch
        with self.state.lock:
            if n > message.step:
                batch.counts[message.status] -= 1
                batch.counts[step.status] += 1
                message.step, message.status = n, step.status
                message.channel, message.identity = step.channel, step.identity
        payload = events.delivery_report(
            self.account,
            message,
            status=step.status,
            channel=step.channel,
            identity=step.identity,
            reason=step.reason,
            mode=mode,
            correlation_id=cursor.correlation_id,
            now=self.clock.now(),
        )
        url = batch.callback_url or self.knobs.webhook_url
        self.emit(payload, "MESSAGE_DELIVERY", url)
        if step.status == "DELIVERED" and self.rng.random() < self.knobs.click_ratio:
            clicks.open_later(clicks.links_in(message.rendered))  # --click-ratio

    # --- callbacks ---

    def emit(self, payload: dict, kind: str, url: str) -> None:
        """Record one callback and hand it to the workers (or drop it)."""
        body = events.dumps(payload)
        copies = 1
        status = "queued"
        if not url:
            status = "no_webhook_url"
        elif self.knobs.drop_ratio and self.rng.random() < self.knobs.drop_ratio:
            status = "dropped"
        elif (
            self.knobs.duplicate_ratio
            and self.rng.random() < self.knobs.duplicate_ratio
        ):
            copies = 2
        for copy in range(copies):
            record = {
                "kind": kind,
                "url": url,
                "status": status,
                "attempts": 0,
                "http_status": None,
                "duplicate": copy > 0,
                "body": body.decode(),
            }
            with self.state.lock:
                self.state.callbacks.append(record)
                self.state.counters["callbacks_emitted"] += 1
                if status == "dropped":
                    self.state.counters["callbacks_dropped"] += 1
            if status == "queued":
                self.sender.submit(Delivery(url, body, record, self.generation))

    def _retry(self, delivery: Delivery) -> None:
        self.sender.submit(delivery)
