"""`manage.py sinch_simulator` started by hand and driven like the README's
curl example: token, then a batch, then signed receipts at the webhook."""

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests

from sinch import signatures

ROOT = Path(__file__).resolve().parents[2]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _token(url: str) -> str:
    """An access token from the simulator, as the README's curl example gets one."""
    return requests.post(
        url + "/oauth2/token",
        auth=("sim-key-id", "sim-key-secret"),
        data={"grant_type": "client_credentials"},
        timeout=5,
    ).json()["access_token"]


@pytest.fixture
def command_simulator(receiver):
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("SINCH_")}
    env.update(DEBUG="true", DJANGO_SETTINGS_MODULE="config.settings")
    child = subprocess.Popen(
        [
            sys.executable,
            "manage.py",
            "sinch_simulator",
            f"--port={port}",
            f"--webhook-url={receiver.url}",
            "--webhook-secret=readme-secret",
            "--latency-s=0.05",
            "--processing-delay-s=0",
            "--failure-ratio=0",
            "--cancel-delay-s=7",
            "--cancel-failure-ratio=0.25",
            "--metadata-list-shape=object",
            "--batch-status-style=event",
            "--processing-report-key=batch_report",
            "--report-index-base=1",
            "--whatsapp-window-h=0.5",
            "--ingress-queue-limit=2",
        ],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 20
    while True:
        try:
            requests.get(url + "/_simulator/knobs", timeout=1)
            break
        except requests.ConnectionError:
            assert child.poll() is None, child.stdout.read()
            assert time.monotonic() < deadline, "the simulator did not start"
            time.sleep(0.1)
    yield url
    child.terminate()
    child.wait(timeout=10)


def test_hand_started_simulator_sends_signed_receipts_for_a_batch(
    command_simulator, receiver
):
    url = command_simulator
    token = _token(url)
    sent = requests.post(
        url + "/v1/projects/sim-project/messages",
        headers={"Authorization": f"Bearer {token}"},
        json={
            "app_id": "01SIMAPP000000000000000000",
            "message": {"text_message": {"text": "Hi ${name}"}},
            "recipient_and_params": [
                {
                    "recipient": {
                        "identified_by": {
                            "channel_identities": [
                                {"channel": "SMS", "identity": "+15551230001"}
                            ]
                        }
                    },
                    "parameters": {"name": "Jane"},
                }
            ],
        },
        timeout=5,
    )
    assert sent.status_code == 200, sent.text
    bodies = receiver.wait_for(
        lambda b: (
            any(
                x.get("message_delivery_report", {}).get("status") == "DELIVERED"
                for x in b
            )
            and any("batch_status_update" in x for x in b)
        ),
        timeout=10,
    )
    # --batch-status-style=event: only how the batch ended, with counts.
    (update,) = [b["batch_status_update"] for b in bodies if "batch_status_update" in b]
    assert (update["status"], update["total_messages"]) == ("COMPLETED", 1)
    for headers, body in receiver.requests:
        assert signatures.verify(headers, body, ["readme-secret"]).ok


def test_if_needed_does_not_start_when_real_credentials_are_set(settings):
    from io import StringIO

    from django.core.management import call_command

    settings.SINCH_PROJECT_ID = "proj-1"
    settings.SINCH_KEY_ID = "key-1"
    settings.SINCH_KEY_SECRET = "secret-1"
    settings.SINCH_APP_ID = "01HXAPP"
    out = StringIO()
    call_command("sinch_simulator", if_needed=True, stdout=out)
    assert "the simulator is not started" in out.getvalue()
    assert "secret-1" not in out.getvalue()


def test_the_asynchronous_cancel_is_set_from_the_command_line(command_simulator):
    knobs = requests.get(command_simulator + "/_simulator/knobs", timeout=5).json()
    assert (knobs["cancel_delay_s"], knobs["cancel_failure_ratio"]) == (7.0, 0.25)


def test_the_shape_knobs_are_set_from_the_command_line_and_at_run_time(
    command_simulator,
):
    url = command_simulator
    knobs = requests.get(url + "/_simulator/knobs", timeout=5).json()
    assert (
        knobs["metadata_list_shape"],
        knobs["batch_status_style"],
        knobs["processing_report_key"],
        knobs["report_index_base"],
    ) == ("object", "event", "batch_report", 1)
    token = _token(url)

    def listed():
        return requests.get(
            url + "/v1/projects/sim-project/messages",
            params={"metadataKey": "campaign_id", "metadataValue": "none"},
            headers={"Authorization": f"Bearer {token}"},
            timeout=5,
        ).json()

    assert listed() == {}  # the object shape: nothing found
    changed = requests.post(
        url + "/_simulator/knobs",
        json={"metadata_list_shape": "list", "batch_status_style": "rest"},
        timeout=5,
    ).json()
    assert (changed["metadata_list_shape"], changed["batch_status_style"]) == (
        "list",
        "rest",
    )
    assert listed() == []


def test_the_whatsapp_window_is_set_from_the_command_line(command_simulator, receiver):
    url = command_simulator
    knobs = requests.get(url + "/_simulator/knobs", timeout=5).json()
    assert knobs["whatsapp_window_h"] == 0.5
    token = _token(url)
    requests.post(
        url + "/_simulator/inbound",
        json={"channel": "WHATSAPP", "identity": "+15551230001", "text": "hi"},
        timeout=5,
    ).raise_for_status()
    # Forty minutes later the half-hour window is closed.
    requests.post(url + "/_simulator/advance", json={"seconds": 2400}, timeout=5)
    sent = requests.post(
        url + "/v1/projects/sim-project/messages",
        headers={"Authorization": f"Bearer {token}"},
        json={
            "app_id": "01SIMAPP000000000000000000",
            "message": {"text_message": {"text": "Your order shipped"}},
            "recipient_and_params": [
                {
                    "recipient": {
                        "identified_by": {
                            "channel_identities": [
                                {"channel": "WHATSAPP", "identity": "+15551230001"}
                            ]
                        }
                    }
                }
            ],
        },
        timeout=5,
    )
    assert sent.status_code == 200, sent.text
    bodies = receiver.wait_for(
        lambda b: any(
            x.get("message_delivery_report", {}).get("status") == "FAILED" for x in b
        ),
        timeout=10,
    )
    failed = [
        x["message_delivery_report"]
        for x in bodies
        if x.get("message_delivery_report", {}).get("status") == "FAILED"
    ]
    assert failed[0]["reason"]["code"] == "OUTSIDE_ALLOWED_SENDING_WINDOW"


def test_the_ingress_queue_limit_is_set_from_the_command_line(command_simulator):
    url = command_simulator
    knobs = requests.get(url + "/_simulator/knobs", timeout=5).json()
    assert knobs["ingress_queue_limit"] == 2
    token = _token(url)
    three = [
        {
            "recipient": {
                "identified_by": {
                    "channel_identities": [
                        {"channel": "SMS", "identity": f"+1555123000{n}"}
                    ]
                }
            }
        }
        for n in range(3)
    ]
    refused = requests.post(
        url + "/v1/projects/sim-project/messages",
        headers={"Authorization": f"Bearer {token}"},
        json={
            "app_id": "01SIMAPP000000000000000000",
            "message": {"text_message": {"text": "Hi"}},
            "recipient_and_params": three,
        },
        timeout=5,
    )
    # Three messages into a queue of two: refused, and told when to retry.
    assert refused.status_code == 429, refused.text
    assert refused.json()["error"]["status"] == "RESOURCE_EXHAUSTED"
    assert int(refused.headers["Retry-After"]) >= 1
