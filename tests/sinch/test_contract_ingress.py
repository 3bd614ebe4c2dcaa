"""Contract: the app's ingress queue, over HTTP with the real client.

Sinch queues at most 500,000 messages per app (`--ingress-queue-limit`) and
sends them on at the drain rate. A batch that would overfill the queue, at
its send time or later, is refused as a whole with 429 RESOURCE_EXHAUSTED
and a Retry-After saying when the room comes (UNCONFIRMED, sinch.wire); it
is not stored, so sending it again later never sends it twice.
"""

import time
from datetime import UTC, datetime, timedelta

import pytest

from sinch import wire
from sinch.errors import SinchRateLimitedError
from tests.sinch.conftest import batch


def test_the_limit_defaults_to_sinchs_documented_500000(control):
    assert control.knobs()["ingress_queue_limit"] == 500_000 == wire.INGRESS_QUEUE_LIMIT


def test_a_batch_that_would_overfill_the_queue_is_refused_and_not_stored(
    client, control
):
    # Five messages fit; Sinch sends one every 1000 s, so the queue stays full.
    control.knobs(ingress_queue_limit=5, drain_rate=0.001, processing_delay_s=0)
    assert client.send_batch(batch(3)).batch_id
    with pytest.raises(SinchRateLimitedError) as refused:
        client.send_batch(batch(4))
    error = refused.value
    assert error.status == 429
    assert error.body.status == "RESOURCE_EXHAUSTED"
    assert "queue is full" in error.body.message
    # One or two messages too many (Sinch may have sent the first already):
    # the room comes when Sinch has sent them, a message per 1000 s.
    assert 1000 <= error.retry_after <= 2000
    state = control.state()
    assert state["counters"]["batches_accepted"] == 1
    assert state["counters"]["batches_refused_queue_full"] == 1
    # What still fits is accepted.
    assert client.send_batch(batch(2)).batch_id


def test_a_refused_batch_is_accepted_once_the_queue_has_drained(client, control):
    # Two messages a second: the client waits out the Retry-After and resends.
    control.knobs(ingress_queue_limit=3, drain_rate=2, processing_delay_s=0)
    client.send_batch(batch(3))
    started = time.monotonic()
    assert client.send_batch(batch(3)).batch_id
    assert time.monotonic() - started >= 1.0
    counters = control.state()["counters"]
    assert counters["batches_refused_queue_full"] >= 1
    assert counters["batches_accepted"] == 2


def test_a_scheduled_batch_counts_for_its_send_time_not_now(client, control):
    control.knobs(ingress_queue_limit=5, drain_rate=0.01, processing_delay_s=0)
    later = datetime.now(UTC) + timedelta(hours=2)
    assert client.send_batch(batch(4, send_after=later)).batch_id
    # Now the queue is empty: a batch due now fits beside it ...
    assert client.send_batch(batch(4)).batch_id
    # ... but not a second one due at the same time as the first.
    with pytest.raises(SinchRateLimitedError) as refused:
        client.send_batch(batch(4, send_after=later))
    assert refused.value.retry_after > 7000  # after that time, and its drain
    # An hour after it, the first has long gone.
    assert client.send_batch(batch(4, send_after=later + timedelta(hours=1)))


def test_without_a_drain_rate_or_a_limit_nothing_is_refused(client, control):
    control.knobs(ingress_queue_limit=2, drain_rate=0)
    client.send_batch(batch(3))
    control.knobs(ingress_queue_limit=0, drain_rate=0.001)
    client.send_batch(batch(3))
    client.send_batch(batch(3))
    assert control.state()["counters"]["batches_accepted"] == 3
