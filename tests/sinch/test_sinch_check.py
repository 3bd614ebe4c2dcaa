"""`manage.py sinch_check` against the simulator over HTTP: a ready setup says
OK and exits 0; each broken one names the step, says why and what to do, and
exits 1. The setups are made the way an operator would: through the
Conversation API's webhook endpoints (served by the simulator) and settings."""

import os
import subprocess
import sys
from io import StringIO
from pathlib import Path

import pytest
import requests
from django.core.management import CommandError, call_command

from sinch.config import CREDENTIAL_SETTINGS
from sinch.simulator import Simulator
from tests.sinch.conftest import ACCOUNT, WEBHOOK_SECRET, fast_knobs
from tests.sinch.test_simulator_command import free_port

pytestmark = pytest.mark.django_db

ROOT = Path(__file__).resolve().parents[2]
SITE = "https://campaigns.example.com"
TARGET = SITE + "/webhooks/sinch"
ALL_TRIGGERS = [
    "MESSAGE_DELIVERY",
    "MESSAGE_INBOUND",
    "BATCH_STATUS_UPDATE",
    "OPT_OUT",
    "OPT_IN",
]


class ConversationApi:
    """The app's webhooks, changed over HTTP as an operator's curl would."""

    def __init__(self, sim: Simulator) -> None:
        self.url = f"{sim.url}/v1/projects/{ACCOUNT.project_id}"
        token = requests.post(
            sim.url + "/oauth2/token",
            auth=(ACCOUNT.key_id, ACCOUNT.key_secret),
            data={"grant_type": "client_credentials"},
            timeout=5,
        ).json()["access_token"]
        self.headers = {"Authorization": f"Bearer {token}"}

    def call(self, method: str, path: str, **body) -> requests.Response:
        return requests.request(
            method,
            self.url + path,
            json=body or None,
            headers=self.headers,
            timeout=5,
        )

    def webhooks(self) -> list[dict]:
        response = self.call("GET", f"/apps/{ACCOUNT.app_id}/webhooks")
        assert response.status_code == 200, response.text
        return response.json()["webhooks"]

    def only_webhook(self) -> str:
        (webhook,) = self.webhooks()
        return webhook["id"]

    def patch(self, **changes) -> dict:
        response = self.call("PATCH", f"/webhooks/{self.only_webhook()}", **changes)
        assert response.status_code == 200, response.text
        return response.json()

    def create(self, **fields) -> dict:
        body = {"app_id": ACCOUNT.app_id, **fields}
        response = self.call("POST", "/webhooks", **body)
        assert response.status_code == 200, response.text
        return response.json()

    def delete_all(self) -> None:
        for webhook in self.webhooks():
            assert self.call("DELETE", f"/webhooks/{webhook['id']}").ok


@pytest.fixture
def sim():
    """A ready setup: replies keep their campaign (dispatch retention), the
    app's webhook targets the site with every trigger and the secret of
    SINCH_WEBHOOK_SECRET (shown in plain here; Sinch may hide it)."""
    knobs = fast_knobs(
        webhook_url=TARGET, webhook_secret_shown="plain", dispatch_retention=True
    )
    simulator = Simulator(account=ACCOUNT, knobs=knobs).start()
    yield simulator
    simulator.stop()


@pytest.fixture
def api(sim):
    return ConversationApi(sim)


@pytest.fixture
def live(settings, sim):
    """Settings of a real account, every Sinch origin aimed at the simulator."""
    settings.SINCH_PROJECT_ID = ACCOUNT.project_id
    settings.SINCH_KEY_ID = ACCOUNT.key_id
    settings.SINCH_KEY_SECRET = ACCOUNT.key_secret
    settings.SINCH_APP_ID = ACCOUNT.app_id
    settings.SINCH_WEBHOOK_SECRET = WEBHOOK_SECRET
    settings.SINCH_BATCH_API_URL = sim.url
    settings.SINCH_AUTH_URL = sim.url
    settings.SINCH_CONVERSATION_API_URL = sim.url
    settings.SITE_URL = SITE
    return settings


def closed_url() -> str:
    return f"http://127.0.0.1:{free_port()}"


def run_check(*args) -> tuple[int, str]:
    out = StringIO()
    try:
        call_command("sinch_check", *args, "--timeout=2", stdout=out, no_color=True)
    except CommandError as exc:
        error = exc
    else:
        return 0, out.getvalue()
    assert "not ready" in str(error)
    return error.returncode, out.getvalue()


def line(output: str, step: str) -> str:
    """The status line of one step and its advice line (if any)."""
    lines = output.splitlines()
    for n, text in enumerate(lines):
        if text[6:].startswith(step + " "):
            advice = lines[n + 1] if n + 1 < len(lines) else ""
            return text + ("\n" + advice if "->" in advice else "")
    raise AssertionError(f"no {step!r} step in:\n{output}")


