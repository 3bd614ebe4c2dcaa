"""The client's retry policy, error mapping and secrecy, with Session.request
patched as the one seam (no network)."""

import json
import logging
import threading
from datetime import UTC, datetime
from unittest import mock

import pytest
import requests
from urllib3.exceptions import NewConnectionError, ProtocolError

from sinch.client import SinchClient
from sinch.errors import (
    SinchAuthError,
    SinchNotFoundError,
    SinchRateLimitedError,
    SinchServerError,
    SinchTransportError,
    SinchUncertainOutcomeError,
    SinchValidationError,
)
from sinch.payloads import AppMessage, ChannelIdentity, Recipient, SendBatchRequest
from sinch.transport import RetryPolicy, Transport, parse_retry_after

KEY_ID = "KEY-ID-7f3a9c"
KEY_SECRET = "KEY-SECRET-d41d8cd98f00"
TOKEN = "ACCESS-TOKEN-e3b0c44298fc"
BATCH = {"batch_id": "01J6Z8Q3S2ZK9V4M1B7XWJ5T0N", "send_after": "2025-09-01T09:00:00Z"}
WRAPPED_400 = {
    "error": {
        "code": 400,
        "message": "Invalid argument",
        "status": "INVALID_ARGUMENT",
        "details": [
            {
                "@type": "type.googleapis.com/google.rpc.BadRequest",
                "fieldViolations": [
                    {"field": "recipient_and_params", "description": "1 to 1000 items"}
                ],
            }
        ],
    }
}


def reply(status=200, body=None, headers=None) -> requests.Response:
    response = requests.Response()
    response.status_code = status
    response._content = b"" if body is None else json.dumps(body).encode()
    response.headers.update(headers or {})
    return response


def token_reply(token=TOKEN, expires_in=3599):
    body = {
        "access_token": token,
        "expires_in": expires_in,
        "scope": "",
        "token_type": "bearer",
    }
    return reply(200, body)


class FakeSinch:
    """Answers token requests itself; API calls get the scripted outcomes."""

    def __init__(self, *outcomes, tokens=None):
        self.outcomes = list(outcomes)
        self.tokens = list(tokens or [])
        self.calls = []
        self.lock = threading.Lock()

    def __call__(self, session, method, url, **kwargs):
        with self.lock:
            self.calls.append((method, url, kwargs))
            if url.endswith("/oauth2/token"):
                outcome = self.tokens.pop(0) if self.tokens else token_reply()
            else:
                outcome = self.outcomes.pop(0) if self.outcomes else reply(200, {})
        if isinstance(outcome, Exception):
            raise outcome
        return outcome

    def api_calls(self):
        return [c for c in self.calls if not c[1].endswith("/oauth2/token")]

    def token_calls(self):
        return [c for c in self.calls if c[1].endswith("/oauth2/token")]


@pytest.fixture
def sleeps():
    return []


@pytest.fixture
def client(sleeps):
    transport = Transport(
        timeout=(1.0, 2.0),
        retry=RetryPolicy(attempts=3, backoff_s=0.5, backoff_max_s=4.0, max_wait_s=30),
        sleep=sleeps.append,
    )
    return SinchClient(
        project_id="proj-1",
        app_id="01HXAPP",
        key_id=KEY_ID,
        key_secret=KEY_SECRET,
        batch_api_url="https://us.conversationbatch.api.sinch.com",
        auth_url="https://auth.sinch.com",
        transport=transport,
    )


def fake(*outcomes, **kwargs):
    sinch = FakeSinch(*outcomes, **kwargs)
    return sinch, mock.patch.object(
        requests.Session, "request", autospec=True, side_effect=sinch
    )


def _send_request():
    return SendBatchRequest(
        message=AppMessage.text("Hi ${name}"),
        recipients=[Recipient(identities=[ChannelIdentity("SMS", "+15551230001")])],
        batch_metadata={"batch_ref": "c1-b1"},
    )


def test_send_posts_the_batch_with_bearer_token_and_a_timeout(client):
    sinch, patch = fake(reply(200, BATCH))
    with patch:
        sent = client.send_batch(_send_request())
    assert sent.batch_id == BATCH["batch_id"]
    method, url, kwargs = sinch.api_calls()[0]
    assert (method, url) == (
        "POST",
        "https://us.conversationbatch.api.sinch.com/v1/projects/proj-1/messages",
    )
    assert kwargs["headers"]["Authorization"] == f"Bearer {TOKEN}"
    assert json.loads(kwargs["data"])["app_id"] == "01HXAPP"
    token_call = sinch.token_calls()[0]
    assert token_call[1] == "https://auth.sinch.com/oauth2/token"
    assert token_call[2]["data"] == b"grant_type=client_credentials"
    assert token_call[2]["auth"].username == KEY_ID
    assert all(call[2]["timeout"] == (1.0, 2.0) for call in sinch.calls)


