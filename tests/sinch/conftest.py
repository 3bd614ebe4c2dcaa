"""Fixtures for the Sinch boundary: a simulator on an ephemeral port, a
recording webhook receiver, and the real client pointed at the simulator."""

import dataclasses
import json
import threading
import time
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
import requests
from django.conf import settings

from sinch.client import SinchClient
from sinch.config import (
    SIMULATOR_APP_ID,
    SIMULATOR_KEY_ID,
    SIMULATOR_KEY_SECRET,
    SIMULATOR_PROJECT_ID,
)
from sinch.payloads import AppMessage, ChannelIdentity, Recipient, SendBatchRequest
from sinch.simulator import Account, Knobs, Simulator
from sinch.transport import RetryPolicy, Transport

WEBHOOK_SECRET = "test-webhook-secret"
ACCOUNT = Account(
    project_id=SIMULATOR_PROJECT_ID,
    app_id=SIMULATOR_APP_ID,
    key_id=SIMULATOR_KEY_ID,
    key_secret=SIMULATOR_KEY_SECRET,
    webhook_secret=WEBHOOK_SECRET,
)


def account_signing_as_the_app() -> Account:
    """The simulator's account, signing its callbacks with the app's own
    webhook secret (for tests whose callbacks reach the real webhook)."""
    secret = settings.SINCH_WEBHOOK_SECRET.split(",")[0]
    return dataclasses.replace(ACCOUNT, webhook_secret=secret)


class Receiver:
    """A webhook endpoint that records every request and answers as told."""

    def __init__(self) -> None:
        self.requests: list[tuple[dict[str, str], bytes]] = []
        self.statuses: list[int] = []  # answered in order; then 200
        self.times: list[float] = []  # monotonic arrival times
        self.lock = threading.Condition()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                with receiver.lock:
                    receiver.requests.append((dict(self.headers.items()), body))
                    receiver.times.append(time.monotonic())
                    status = receiver.statuses.pop(0) if receiver.statuses else 200
                    receiver.lock.notify_all()
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.server.block_on_close = False
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/webhook"
        threading.Thread(
            target=self.server.serve_forever,
            kwargs={"poll_interval": 0.05},
            daemon=True,
        ).start()

    def bodies(self) -> list[dict]:
        with self.lock:
            return [json.loads(body) for _, body in self.requests]

    def wait_for(
        self, predicate: Callable[[list[dict]], bool], timeout: float = 5.0
    ) -> list[dict]:
        """Wait until `predicate(bodies)` holds; return the bodies."""
        deadline = time.monotonic() + timeout
        while True:
            bodies = self.bodies()
            if predicate(bodies):
                return bodies
            if time.monotonic() > deadline:
                raise AssertionError(f"callbacks never matched; got {bodies!r}")
            with self.lock:
                self.lock.wait(0.05)

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def fast_knobs(**values) -> Knobs:
    """Knobs for tests: no random failures, receipts within milliseconds."""
    knobs = Knobs()
    knobs.update(
        {
            "failure_ratio": 0,
            "read_ratio": 0,
            "latency_s": 0.01,
            "processing_delay_s": 0.01,
            "drain_rate": 0,
            "callback_rate": 0,
            "callback_backoff_s": 0.05,
            "callback_workers": 2,
            "seed": 7,
            **values,
        }
    )
    return knobs


@pytest.fixture
def receiver():
    r = Receiver()
    yield r
    r.close()


@pytest.fixture
def simulator(receiver):
    sim = Simulator(account=ACCOUNT, knobs=fast_knobs(webhook_url=receiver.url))
    sim.start()
    yield sim
    sim.stop()


def make_client(sim: Simulator, **overrides) -> SinchClient:
    transport = Transport(
        timeout=overrides.pop("timeout", (2.0, 5.0)),
        retry=RetryPolicy(attempts=4, backoff_s=0.01, backoff_max_s=0.05),
    )
    values = {
        "project_id": ACCOUNT.project_id,
        "app_id": ACCOUNT.app_id,
        "key_id": ACCOUNT.key_id,
        "key_secret": ACCOUNT.key_secret,
        "batch_api_url": sim.url,
        "auth_url": sim.url,
        **overrides,
    }
    return SinchClient(transport=transport, **values)


@pytest.fixture
def client(simulator):
    return make_client(simulator)


def recipients(n: int, start: int = 0) -> list[Recipient]:
    return [
        Recipient(
            identities=[ChannelIdentity("SMS", f"+1555123{start + i:04d}")],
            parameters={"first_name": f"P{i}"},
        )
        for i in range(n)
    ]


def batch(n: int = 2, **extra) -> SendBatchRequest:
    return SendBatchRequest(
        message=AppMessage.text("Hi ${first_name}"), recipients=recipients(n), **extra
    )


class Control:
    """The simulator's /_simulator/ endpoints, over HTTP as a user would."""

    def __init__(self, sim: Simulator) -> None:
        self.url = sim.url + "/_simulator/"

    def post(self, name: str, **body) -> dict:
        response = requests.post(self.url + name, json=body, timeout=5)
        assert response.status_code == 200, response.text
        return response.json()

    def knobs(self, **values) -> dict:
        return self.post("knobs", **values)

    def state(self, **params) -> dict:
        response = requests.get(self.url + "state", params=params, timeout=5)
        assert response.status_code == 200, response.text
        return response.json()

    def wait_for_counter(self, name: str, at_least: int, timeout: float = 5.0):
        deadline = time.monotonic() + timeout
        while self.state()["counters"].get(name, 0) < at_least:
            assert time.monotonic() < deadline, f"{name} stayed below {at_least}"
            time.sleep(0.02)

    def wait_for_messages(self, at_least: int, timeout: float = 5.0) -> list[dict]:
        """The simulator's messages once it holds `at_least` (a batch's
        messages appear after its processing delay, not when it is accepted)."""
        deadline = time.monotonic() + timeout
        while len(messages := self.state()["messages"]) < at_least:
            assert time.monotonic() < deadline, f"fewer than {at_least} messages"
            time.sleep(0.02)
        return messages

    def wait_for_batch(self, batch_id: str, status: str, timeout: float = 5.0):
        deadline = time.monotonic() + timeout
        while True:
            batch = self.state(batch_id=batch_id)["batches"][0]
            if batch["status"] == status:
                return batch
            assert time.monotonic() < deadline, f"batch stayed {batch['status']}"
            time.sleep(0.02)


@pytest.fixture
def control(simulator):
    return Control(simulator)
