"""The Sinch webhook (POST /webhooks/sinch): only signed, fresh, new, JSON
callbacks are stored, each refusal changes nothing, and a stored callback
wakes the processor."""

import io
import json
import logging
import threading
import time
from datetime import UTC, datetime, timedelta

import pytest
from django.core.handlers.asgi import ASGIRequest
from django.db import OperationalError, connection
from django.urls import URLPattern, URLResolver, get_resolver, reverse
from django.utils import timezone
from django_q.models import OrmQ, Task

from campaigns.models import InboundMessage, WebhookEvent
from campaigns.tracking import inbox, webhook
from sinch import signatures, wire
from tests.sinch.conftest import WEBHOOK_SECRET, batch, make_client

URL = "/webhooks/sinch"
RECEIPT = {
    "app_id": "01SIMAPP000000000000000000",
    "project_id": "sim-project",
    "accepted_time": "2026-03-01T10:00:00.000Z",
    "event_time": "2026-03-01T10:00:01.000Z",
    "message_delivery_report": {
        "message_id": "01MSG0000000000000000000001",
        "status": "DELIVERED",
        "channel_identity": {"channel": "SMS", "identity": "15551230001"},
        "metadata": '{"cm_recipient":"1","secret_marker":"do-not-log-me"}',
    },
}
BODY = json.dumps(RECEIPT).encode()


def signed(body: bytes = BODY, secret: str = WEBHOOK_SECRET, **sign) -> dict:
    return signatures.sign(body, secret, **sign)


def post(client, body: bytes = BODY, headers: dict | None = None, **extra):
    if headers is None:
        headers = signed(body)
    return client.generic(
        "POST", URL, body, content_type="application/json", headers=headers, **extra
    )


def database_rows() -> dict[str, int]:
    """Everything a callback could leave behind."""
    return {
        "events": WebhookEvent.objects.count(),
        "replies": InboundMessage.objects.count(),
        "queued tasks": OrmQ.objects.count(),
        "task results": Task.objects.count(),
    }


@pytest.fixture
def wakes(monkeypatch):
    """The processor runs queued, recorded instead of run."""
    queued: list[float] = []
    monkeypatch.setattr(inbox, "queue_processor", lambda: queued.append(1))
    return queued


@pytest.fixture
def refused(db, client, wakes, caplog, django_capture_on_commit_callbacks):
    """Post, and check the refusal: the status, nothing stored, nothing
    queued, and a warning that does not quote the body."""

    def check(status: int, body: bytes = BODY, headers=None, method="POST", **extra):
        before = database_rows()
        caplog.clear()
        with (
            caplog.at_level(logging.WARNING, logger="campaigns.tracking.webhook"),
            django_capture_on_commit_callbacks(execute=True),
        ):
            if method == "POST":
                response = post(client, body, headers, **extra)
            else:
                response = client.generic(method, URL)
        assert response.status_code == status, response.content
        assert database_rows() == before
        assert wakes == []
        if status != 405:
            warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
            assert warnings, "a refusal is logged"
            assert all("do-not-log-me" not in r.getMessage() for r in caplog.records)
        return response

    return check


# --- accepted ---------------------------------------------------------------


def test_a_signed_receipt_is_stored_raw_as_new_and_wakes_the_processor(
    db, client, wakes, django_capture_on_commit_callbacks
):
    body = b'{"message_delivery_report": {"status": "DELIVERED"},  "x": "\xc3\xa9"}'
    headers = signed(body, nonce="nonce-1", timestamp=int(time.time()) - 5)
    with django_capture_on_commit_callbacks(execute=True):
        response = post(client, body, headers)
    assert response.status_code == 200
    assert len(response.content) < 10
    event = WebhookEvent.objects.get()
    assert event.state == WebhookEvent.State.NEW
    assert event.nonce == "nonce-1"
    assert event.body == body.decode()  # as received, spacing and all
    signed_at = datetime.fromtimestamp(int(headers[wire.TIMESTAMP_HEADER]), UTC)
    assert event.signed_at == signed_at
    assert abs(event.received_at - timezone.now()) < timedelta(seconds=5)
    assert wakes == [1]