def statuses(output: str) -> dict[str, str]:
    steps = (
        "credentials",
        "token",
        "batch API",
        "app",
        "reply linking",
        "webhook target",
        "webhook triggers",
        "webhook secret",
    )
    return {step: line(output, step).split()[0] for step in steps}


# --- a ready setup ---


def test_a_ready_setup_passes_every_step_and_exits_0(live, sim):
    code, output = run_check()
    assert code == 0, output
    assert set(statuses(output).values()) == {"OK"}, output
    assert f"Project {ACCOUNT.project_id}, app {ACCOUNT.app_id}, region us" in output
    assert f"An access token was obtained from {sim.url}/oauth2/token" in output
    assert f"{sim.url} answers for project {ACCOUNT.project_id}" in output
    assert "Webhook " in line(output, "webhook target")
    assert f"targets {TARGET} (HTTP)" in output
    assert "The webhook's secret is SINCH_WEBHOOK_SECRET" in output
    assert output.rstrip().endswith("The Sinch setup is ready.")
    # No secret is ever printed.
    assert WEBHOOK_SECRET not in output
    assert ACCOUNT.key_secret not in output


def test_the_real_command_exits_0_when_ready_and_1_when_broken(sim):
    env = {k: v for k, v in os.environ.items() if not k.startswith("SINCH_")}
    env.update(
        DJANGO_SETTINGS_MODULE="tests.settings",
        SINCH_PROJECT_ID=ACCOUNT.project_id,
        SINCH_KEY_ID=ACCOUNT.key_id,
        SINCH_KEY_SECRET=ACCOUNT.key_secret,
        SINCH_APP_ID=ACCOUNT.app_id,
        SINCH_BATCH_API_URL=sim.url,
        SINCH_AUTH_URL=sim.url,
        SINCH_CONVERSATION_API_URL=sim.url,
        SITE_URL=SITE,
    )
    command = [sys.executable, "manage.py", "sinch_check", "--timeout=2"]
    ready = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True)
    assert ready.returncode == 0, ready.stdout + ready.stderr
    assert "The Sinch setup is ready." in ready.stdout

    env["SINCH_BATCH_API_URL"] = closed_url()
    broken = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True)
    assert broken.returncode == 1, broken.stdout + broken.stderr
    assert "FAIL  batch API" in broken.stdout
    assert "The Sinch setup is not ready" in broken.stderr


# --- credentials and token ---


def test_no_credentials_fail_at_once_and_nothing_else_is_tried(live):
    for name in CREDENTIAL_SETTINGS:
        setattr(live, name, "")
    code, output = run_check()
    assert code == 1
    assert "No Sinch credentials are set: the product sends to the local simulator" in (
        line(output, "credentials")
    )
    assert "-> Set SINCH_PROJECT_ID, SINCH_KEY_ID, SINCH_KEY_SECRET" in output
    assert list(statuses(output).values())[1:] == ["SKIP"] * 7


def test_partial_credentials_name_what_is_missing(live):
    live.SINCH_APP_ID = ""
    code, output = run_check()
    assert code == 1
    assert "FAIL  credentials" in output
    assert "Sinch is partly configured; missing: SINCH_APP_ID." in output


def test_a_wrong_key_secret_is_explained_as_a_refused_access_key(live, sim):
    live.SINCH_KEY_SECRET = "not-the-secret"
    code, output = run_check()
    assert code == 1
    token = line(output, "token")
    assert token.startswith("FAIL")
    assert "Sinch refused the access key (HTTP 401)" in token
    assert (
        "SINCH_KEY_ID and SINCH_KEY_SECRET must be the Key ID and Key Secret" in token
    )
    assert statuses(output)["app"] == "SKIP"
    assert "not-the-secret" not in output


def test_an_auth_server_that_does_not_answer(live):
    live.SINCH_AUTH_URL = closed_url()
    code, output = run_check()
    assert code == 1
    token = line(output, "token")
    assert f"The auth server does not answer at {live.SINCH_AUTH_URL}/oauth2/token" in (
        token
    )
    assert "Check SINCH_AUTH_URL" in token


# --- the region's hosts, the project and the app ---


def test_a_batch_host_that_does_not_answer_fails_that_step_only(live):
    live.SINCH_BATCH_API_URL = closed_url()
    code, output = run_check()
    assert code == 1
    batch = line(output, "batch API")
    assert batch.startswith("FAIL")
    assert "The Batch API host of region us does not answer" in batch
    assert "Check SINCH_REGION" in batch
    assert statuses(output)["app"] == "OK"


