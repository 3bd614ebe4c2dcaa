"""Contract: tokens, rate limits, server errors and timeouts, over HTTP."""

import time

import pytest
import requests

from sinch.errors import (
    SinchAuthError,
    SinchRateLimitedError,
    SinchServerError,
    SinchUncertainOutcomeError,
    SinchValidationError,
)
from tests.sinch.conftest import batch, make_client


def test_the_token_is_fetched_once_and_reused(client, control):
    client.send_batch(batch())
    client.batches_by_metadata("k", "v")
    client.cancel_batch("x")
    assert control.state()["counters"]["tokens_issued"] == 1


def test_an_expired_token_is_refreshed_and_the_call_succeeds(client, control):
    client.send_batch(batch())
    control.post("expire-tokens")
    assert client.send_batch(batch()).batch_id
    assert control.state()["counters"]["tokens_issued"] == 2


def test_tokens_expire_on_the_simulated_clock(client, control):
    control.knobs(token_ttl_s=600)
    client.send_batch(batch())
    control.post("advance", seconds=601)
    client.send_batch(batch())
    assert control.state()["counters"]["tokens_issued"] == 2


def test_wrong_key_secret_is_refused_at_the_token_endpoint(simulator):
    client = make_client(simulator, key_secret="wrong")
    with pytest.raises(SinchAuthError) as caught:
        client.send_batch(batch())
    assert caught.value.status == 401
    assert "wrong" not in str(caught.value)


def test_a_missing_or_forged_bearer_token_is_refused(simulator):
    url = simulator.url + "/v1/projects/sim-project/messages/b1"
    for headers in ({}, {"Authorization": "Bearer forged"}):
        response = requests.get(url, headers=headers, timeout=5)
        assert response.status_code == 401
        assert response.headers["WWW-Authenticate"] == 'Bearer error="invalid_token"'
        assert response.json()["error"]["status"] == "UNAUTHENTICATED"


def test_token_endpoint_speaks_oauth2_client_credentials(simulator):
    url = simulator.url + "/oauth2/token"
    ok = requests.post(
        url,
        auth=("sim-key-id", "sim-key-secret"),
        data={"grant_type": "client_credentials"},
        timeout=5,
    )
    assert ok.status_code == 200
    assert set(ok.json()) == {"access_token", "expires_in", "scope", "token_type"}
    assert ok.json()["token_type"] == "bearer"
    bad_grant = requests.post(
        url,
        auth=("sim-key-id", "sim-key-secret"),
        data={"grant_type": "password"},
        timeout=5,
    )
    assert bad_grant.status_code == 400
    assert bad_grant.json()["error"] == "unsupported_grant_type"


def test_a_429_is_retried_after_the_retry_after_delay(client, control):
    control.post("inject", responses=[{"status": 429, "retry_after": 1}])
    started = time.monotonic()
    assert client.send_batch(batch()).batch_id
    assert time.monotonic() - started >= 1.0
    assert control.state()["counters"]["batches_accepted"] == 1


def test_a_5xx_on_a_get_is_retried(client, control):
    sent = client.send_batch(batch())
    control.post("inject", responses=[{"status": 500}, {"status": 503}])
    assert client.get_batch(sent.batch_id).batch_id == sent.batch_id


def test_persistent_5xx_on_a_get_gives_up_with_a_server_error(client, control):
    control.post("inject", responses=[{"status": 500}] * 4)
    with pytest.raises(SinchServerError):
        client.batches_by_metadata("k", "v")


def test_a_500_on_a_send_is_uncertain_and_not_resent(client, control):
    control.post("inject", responses=[{"status": 500}])
    with pytest.raises(SinchUncertainOutcomeError):
        client.send_batch(batch(batch_metadata={"batch_ref": "r1"}))
    assert control.state()["counters"].get("batches_accepted", 0) == 0
    assert client.batches_by_metadata("batch_ref", "r1") == []


def test_a_timeout_on_a_send_is_uncertain_and_reconciled_by_metadata(
    simulator, control
):
    client = make_client(simulator, timeout=(2.0, 0.3))
    control.post("inject", responses=[{"timeout": True, "delay_s": 1.0}])
    with pytest.raises(SinchUncertainOutcomeError):
        client.send_batch(batch(batch_metadata={"batch_ref": "c7-b3"}))
    # Sinch had accepted it: a resubmit would send it twice.
    found = client.batches_by_metadata("batch_ref", "c7-b3")
    assert len(found) == 1
    assert control.state()["counters"]["batches_accepted"] == 1


def test_random_fault_ratios_apply_to_api_calls(client, control):
    control.knobs(error_500_ratio=1.0)
    with pytest.raises(SinchServerError):
        client.get_batch("b1")
    control.knobs(error_500_ratio=0.0, error_429_ratio=1.0, retry_after_s=0)
    with pytest.raises(SinchRateLimitedError) as caught:
        client.get_batch("b1")
    assert caught.value.status == 429


def test_the_flat_error_shape_is_read_too(client, control):
    control.knobs(error_shape="flat")
    with pytest.raises(SinchValidationError) as caught:
        client.send_batch(batch(0))
    assert caught.value.body.status == "INVALID_ARGUMENT"
    assert caught.value.field_violations


def test_bad_knob_values_are_refused(control):
    response = requests.post(
        control.url + "knobs", json={"failure_ratio": 2}, timeout=5
    )
    assert response.status_code == 400
    response = requests.post(control.url + "knobs", json={"nonsense": 1}, timeout=5)
    assert response.status_code == 400
    assert control.knobs()["failure_ratio"] == 0