def test_events_for_unknown_messages_are_stored_all_the_same(db, client, wakes):
    body = json.dumps({"something_sinch_adds_later": {"id": "x"}}).encode()
    assert post(client, body).status_code == 200
    assert WebhookEvent.objects.filter(state=WebhookEvent.State.NEW).count() == 1


def test_the_woken_processor_keeps_a_receipt_for_an_unknown_message_as_orphan(
    db, client, django_capture_on_commit_callbacks
):
    """The wake queues the real task by name (run inline in the tests)."""
    with django_capture_on_commit_callbacks(execute=True):
        assert post(client).status_code == 200
    event = WebhookEvent.objects.get()
    assert event.state == WebhookEvent.State.ORPHAN


def test_a_callback_signed_with_the_previous_secret_verifies_while_rotating(
    db, client, wakes, settings
):
    settings.SINCH_WEBHOOK_SECRET = "the-new-one, " + WEBHOOK_SECRET
    assert post(client, BODY, signed(BODY, WEBHOOK_SECRET)).status_code == 200
    assert post(client, BODY, signed(BODY, "the-new-one")).status_code == 200
    assert WebhookEvent.objects.count() == 2


def test_the_same_receipt_with_fresh_nonces_is_stored_each_time(db, client, wakes):
    """Sinch signs every retry anew: the processor counts it once (dedupe)."""
    for _ in range(3):
        assert post(client).status_code == 200
    assert WebhookEvent.objects.count() == 3


# --- refused ----------------------------------------------------------------


def test_an_unsigned_callback_is_refused(refused):
    refused(401, headers={})


@pytest.mark.parametrize(
    "missing",
    [wire.SIGNATURE_HEADER, wire.NONCE_HEADER, wire.TIMESTAMP_HEADER],
)
def test_a_callback_missing_one_signature_header_is_refused(refused, missing):
    headers = signed()
    del headers[missing]
    refused(401, headers=headers)


def test_a_callback_signed_with_another_secret_is_refused(refused):
    refused(401, headers=signed(BODY, "someone-elses-secret"))


def test_a_body_altered_after_signing_is_refused(refused):
    headers = signed(BODY)
    altered = BODY.replace(b"DELIVERED", b"READ")
    refused(401, altered, headers)


def test_a_forged_signature_header_is_refused(refused):
    headers = signed()
    headers[wire.SIGNATURE_HEADER] = "AAAA" + headers[wire.SIGNATURE_HEADER][4:]
    refused(401, headers=headers)


@pytest.mark.parametrize("offset", [-301, +301, -86_400])
def test_a_stale_or_future_timestamp_is_refused_even_when_well_signed(refused, offset):
    refused(401, headers=signed(BODY, timestamp=int(time.time()) + offset))


def test_a_timestamp_that_is_no_number_is_refused(refused):
    stamp = "yesterday"
    signature = signatures.compute_signature(WEBHOOK_SECRET, BODY, "n", stamp)
    refused(
        401,
        headers={
            wire.SIGNATURE_HEADER: signature,
            wire.NONCE_HEADER: "n",
            wire.TIMESTAMP_HEADER: stamp,
        },
    )


def test_the_timestamp_window_is_a_setting(refused, settings):
    settings.SINCH_WEBHOOK_TOLERANCE_S = 30
    refused(401, headers=signed(BODY, timestamp=int(time.time()) - 60))


def test_a_callback_delivered_again_is_acknowledged_and_stored_once(db, client, wakes):
    """Sinch delivers a callback again when our first 200 was lost: it gets a
    200 (else Sinch retries it forever) and nothing new is stored."""
    headers = signed(BODY, nonce="seen-once")
    assert post(client, BODY, headers).status_code == 200
    again = post(client, BODY, headers)
    assert again.status_code == 200
    assert again.content == b"already received"
    assert WebhookEvent.objects.filter(nonce="seen-once").count() == 1