def test_a_project_the_key_cannot_use(live):
    live.SINCH_PROJECT_ID = "someone-elses-project"
    code, output = run_check()
    assert code == 1
    assert "refused the token (HTTP 403)" in line(output, "batch API")
    assert "refused the token (HTTP 403)" in line(output, "app")


def test_an_unknown_app_is_explained_with_its_id_and_region(live):
    live.SINCH_APP_ID = "01WRONGAPP0000000000000000"
    code, output = run_check()
    assert code == 1
    app = line(output, "app")
    assert app.startswith("FAIL")
    assert (
        f"App 01WRONGAPP0000000000000000 is not known in project "
        f"{ACCOUNT.project_id}" in app
    )
    assert "Check SINCH_APP_ID" in app
    assert "another region" in app
    assert statuses(output)["reply linking"] == "SKIP"
    assert statuses(output)["webhook target"] == "SKIP"


def test_a_conversation_api_host_that_does_not_answer(live):
    live.SINCH_CONVERSATION_API_URL = closed_url()
    code, output = run_check()
    assert code == 1
    assert "The Conversation API of region us does not answer" in line(output, "app")


# --- processing mode and dispatch retention ---


def test_dispatch_mode_without_retention_warns_that_replies_are_only_inferred(
    live, sim
):
    sim.set_knobs({"processing_mode": "DISPATCH", "dispatch_retention": False})
    code, output = run_check()
    assert code == 0  # a warning, not a failure
    reply = line(output, "reply linking")
    assert reply.startswith("WARN")
    assert "Processing mode DISPATCH without dispatch retention" in reply
    assert "only linked by inference" in reply
    assert "Set the app's dispatch retention to 1-7 days" in reply


def test_dispatch_mode_with_retention_links_replies(live, sim):
    sim.set_knobs({"processing_mode": "DISPATCH", "dispatch_retention": True})
    code, output = run_check()
    assert code == 0
    reply = line(output, "reply linking")
    assert reply.startswith("OK")
    assert "DISPATCH with a dispatch retention of 7 days" in reply


def test_conversation_mode_links_replies(live, sim):
    sim.set_knobs({"processing_mode": "CONVERSATION"})
    code, output = run_check()
    assert code == 0
    assert "Processing mode CONVERSATION: replies carry the _batch_id" in line(
        output, "reply linking"
    )


# --- the webhook ---


def test_an_app_without_webhook(live, api):
    api.delete_all()
    code, output = run_check()
    assert code == 1
    target = line(output, "webhook target")
    assert f"No webhook of app {ACCOUNT.app_id} targets {TARGET}" in target
    assert "The app has no webhook." in target
    assert (
        "target type HTTP, the triggers MESSAGE_DELIVERY, MESSAGE_INBOUND, "
        "BATCH_STATUS_UPDATE, OPT_OUT, OPT_IN" in target
    )
    assert statuses(output)["webhook triggers"] == "SKIP"


def test_a_webhook_aimed_elsewhere_is_shown_with_its_target(live, api):
    api.patch(target="https://old.example.com/sinch-hook")
    code, output = run_check()
    assert code == 1
    assert "Its webhooks target: https://old.example.com/sinch-hook." in line(
        output, "webhook target"
    )


def test_the_target_may_be_given_on_the_command_line(live, api):
    live.SITE_URL = ""
    code, output = run_check()
    assert code == 1
    assert "SITE_URL is not set, so the webhook's address is unknown" in output
    code, output = run_check("--webhook-url", TARGET + "/")  # a trailing slash
    assert code == 0, output


def test_a_dismissed_webhook_gets_nothing(live, api):
    api.patch(target_type="DISMISS")
    code, output = run_check()
    assert code == 1
    target = line(output, "webhook target")
    assert "with target type DISMISS: Sinch sends it nothing" in target
    assert "Set its target type to HTTP" in target


def test_a_plain_http_target_is_a_warning(live, api):
    api.patch(target="http://campaigns.example.com/webhooks/sinch")
    code, output = run_check(
        "--webhook-url", "http://campaigns.example.com/webhooks/sinch"
    )
    assert code == 0
    assert "over plain HTTP" in line(output, "webhook target")


def test_missing_product_triggers_fail_with_what_is_lost(live, api):
    api.patch(triggers=["MESSAGE_DELIVERY", "OPT_OUT", "OPT_IN"])
    code, output = run_check()
    assert code == 1
    triggers = line(output, "webhook triggers")
    assert triggers.startswith("FAIL")
    assert "Missing MESSAGE_INBOUND, BATCH_STATUS_UPDATE" in triggers
    assert "no replies and no STOP by SMS (opt-outs are lost)" in triggers