@pytest.mark.parametrize(
    "outcome",
    [
        reply(500, {"error": {"code": 500, "status": "INTERNAL"}}),
        reply(503),
        requests.ReadTimeout("read timed out"),
        requests.ConnectionError(ProtocolError("Connection aborted.")),
    ],
    ids=["500", "503", "read-timeout", "connection-lost"],
)
def test_send_is_never_retried_blindly_when_the_outcome_is_uncertain(
    client, sleeps, outcome
):
    sinch, patch = fake(outcome, reply(200, BATCH))
    with patch, pytest.raises(SinchUncertainOutcomeError) as caught:
        client.send_batch(_send_request())
    assert len(sinch.api_calls()) == 1
    assert sleeps == []
    assert caught.value.retryable


def test_send_is_retried_after_a_429_honouring_retry_after(client, sleeps):
    sinch, patch = fake(reply(429, headers={"Retry-After": "2"}), reply(200, BATCH))
    with patch:
        assert client.send_batch(_send_request()).batch_id == BATCH["batch_id"]
    assert len(sinch.api_calls()) == 2
    assert sleeps == [2.0]


def test_send_is_retried_when_the_connection_was_never_made(client, sleeps):
    refused = requests.ConnectionError(
        mock.Mock(reason=NewConnectionError(None, "Connection refused"))
    )
    sinch, patch = fake(
        refused, requests.ConnectTimeout("connect timed out"), reply(200, BATCH)
    )
    with patch:
        client.send_batch(_send_request())
    assert len(sinch.api_calls()) == 3


def test_an_unreadable_200_to_a_send_is_an_uncertain_outcome(client):
    _, patch = fake(reply(200, {"unexpected": True}))
    with patch, pytest.raises(SinchUncertainOutcomeError):
        client.send_batch(_send_request())


def test_gets_are_retried_on_5xx_and_connection_errors_with_growing_backoff(
    client, sleeps
):
    status = {"batch_id": "b1", "status": "PROCESSED", "meta_data": {}}
    sinch, patch = fake(reply(503), requests.ReadTimeout("slow"), reply(200, status))
    with patch:
        assert client.get_batch("b1").status == "PROCESSED"
    assert len(sinch.api_calls()) == 3
    assert len(sleeps) == 2
    assert 0 <= sleeps[0] <= 0.5
    assert 0 <= sleeps[1] <= 1.0


def test_retries_stop_after_the_attempt_budget(client, sleeps):
    sinch, patch = fake(reply(500), reply(502), reply(503), reply(200, {}))
    with patch, pytest.raises(SinchServerError) as caught:
        client.get_batch("b1")
    assert len(sinch.api_calls()) == 3
    assert caught.value.status == 503
    assert caught.value.retryable
    assert not caught.value.permanent


def test_a_retry_after_beyond_the_wait_limit_is_raised_for_the_caller(client, sleeps):
    _, patch = fake(reply(429, headers={"Retry-After": "120"}))
    with patch, pytest.raises(SinchRateLimitedError) as caught:
        client.cancel_batch("b1")
    assert caught.value.retry_after == 120
    assert sleeps == []


def test_retry_after_reads_seconds_and_http_dates():
    now = datetime(2015, 10, 21, 7, 27, 30, tzinfo=UTC)
    assert parse_retry_after("7") == 7.0
    assert parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT", now=now) == 30.0
    assert parse_retry_after("Wed, 21 Oct 2015 07:00:00 GMT", now=now) == 0.0
    assert parse_retry_after("soon") is None
    assert parse_retry_after(None) is None


def test_an_http_date_retry_after_is_honoured(client, sleeps):
    when = datetime.now(UTC).replace(microsecond=0)
    date = when.strftime("%a, %d %b %Y %H:%M:%S GMT")
    _, patch = fake(reply(429, headers={"Retry-After": date}), reply(200, {}))
    with patch:
        client.cancel_batch("b1")
    assert len(sleeps) == 1
    assert 0 <= sleeps[0] <= 1


@pytest.mark.parametrize("shape", ["wrapped", "flat"])
def test_both_error_body_shapes_become_a_validation_error_with_violations(
    client, shape
):
    body = WRAPPED_400 if shape == "wrapped" else WRAPPED_400["error"]
    sinch, patch = fake(reply(400, body))
    with patch, pytest.raises(SinchValidationError) as caught:
        client.send_batch(_send_request())
    error = caught.value
    assert error.permanent
    assert error.status == 400
    assert error.body.status == "INVALID_ARGUMENT"
    assert error.field_violations[0].field == "recipient_and_params"
    assert "recipient_and_params: 1 to 1000 items" in str(error)
    assert "INVALID_ARGUMENT" in str(error)
    assert len(sinch.api_calls()) == 1