def test_a_spent_nonce_with_another_body_is_refused(refused, client):
    assert post(client, BODY, signed(BODY, nonce="seen-once")).status_code == 200
    other = BODY.replace(b"DELIVERED", b"READ")
    refused(401, other, signed(other, nonce="seen-once"))
    assert WebhookEvent.objects.filter(nonce="seen-once").count() == 1


def test_a_body_declared_larger_than_the_limit_is_refused(refused, settings):
    settings.WEBHOOK_MAX_BODY_BYTES = 1000
    big = json.dumps({**RECEIPT, "padding": "x" * 1200}).encode()
    refused(413, big, signed(big))


def test_a_huge_content_length_is_refused_before_the_body_is_read(refused):
    refused(413, CONTENT_LENGTH=str(10**10))


def test_a_body_at_the_limit_is_accepted(db, client, wakes, settings):
    settings.WEBHOOK_MAX_BODY_BYTES = len(BODY)
    assert post(client).status_code == 200


def test_a_body_larger_than_the_limit_without_content_length_is_refused(
    db, wakes, settings, caplog
):
    """A chunked request through ASGI has no Content-Length: the body read
    itself is limited."""
    settings.WEBHOOK_MAX_BODY_BYTES = 1000
    big = json.dumps({**RECEIPT, "padding": "x" * 1200}).encode()
    scope = {
        "type": "http",
        "method": "POST",
        "path": URL,
        "query_string": b"",
        "headers": [(k.encode(), v.encode()) for k, v in signed(big).items()]
        + [(b"content-type", b"application/json")],
    }
    request = ASGIRequest(scope, io.BytesIO(big))
    assert request.META.get("CONTENT_LENGTH") is None
    with caplog.at_level(logging.WARNING, logger="campaigns.tracking.webhook"):
        response = webhook.sinch_webhook(request)
    assert response.status_code == 413
    assert WebhookEvent.objects.count() == 0
    assert wakes == []
    assert "do-not-log-me" not in caplog.text


@pytest.mark.parametrize(
    "body",
    [b"not json at all", b"[1, 2, 3]", b'"a string"', b"", b"\xff\xfe{}"],
    ids=["not JSON", "JSON array", "JSON string", "empty", "not UTF-8"],
)
def test_a_well_signed_body_that_is_no_json_object_is_refused(refused, body):
    refused(400, body, signed(body))


@pytest.mark.parametrize("method", ["GET", "PUT", "DELETE", "PATCH"])
def test_any_method_but_post_is_refused(refused, method):
    response = refused(405, method=method)
    assert response["Allow"] == "POST"


def test_without_a_webhook_secret_callbacks_are_refused_for_a_retry(
    db, client, wakes, settings, caplog
):
    """Real credentials but no secret: nothing can verify, the fault is ours,
    so the answer asks Sinch to retry (and an error is logged)."""
    settings.SINCH_PROJECT_ID = "real-project"
    settings.SINCH_WEBHOOK_SECRET = ""
    response = post(client)
    assert response.status_code == 503
    assert WebhookEvent.objects.count() == 0
    assert wakes == []
    assert any(
        r.levelno == logging.ERROR and "SINCH_WEBHOOK_SECRET" in r.getMessage()
        for r in caplog.records
    )


def test_when_the_database_is_down_the_callback_is_answered_503_for_a_retry(
    db, client, wakes, caplog, django_capture_on_commit_callbacks
):
    def database_down(execute, sql, params, many, context):
        if "INSERT" in sql.upper() and WebhookEvent._meta.db_table in sql:
            raise OperationalError("connection to server lost")
        return execute(sql, params, many, context)

    with (
        connection.execute_wrapper(database_down),
        django_capture_on_commit_callbacks(execute=True),
    ):
        response = post(client)
    assert response.status_code == 503
    assert WebhookEvent.objects.count() == 0
    assert wakes == []
    assert "do-not-log-me" not in caplog.text
    # Once the database is back, Sinch's retry is stored.
    assert post(client).status_code == 200
    assert WebhookEvent.objects.count() == 1


