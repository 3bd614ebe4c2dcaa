"""With DEBUG off the webhook accepts only callbacks signed with a real
SINCH_WEBHOOK_SECRET: the simulator's development secret is public, so it is
never accepted there, not even when set explicitly, and a system check says
so as an error. With DEBUG on (make run) the simulator keeps working."""

import json
import logging

import pytest
from django.core.checks import Error, run_checks
from django.test import Client

from campaigns.models import WebhookEvent
from campaigns.tracking import inbox
from sinch import signatures
from sinch.checks import check_webhook_secret
from sinch.config import CREDENTIAL_SETTINGS, SIMULATOR_WEBHOOK_SECRET

URL = "/webhooks/sinch"
BODY = json.dumps(
    {
        "app_id": "01SIMAPP000000000000000000",
        "project_id": "sim-project",
        "event_time": "2026-03-01T10:00:01.000Z",
        "message_delivery_report": {
            "message_id": "01MSG0000000000000000000001",
            "status": "DELIVERED",
            "channel_identity": {"channel": "SMS", "identity": "15551230001"},
        },
    }
).encode()
REAL_SECRET = "a-real-secret-from-the-sinch-dashboard-4f9c2"


@pytest.fixture
def simulator_mode(settings, monkeypatch):
    """No Sinch credentials (the simulator); the processor is not run."""
    for name in CREDENTIAL_SETTINGS:
        setattr(settings, name, "")
    monkeypatch.setattr(inbox, "queue_processor", lambda: None)
    return settings


def callback(secret: str):
    # tests/sinch's `client` fixture is the Sinch client: this is a browser's.
    return Client().generic(
        "POST",
        URL,
        BODY,
        content_type="application/json",
        headers=signatures.sign(BODY, secret),
    )


@pytest.mark.parametrize("configured", ["", SIMULATOR_WEBHOOK_SECRET])
def test_with_debug_off_a_callback_signed_with_the_development_secret_is_refused(
    db, simulator_mode, caplog, configured
):
    simulator_mode.DEBUG = False
    simulator_mode.SINCH_WEBHOOK_SECRET = configured
    with caplog.at_level(logging.WARNING):
        response = callback(SIMULATOR_WEBHOOK_SECRET)
    assert response.status_code == 503
    assert response.content == b"webhook secret not configured"
    assert WebhookEvent.objects.count() == 0
    [line] = [r for r in caplog.records if r.name == "campaigns.tracking.webhook"]
    assert line.levelno == logging.ERROR
    assert "SINCH_WEBHOOK_SECRET" in line.getMessage()
    assert "refused (503)" in line.getMessage()


def test_with_debug_off_and_real_credentials_no_secret_refuses_every_callback(
    db, simulator_mode
):
    for name in CREDENTIAL_SETTINGS:
        setattr(simulator_mode, name, "real-" + name.lower())
    simulator_mode.DEBUG = False
    simulator_mode.SINCH_WEBHOOK_SECRET = ""
    for secret in (SIMULATOR_WEBHOOK_SECRET, "", "anything"):
        assert callback(secret).status_code == 503
    assert WebhookEvent.objects.count() == 0


def test_with_debug_off_the_development_secret_beside_a_real_one_verifies_nothing(
    db, simulator_mode
):
    simulator_mode.DEBUG = False
    simulator_mode.SINCH_WEBHOOK_SECRET = f"{REAL_SECRET}, {SIMULATOR_WEBHOOK_SECRET}"
    assert callback(SIMULATOR_WEBHOOK_SECRET).status_code == 401
    assert WebhookEvent.objects.count() == 0
    assert callback(REAL_SECRET).status_code == 200
    assert WebhookEvent.objects.count() == 1


def test_with_debug_on_the_simulator_s_callbacks_are_accepted_without_a_secret(
    db, simulator_mode
):
    """make run: DEBUG on, no credentials, no secret."""
    simulator_mode.DEBUG = True
    simulator_mode.SINCH_WEBHOOK_SECRET = ""
    assert callback(SIMULATOR_WEBHOOK_SECRET).status_code == 200
    assert WebhookEvent.objects.count() == 1
    assert check_webhook_secret() == []


@pytest.mark.parametrize("configured", ["", SIMULATOR_WEBHOOK_SECRET, " , "])
def test_with_debug_off_a_missing_or_development_secret_is_a_system_check_error(
    simulator_mode, configured
):
    simulator_mode.DEBUG = False
    simulator_mode.SINCH_WEBHOOK_SECRET = configured
    errors = [m for m in run_checks() if m.id == "sinch.E002"]
    assert len(errors) == 1
    [error] = errors
    assert isinstance(error, Error)
    assert "refuses every Sinch callback" in error.msg
    assert "SINCH_WEBHOOK_SECRET" in (error.hint or "")


def test_with_debug_off_a_real_secret_passes_the_check(simulator_mode):
    simulator_mode.DEBUG = False
    simulator_mode.SINCH_WEBHOOK_SECRET = REAL_SECRET
    assert check_webhook_secret() == []