def test_status_codes_map_to_typed_permanent_errors(client):
    cases = [(403, SinchAuthError), (404, SinchNotFoundError), (401, SinchAuthError)]
    for status, error_type in cases:
        sinch, patch = fake(reply(status, {"code": status, "message": "no"}))
        with patch, pytest.raises(error_type) as caught:
            client.get_batch("b1")
        assert caught.value.permanent
        assert len(sinch.api_calls()) == 1


def test_an_expired_token_is_refreshed_once_and_the_call_repeated(client):
    expired = reply(401, headers={"WWW-Authenticate": 'Bearer error="expired"'})
    sinch, patch = fake(
        expired,
        reply(200, BATCH),
        tokens=[token_reply("old-token"), token_reply("new-token")],
    )
    with patch:
        client.send_batch(_send_request())
    calls = sinch.api_calls()
    assert [c[2]["headers"]["Authorization"] for c in calls] == [
        "Bearer old-token",
        "Bearer new-token",
    ]
    assert len(sinch.token_calls()) == 2


def test_a_second_expiry_or_an_invalid_token_is_not_refreshed_again(client):
    expired = reply(401, headers={"WWW-Authenticate": 'Bearer error="expired"'})
    sinch, patch = fake(expired, expired)
    with patch, pytest.raises(SinchAuthError):
        client.get_batch("b1")
    assert len(sinch.token_calls()) == 2
    invalid = reply(401, headers={"WWW-Authenticate": 'Bearer error="invalid_token"'})
    sinch, patch = fake(invalid)
    with patch, pytest.raises(SinchAuthError):
        client.get_batch("b1")
    assert len(sinch.token_calls()) == 0  # the cached token was kept


def test_the_token_is_cached_and_fetched_once_by_concurrent_callers(client):
    sinch, patch = fake()
    with patch:
        threads = [
            threading.Thread(target=client.cancel_batch, args=("b",)) for _ in range(8)
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        client.cancel_batch("b")
    assert len(sinch.token_calls()) == 1
    assert len(sinch.api_calls()) == 9


def test_a_token_is_refreshed_shortly_before_it_expires(client):
    sinch, patch = fake(tokens=[token_reply("t1", expires_in=3599), token_reply("t2")])
    with patch, mock.patch("sinch.auth.time.monotonic") as clock:
        clock.return_value = 1000.0
        client.cancel_batch("b")
        clock.return_value = 1000.0 + 3599 - 61
        client.cancel_batch("b")
        clock.return_value = 1000.0 + 3599 - 59
        client.cancel_batch("b")
    assert [c[2]["headers"]["Authorization"] for c in sinch.api_calls()] == [
        "Bearer t1",
        "Bearer t1",
        "Bearer t2",
    ]


def test_token_endpoint_refusal_is_an_auth_error(client):
    refused = reply(
        401, {"error": "invalid_client", "error_description": "Bad credentials"}
    )
    _, patch = fake(tokens=[refused])
    with patch, pytest.raises(SinchAuthError) as caught:
        client.get_batch("b1")
    assert "Bad credentials" in str(caught.value)


def test_credentials_and_tokens_never_appear_in_reprs_logs_or_errors(client, caplog):
    caplog.set_level(logging.DEBUG)
    errors = []
    scripts = [
        (reply(500), reply(500), reply(500)),
        (requests.ReadTimeout("read timed out"),),
        (reply(400, WRAPPED_400),),
        (reply(401, headers={"WWW-Authenticate": 'Bearer error="expired"'}),) * 2,
    ]
    for script in scripts:
        _, patch = fake(*script)
        with patch:
            for call in (
                client.get_batch,
                lambda _: client.send_batch(_send_request()),
            ):
                try:
                    call("b1")
                except Exception as exc:
                    errors.append(exc)
    refused = reply(401, {"error": "invalid_client"})
    _, patch = fake(tokens=[refused])
    client._tokens._token = ""
    with patch, pytest.raises(SinchAuthError) as caught:
        client.get_batch("b1")
    errors.append(caught.value)
    texts = [repr(client), str(client), repr(client._tokens), repr(client.transport)]
    texts += [str(e) for e in errors] + [repr(e) for e in errors]
    texts.append(caplog.text)
    assert caplog.records, "the client logs its calls"
    for text in texts:
        for secret in (KEY_ID, KEY_SECRET, TOKEN):
            assert secret not in text


def test_transport_error_when_nothing_could_connect(client, sleeps):
    refused = requests.ConnectionError(
        mock.Mock(reason=NewConnectionError(None, "Connection refused"))
    )
    sinch, patch = fake(refused, refused, refused)
    with patch, pytest.raises(SinchTransportError):
        client.get_batch("b1")
    assert len(sinch.api_calls()) == 3