# --- the only CSRF-exempt view ----------------------------------------------


def _views(patterns, prefix=""):
    for entry in patterns:
        if isinstance(entry, URLResolver):
            yield from _views(entry.url_patterns, prefix + str(entry.pattern))
        elif isinstance(entry, URLPattern):
            yield prefix + str(entry.pattern), entry.callback


def test_the_webhook_is_the_only_view_exempt_from_csrf():
    exempt = [
        route
        for route, view in _views(get_resolver().url_patterns)
        if getattr(view, "csrf_exempt", False)
    ]
    assert exempt == ["webhooks/sinch"]
    assert reverse("sinch-webhook") == URL


# --- waking the processor ---------------------------------------------------


def test_waking_the_processor_is_debounced_and_never_drops_the_last_wake():
    runs: list[float] = []
    done = threading.Event()

    def run():
        runs.append(time.monotonic())
        if len(runs) >= 2:
            done.set()

    waker = inbox.Waker(run, interval=0.3)
    for _ in range(50):  # a burst of callbacks
        waker.poke()
    assert done.wait(5), "the burst's last events got their wake"
    time.sleep(0.5)
    assert len(runs) == 2  # the whole burst: one run now, one after the interval
    assert runs[1] - runs[0] >= 0.3
    waker.poke()  # a later callback wakes it again
    deadline = time.monotonic() + 5
    while len(runs) < 3 and time.monotonic() < deadline:
        time.sleep(0.01)
    assert len(runs) == 3


# --- the simulator's real callbacks, end to end -------------------------------


@pytest.mark.parametrize("style", ["rest", "event"])
def test_the_simulators_signed_callbacks_are_stored_end_to_end(
    live_server, sim, control, monkeypatch, style
):
    """Receipts and batch status updates from the simulator (in either style
    of batch status update), over HTTP to the app, are all answered 200 and
    stored; an inbound STOP too."""
    monkeypatch.setattr(inbox, "queue_processor", lambda: None)
    control.knobs(webhook_url=live_server.url + URL, batch_status_style=style)
    sent = make_client(sim).send_batch(batch(3))
    control.post("inbound", identity="+15551230001", text="STOP")

    # Wait on the simulator only (on SQLite the live server shares this
    # thread's connection): every callback answered, and no new one for a while.
    deadline = time.monotonic() + 10
    seen, quiet_since = -1, time.monotonic()
    while True:
        callbacks = control.state()["callbacks"]
        kinds = [c["kind"] for c in callbacks]
        delivered = [c for c in callbacks if '"DELIVERED"' in c["body"]]
        answered = all(c["http_status"] is not None for c in callbacks)
        if len(callbacks) != seen or not answered:
            seen, quiet_since = len(callbacks), time.monotonic()
        elif (
            len(delivered) == 3
            and "MESSAGE_INBOUND" in kinds
            and time.monotonic() - quiet_since > 0.3
        ):
            break
        assert time.monotonic() < deadline, callbacks
        time.sleep(0.05)
    stored = list(WebhookEvent.objects.values_list("body", flat=True))
    assert sorted(stored) == sorted(c["body"] for c in callbacks)
    assert {c["http_status"] for c in callbacks} == {200}
    assert {c["attempts"] for c in callbacks} == {1}
    assert {"MESSAGE_DELIVERY", "BATCH_STATUS_UPDATE"} <= set(kinds)
    assert any(sent.batch_id in body for body in stored)
    assert set(WebhookEvent.objects.values_list("state", flat=True)) == {"NEW"}