def test_missing_consent_triggers_warn_unless_consent_management_is_on(live, api):
    api.patch(triggers=ALL_TRIGGERS[:3])
    code, output = run_check()
    assert code == 0
    assert line(output, "webhook triggers").startswith("WARN  webhook triggers  ")
    assert "Missing OPT_OUT, OPT_IN" in output
    code, output = run_check("--consent-management")
    assert code == 1
    assert line(output, "webhook triggers").startswith("FAIL")


def test_another_spelling_of_the_batch_status_trigger_is_accepted(live, api):
    api.patch(
        triggers=[
            "MESSAGE_DELIVERY",
            "MESSAGE_INBOUND",
            "BATCH_STATUS",
            *ALL_TRIGGERS[3:],
        ]
    )
    code, output = run_check()
    assert code == 0, output


# --- the secret ---


def test_a_secret_sinch_does_not_show_cannot_be_verified(live, sim):
    sim.set_knobs({"webhook_secret_shown": "omitted"})
    code, output = run_check()
    assert code == 0
    secret = line(output, "webhook secret")
    assert secret.startswith("WARN")
    assert "Sinch does not show whether the webhook has a secret" in secret
    assert "Verify it with a signed test callback" in secret


def test_a_masked_secret_cannot_be_verified(live, sim):
    sim.set_knobs({"webhook_secret_shown": "masked"})
    code, output = run_check()
    assert code == 0
    assert "The webhook has a secret, shown masked" in line(output, "webhook secret")


def test_a_webhook_secret_other_than_ours_fails(live, api):
    api.patch(secret="the-dashboard-secret")
    code, output = run_check()
    assert code == 1
    secret = line(output, "webhook secret")
    assert "The webhook's secret differs from SINCH_WEBHOOK_SECRET" in secret
    assert "the-dashboard-secret" not in output


def test_a_rotated_secret_list_matches_the_new_or_the_old_secret(live, api):
    live.SINCH_WEBHOOK_SECRET = "new-secret-2026," + WEBHOOK_SECRET
    code, output = run_check()
    assert code == 0, output


def test_no_secret_or_the_development_secret_fails(live):
    live.SINCH_WEBHOOK_SECRET = ""
    code, output = run_check()
    assert code == 1
    assert "SINCH_WEBHOOK_SECRET is not set: the product refuses every callback" in (
        output
    )
    live.SINCH_WEBHOOK_SECRET = "sim-webhook-secret"
    code, output = run_check()
    assert code == 1
    assert "the simulator's public development secret" in line(output, "webhook secret")


# --- the simulator's endpoints themselves ---


def test_the_simulator_serves_the_app_and_manages_webhooks(sim, api):
    app = api.call("GET", f"/apps/{ACCOUNT.app_id}")
    assert app.status_code == 200
    assert app.json()["id"] == ACCOUNT.app_id
    assert app.json()["processing_mode"] in ("DISPATCH", "CONVERSATION")
    assert api.call("GET", "/apps/01OTHER/webhooks").status_code == 404
    created = api.create(target="https://b.example.com/h", triggers=["MESSAGE_INBOUND"])
    assert created["target_type"] == "DISMISS"  # Sinch's default
    duplicate = api.call(
        "POST", "/webhooks", app_id=ACCOUNT.app_id, target="https://b.example.com/h"
    )
    assert duplicate.status_code == 400
    for n in range(3):
        api.create(target=f"https://c{n}.example.com/h")
    sixth = api.call(
        "POST", "/webhooks", app_id=ACCOUNT.app_id, target="https://d.example.com/h"
    )
    assert sixth.status_code == 400
    assert "at most 5 webhooks" in sixth.text
    assert api.call("DELETE", f"/webhooks/{created['id']}").status_code == 200
    assert api.call("GET", f"/webhooks/{created['id']}").status_code == 404
    no_token = requests.get(f"{api.url}/apps/{ACCOUNT.app_id}", timeout=5)
    assert no_token.status_code == 401


def test_the_readme_curl_registers_the_webhook_with_the_access_key(sim):
    """One call with the key itself (Basic), as the README's curl does."""
    body = {
        "app_id": ACCOUNT.app_id,
        "target": "https://new.example.com/webhooks/sinch",
        "target_type": "HTTP",
        "triggers": ALL_TRIGGERS,
        "secret": "a-long-random-secret",
    }
    url = f"{sim.url}/v1/projects/{ACCOUNT.project_id}/webhooks"
    wrong = requests.post(url, json=body, auth=(ACCOUNT.key_id, "nope"), timeout=5)
    assert wrong.status_code == 401
    created = requests.post(
        url, json=body, auth=(ACCOUNT.key_id, ACCOUNT.key_secret), timeout=5
    )
    assert created.status_code == 200, created.text
    assert created.json()["triggers"] == ALL_TRIGGERS
    assert created.json()["target"] == "https://new.example.com/webhooks/sinch"
