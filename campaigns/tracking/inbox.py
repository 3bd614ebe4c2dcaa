"""The webhook inbox: verified Sinch callbacks stored first, processed later.

The webhook view (campaigns.tracking.webhook) calls `store` for a callback whose
signature checked out, then `wake_processor`. Storing is one INSERT: the
nonce is unique, so a replayed callback is refused by the database itself,
and nothing is parsed beyond the view's JSON check. The processor
(`campaigns.tasks.process_webhook_events`) drains every NEW event in bulk;
waking it is debounced to about once per second per process, and the
periodic tick is the safety net for a wake that was lost (a worker killed
between the commit and the wake, a broker that was down).
"""

import logging
import os
import threading
import time
from datetime import UTC, datetime

from django.db import close_old_connections, connection, transaction
from django.utils import timezone
from django_q.conf import Conf
from django_q.tasks import async_task

from campaigns.models import WebhookEvent

logger = logging.getLogger(__name__)

PROCESSOR_TASK = "campaigns.tasks.process_webhook_events"
# At most one processor task queued per process per this many seconds.
WAKE_INTERVAL_S = 1.0


def store(body: str, nonce: str, signed_at: int) -> int | None:
    """Store one verified callback as a NEW event and return its id; None
    when its nonce was seen before (a replay: nothing is stored).

    `signed_at` is the signature's timestamp (Unix seconds). One statement,
    committed on its own (a single round trip: the webhook's whole cost in
    the database). Database errors propagate: the caller answers 5xx so that
    Sinch delivers the callback again.
    """
    table = connection.ops.quote_name(WebhookEvent._meta.db_table)
    with connection.cursor() as cursor:
        cursor.execute(
            f"INSERT INTO {table} "
            "(received_at, signed_at, nonce, body, kind, state, error) "
            "VALUES (%s, %s, %s, %s, '', %s, '') "
            "ON CONFLICT (nonce) DO NOTHING RETURNING id",
            [
                connection.ops.adapt_datetimefield_value(timezone.now()),
                connection.ops.adapt_datetimefield_value(
                    datetime.fromtimestamp(signed_at, UTC)
                ),
                nonce,
                body,
                WebhookEvent.State.NEW,
            ],
        )
        row = cursor.fetchone()
    return row[0] if row else None


def already_stored(nonce: str, body: str) -> bool:
    """Whether the callback with this nonce is stored with this very body: a
    delivery Sinch repeated because our first answer was lost."""
    return WebhookEvent.objects.filter(nonce=nonce, body=body).exists()


def queue_processor() -> None:
    """Queue one run of the processor (it drains every NEW event)."""
    async_task(PROCESSOR_TASK, task_name="process webhook events")


class Waker:
    """Runs `action` soon after `poke`, at most once per `interval` seconds.

    The first poke runs the action at once (on a daemon thread of this
    process); pokes during the following `interval` are folded into one more
    run at its end, so the last events of a burst are never left waiting for
    the periodic tick. Safe across fork: a child process starts its own thread.
    """

    def __init__(self, action, interval: float) -> None:
        self.action = action
        self.interval = interval
        self._wanted = threading.Event()
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._pid = 0
        self.runs = 0

    def poke(self) -> None:
        self._wanted.set()
        thread = self._thread
        if thread is None or self._pid != os.getpid() or not thread.is_alive():
            self._start()

    def _start(self) -> None:
        with self._lock:
            thread = self._thread
            if thread and self._pid == os.getpid() and thread.is_alive():
                return
            self._pid = os.getpid()
            self._thread = threading.Thread(
                target=self._loop, name="webhook-waker", daemon=True
            )
            self._thread.start()

    def _loop(self) -> None:
        while True:
            self._wanted.wait()
            self._wanted.clear()
            try:
                self.action()
                self.runs += 1
            except Exception:
                # The broker is down: the periodic tick processes the events.
                logger.exception("could not queue the webhook processor")
            finally:
                close_old_connections()  # this thread's, when broken or too old
            time.sleep(self.interval)


_waker = Waker(queue_processor, WAKE_INTERVAL_S)


def wake_processor() -> None:
    """Have the processor run once the current transaction commits.

    Debounced per process (see Waker). With a synchronous django-q (the
    tests) the task is queued, and so run, right after the commit instead.
    """
    if Conf.SYNC:
        transaction.on_commit(queue_processor)
    else:
        transaction.on_commit(_waker.poke)
