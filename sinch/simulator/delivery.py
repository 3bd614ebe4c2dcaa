"""Delivering callbacks: signed POSTs from worker threads, never from a request.

A bounded queue feeds the workers; the engine blocks on it when the webhook
is slower than the messages (Sinch queues too). A callback answered with
anything but 2xx is retried with exponential backoff (on the simulated
clock) up to `callback_max_attempts`, then recorded as failed.
"""

import http.client
import logging
import queue
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from urllib.parse import urlsplit

from sinch import signatures
from sinch.simulator.knobs import Knobs
from sinch.simulator.state import State

logger = logging.getLogger("sinch.simulator")
QUEUE_SIZE = 10_000
YIELD_S = 0.05


@dataclass(slots=True)
class Delivery:
    url: str
    body: bytes
    record: dict  # the entry in the state's callback log
    generation: int
    attempt: int = 0


class RateLimiter:
    """Token bucket shared by the workers; rate 0 means no limit."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._next = time.monotonic()

    def wait(self, rate: float) -> None:
        if rate <= 0:
            return
        with self._lock:
            now = time.monotonic()
            slot = max(self._next, now)
            self._next = slot + 1.0 / rate
        if slot > now:
            time.sleep(slot - now)


class CallbackSender:
    def __init__(
        self,
        *,
        state: State,
        knobs: Knobs,
        secret: str,
        retry_later: Callable[[float, Delivery], None],
        current_generation: Callable[[], int],
    ) -> None:
        self.state = state
        self.knobs = knobs
        self.secret = secret
        self._retry_later = retry_later
        self._generation = current_generation
        self._queue: queue.Queue[Delivery | None] = queue.Queue(QUEUE_SIZE)
        self._limiter = RateLimiter()
        self._threads: list[threading.Thread] = []
        self._local = threading.local()
        self._stopping = threading.Event()
        self.busy: Callable[[], bool] = lambda: False

    def start(self, workers: int) -> None:
        for n in range(max(1, workers)):
            thread = threading.Thread(
                target=self._work, name=f"sim-callbacks-{n}", daemon=True
            )
            thread.start()
            self._threads.append(thread)

    def stop(self) -> None:
        self._stopping.set()
        self.clear()
        for _ in self._threads:
            try:
                self._queue.put_nowait(None)
            except queue.Full:
                break
        for thread in self._threads:
            thread.join(timeout=2)

    def clear(self) -> None:
        try:
            while True:
                self._queue.get_nowait()
        except queue.Empty:
            pass

    def backlog(self) -> int:
        return self._queue.qsize()

    def submit(self, delivery: Delivery) -> None:
        """Queue a delivery; blocks while the queue is full (back-pressure)."""
        while not self._stopping.is_set():
            try:
                self._queue.put(delivery, timeout=0.2)
                return
            except queue.Full:
                continue

    def _work(self) -> None:
        while True:
            delivery = self._queue.get()
            if delivery is None or self._stopping.is_set():
                return
            if delivery.generation != self._generation():
                continue
            self._limiter.wait(self.knobs.callback_rate)
            self._yield_to_api()
            try:
                self._deliver(delivery)
            except Exception:  # a worker must outlive any one callback
                logger.exception("callback delivery crashed")

    def _yield_to_api(self) -> None:
        """API calls go first: while the API is busy, each callback waits
        YIELD_S (one sleep, not a polling loop that would keep taking the
        interpreter from the request threads). Even under constant API load
        each worker still sends 20 a second, about Sinch's own default."""
        if self.busy():
            time.sleep(YIELD_S)

    def _deliver(self, delivery: Delivery) -> None:
        delivery.attempt += 1
        record = delivery.record
        record["attempts"] = delivery.attempt
        headers = signatures.sign(delivery.body, self.secret)
        status = self._post(delivery.url, delivery.body, headers)
        record["http_status"] = status
        if status is not None and 200 <= status < 300:
            record["status"] = "delivered"
            self.state.count("callbacks_delivered")
            return
        self.state.count("callback_attempts_failed")
        if delivery.attempt >= self.knobs.callback_max_attempts:
            record["status"] = "failed"
            self.state.count("callbacks_failed")
            return
        record["status"] = "retrying"
        delay = self.knobs.callback_backoff_s * 2 ** (delivery.attempt - 1)
        self._retry_later(delay, delivery)

    def _post(self, url: str, body: bytes, headers: dict[str, str]) -> int | None:
        parts = urlsplit(url)
        path = parts.path or "/"
        if parts.query:
            path += "?" + parts.query
        for attempt in (1, 2):
            try:
                conn = self._connection(parts.scheme, parts.netloc)
                conn.request(
                    "POST",
                    path,
                    body=body,
                    headers={"Content-Type": "application/json", **headers},
                )
                response = conn.getresponse()
                response.read()
                if response.will_close:
                    self._drop(parts.scheme, parts.netloc)
                return response.status
            except (OSError, http.client.HTTPException) as exc:
                self._drop(parts.scheme, parts.netloc)
                # A kept-alive connection the server closed: retry once at once.
                if attempt == 2 or not isinstance(
                    exc, http.client.RemoteDisconnected | ConnectionResetError
                ):
                    logger.debug("callback to %s failed: %s", url, exc)
                    return None
        return None

    def _connection(self, scheme: str, netloc: str) -> http.client.HTTPConnection:
        pool = self._local.__dict__.setdefault("pool", {})
        conn = pool.get((scheme, netloc))
        if conn is None:
            cls = (
                http.client.HTTPSConnection
                if scheme == "https"
                else http.client.HTTPConnection
            )
            conn = cls(netloc, timeout=self.knobs.callback_timeout_s)
            conn.connect()
            conn.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            pool[(scheme, netloc)] = conn
        return conn

    def _drop(self, scheme: str, netloc: str) -> None:
        conn = self._local.__dict__.get("pool", {}).pop((scheme, netloc), None)
        if conn is not None:
            conn.close()
