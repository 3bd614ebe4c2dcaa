"""Hostile callbacks: a NUL in a STOP still stops, JSON nested without end is
a clear 400, and no signed body of any shape makes the webhook answer 500."""

import json
import random

import pytest

from campaigns.models import InboundMessage, WebhookEvent
from campaigns.tracking import inbox, receipts
from contacts.models import ChannelIdentity, ConsentState
from tests.campaigns.test_replies import message, post_signed
from tests.campaigns.test_webhook_intake import RECEIPT, post

PHONE = "+14155550101"


@pytest.fixture
def quiet(monkeypatch):
    monkeypatch.setattr(inbox, "queue_processor", lambda: None)


@pytest.fixture
def olga(make_contact, quiet):
    return make_contact(PHONE, consent=ConsentState.OPTED_IN, first_name="Olga")


@pytest.mark.parametrize("text", ["STOP\x00", "ST\x00OP", "\x00stop"])
def test_a_stop_with_a_nul_character_is_stored_and_still_opts_out(client, olga, text):
    event = post_signed(client, message(text))
    assert "\\u0000" in event.body  # received as JSON's escape

    outcome = receipts.process_pending()

    assert dict(outcome) == {WebhookEvent.State.PROCESSED: 1}
    reply = InboundMessage.objects.get()
    assert reply.text == text.replace("\x00", "")
    assert reply.keyword == "STOP"
    identity = ChannelIdentity.objects.get(contact=olga)
    assert identity.marketing_consent == ConsentState.OPTED_OUT


def _nested(depth: int) -> bytes:
    return b'{"a":' * depth + b"1" + b"}" * depth


@pytest.mark.parametrize(
    "body",
    [b"[" * 100_000 + b"]" * 100_000, _nested(5_000), _nested(21)],
    ids=["100000 arrays", "5000 objects", "21 objects"],
)
def test_json_nested_too_deeply_is_refused_with_a_clear_400(db, client, quiet, body):
    response = post(client, body)

    assert response.status_code == 400
    assert b"nested more than 20 levels" in response.content
    assert not WebhookEvent.objects.exists()


# --- fuzz: random, nested, huge JSON, all signed ------------------------------

SEED = 15
STRINGS = ["", "STOP", "\x00", "é", "\ud7ff", "x" * 300, "1e999", "null", "{", "\\"]


def _value(rng: random.Random, depth: int):
    roll = rng.random()
    if depth > 25 or roll < 0.35:
        return rng.choice(
            [
                rng.choice(STRINGS),
                rng.randint(-(2**70), 2**70),
                rng.random() * 10 ** rng.randint(-300, 300),
                None,
                True,
                False,
            ]
        )
    if roll < 0.7:
        return {rng.choice([*STRINGS, "message", "app_id"]): _value(rng, depth + 1)}
    return [_value(rng, depth + 1) for _ in range(rng.randint(0, 3))]


def _callback_with(rng: random.Random) -> dict:
    """A real callback with a random value put somewhere in it."""
    data = json.loads(json.dumps(rng.choice([RECEIPT, message("STOP")])))
    target = data
    for _ in range(rng.randint(0, 3)):
        dicts = [v for v in target.values() if isinstance(v, dict)]
        if not dicts:
            break
        target = rng.choice(dicts)
    key = rng.choice([*list(target), "extra"])
    target[key] = _value(rng, 0)
    return data


def _body(rng: random.Random) -> bytes:
    roll = rng.random()
    if roll < 0.5:
        return json.dumps(_callback_with(rng)).encode()
    if roll < 0.7:
        return json.dumps(_value(rng, 0)).encode()
    if roll < 0.8:
        depth = rng.randint(15, 3000)
        return b'{"x":' * depth + b"[]" + b"}" * depth
    if roll < 0.9:
        return bytes(rng.randrange(256) for _ in range(rng.randint(0, 200)))
    text = json.dumps(_callback_with(rng))
    at = rng.randrange(len(text))
    noise = rng.choice(['"', "}", "\\u0000", "\x00", "9" * 5000])
    return (text[:at] + noise + text[at:]).encode()


def test_signed_random_nested_and_huge_json_is_answered_2xx_or_4xx_never_500(
    db, client, quiet, settings
):
    settings.WEBHOOK_MAX_BODY_BYTES = 20_000
    rng = random.Random(SEED)
    accepted = 0
    statuses = set()
    for case in range(300):
        body = _body(rng)
        if rng.random() < 0.03:
            body = b" " * (settings.WEBHOOK_MAX_BODY_BYTES + 1)  # over the size
        response = post(client, body)
        statuses.add(response.status_code)
        assert response.status_code < 500, (case, body[:200], response.content)
        if response.status_code == 200:
            accepted += 1
            data = json.loads(body)
            assert isinstance(data, dict), case
    # Every accepted callback is stored, and processing settles each one.
    assert WebhookEvent.objects.count() == accepted
    receipts.process_pending()
    assert not WebhookEvent.objects.filter(state=WebhookEvent.State.NEW).exists()
    assert {200, 400, 413} <= statuses
