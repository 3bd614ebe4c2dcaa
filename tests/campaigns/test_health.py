"""The operator health page: is the machinery working, at a glance.

Each check is driven by the real thing it reports on: tasks put in the
configured broker (ORM, or Redis when REDIS_URL is set), stored callbacks,
batches left uncertain or claimed past their lease, and a real refusal of
the product's credentials by the simulator's token endpoint.
"""

import re
import uuid
from datetime import timedelta

import pytest
from django.contrib.auth.models import Permission
from django.urls import reverse
from django.utils import timezone
from django_q.brokers import get_broker
from django_q.signing import SignedPackage

from campaigns.models import Batch, Campaign, WebhookEvent
from campaigns.tracking import health
from sinch.client import get_sinch_client
from sinch.config import (
    CREDENTIAL_SETTINGS,
    SIMULATOR_APP_ID,
    SIMULATOR_KEY_ID,
    SIMULATOR_PROJECT_ID,
)
from sinch.errors import SinchAuthError
from sinch.models import AuthFailure

URL = "/admin/health/"


def check(response, key) -> dict:
    html = response.content.decode()
    row = re.search(
        rf'<tr id="check-{key}" class="check level-(\w+)">'
        r"(.*?)</tr>\s*(?=<tr id|</tbody>)",
        html,
        re.S,
    )
    assert row, f"no {key} check"
    text = re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", row.group(2)))
    return {"level": row.group(1), "text": text}


@pytest.fixture
def operator(make_user):
    user = make_user("opal")
    user.user_permissions.add(
        Permission.objects.get(codename="view_ormq", content_type__app_label="django_q")
    )
    return user


@pytest.fixture
def campaign(make_template, make_campaign):
    return make_campaign(
        make_template("Spring", "Hi!"),
        name="Spring sale",
        status=Campaign.Status.SUBMITTED,
    )


def test_superusers_and_operators_see_the_page_roles_do_not(
    client, superuser, operator, sender, compliance_admin, outsider
):
    for user in (superuser, operator):
        client.force_login(user)
        response = client.get(URL)
        assert response.status_code == 200
        assert "Operator health" in response.content.decode()
    for user in (sender, compliance_admin):
        client.force_login(user)
        assert client.get(URL).status_code == 403
    client.force_login(outsider)
    assert client.get(URL)["Location"].startswith("/admin/login/")


def test_the_admin_index_links_to_the_page_for_those_who_may_open_it(
    client, superuser, sender
):
    client.force_login(superuser)
    assert 'id="health-link"' in client.get(reverse("admin:index")).content.decode()
    client.force_login(sender)
    assert 'id="health-link"' not in client.get(reverse("admin:index")).content.decode()


def test_it_says_the_simulator_is_in_use_without_credentials(
    client, superuser, settings
):
    for name in CREDENTIAL_SETTINGS:
        setattr(settings, name, "")
    client.force_login(superuser)
    mode = check(client.get(URL), "mode")
    assert "simulator" in mode["text"]
    assert "nobody receives them" in mode["text"]


def test_queue_depth_and_the_oldest_waiting_task(db):
    broker = get_broker(list_key=f"health-test-{uuid.uuid4().hex[:8]}")
    queued_at = timezone.now() - timedelta(minutes=12)
    try:
        for n in range(3):
            broker.enqueue(
                SignedPackage.dumps(
                    {
                        "id": f"t{n}",
                        "name": f"t{n}",
                        "func": "math.floor",
                        "started": queued_at,
                    }
                )
            )
        if type(broker).__name__ == "ORM":  # the ORM broker's enqueue time is its lock
            from django_q.models import OrmQ

            OrmQ.objects.filter(key=broker.list_key).update(lock=queued_at)
        facts = health.queue_facts(broker)
        assert facts["size"] == 3
        assert abs((facts["oldest"] - queued_at).total_seconds()) < 1
        result = health.queue_check(timezone.now(), broker)
        assert result.level == health.WARN  # older than 5 minutes
        assert result.value.startswith("3 waiting")
        assert "12 minutes ago" in result.detail
        assert "qcluster" in result.detail
    finally:
        broker.purge_queue()
    assert health.queue_check(timezone.now(), broker).level == health.OK


def _event(n, state, received_at):
    return WebhookEvent.objects.create(
        received_at=received_at,
        signed_at=received_at,
        nonce=f"nonce-{n}-{uuid.uuid4().hex}",
        body="{}",
        state=state,
    )


def test_last_callback_waiting_callbacks_and_orphans(client, superuser, campaign):
    now = timezone.now()
    client.force_login(superuser)
    assert check(client.get(URL), "last_webhook")["text"].count("never")
    _event(1, WebhookEvent.State.PROCESSED, now - timedelta(minutes=30))
    _event(2, WebhookEvent.State.NEW, now - timedelta(minutes=20))
    _event(3, WebhookEvent.State.NEW, now - timedelta(minutes=3))
    _event(4, WebhookEvent.State.ORPHAN, now - timedelta(minutes=2))
    response = client.get(URL)
    assert "2 minutes ago" in check(response, "last_webhook")["text"]
    inbox = check(response, "inbox")
    assert inbox["level"] == "bad"
    assert " 2 " in inbox["text"]
    assert "20 minutes ago" in inbox["text"]
    orphans = check(response, "orphans")
    assert orphans["level"] == "warn"
    assert " 1 " in orphans["text"]
    assert "Something needs attention now" in response.content.decode()


def test_campaigns_whose_receipts_stopped_are_listed(client, superuser, campaign):
    _event(1, WebhookEvent.State.PROCESSED, timezone.now())
    Campaign.objects.filter(pk=campaign.pk).update(
        receipts_stalled="No delivery report for 40 minutes while 12 messages wait."
    )
    client.force_login(superuser)
    response = client.get(URL)
    last = check(response, "last_webhook")
    assert last["level"] == "warn"
    assert "Spring sale : No delivery report for 40 minutes" in last["text"]
    assert reverse("admin:campaigns_campaign_dashboard", args=[campaign.pk]) in (
        response.content.decode()
    )


def test_batches_uncertain_or_submitting_past_the_lease_are_shown(
    client, superuser, campaign, settings
):
    now = timezone.now()
    lease = timedelta(seconds=settings.DISPATCH_CLAIM_LEASE_S)
    common = {"campaign": campaign, "size": 10}
    Batch.objects.create(
        sequence=1, metadata_key="k1", status=Batch.Status.ACCEPTED, **common
    )
    Batch.objects.create(
        sequence=2,
        metadata_key="k2",
        status=Batch.Status.SUBMITTING,
        claimed_at=now - timedelta(seconds=5),
        **common,
    )
    client.force_login(superuser)
    assert check(client.get(URL), "batches")["level"] == "ok"
    Batch.objects.create(
        sequence=3,
        metadata_key="k3",
        status=Batch.Status.UNCERTAIN,
        claimed_at=now - timedelta(minutes=2),
        uncertain_since=now - timedelta(minutes=1),
        last_error="Outcome uncertain: read timeout",
        **common,
    )
    batches = check(client.get(URL), "batches")
    assert batches["level"] == "warn"
    assert "1 uncertain, 0 submitting past the lease" in batches["text"]
    assert "read timeout" in batches["text"]
    Batch.objects.create(
        sequence=4,
        metadata_key="k4",
        status=Batch.Status.SUBMITTING,
        claimed_at=now - lease - timedelta(minutes=1),
        **common,
    )
    batches = check(client.get(URL), "batches")
    assert batches["level"] == "bad"
    assert "1 uncertain, 1 submitting past the lease" in batches["text"]
    assert "Spring sale" in batches["text"]


def test_a_refused_credential_is_recorded_and_shown(client, superuser, settings, sinch):
    """Real Sinch mode (all four credentials set, aimed at the simulator) with
    a wrong key secret: the token request is refused."""
    client.force_login(superuser)
    assert check(client.get(URL), "token")["level"] == "ok"
    settings.SINCH_PROJECT_ID = SIMULATOR_PROJECT_ID
    settings.SINCH_APP_ID = SIMULATOR_APP_ID
    settings.SINCH_KEY_ID = SIMULATOR_KEY_ID
    settings.SINCH_KEY_SECRET = "not-the-secret"
    get_sinch_client.cache_clear()
    with pytest.raises(SinchAuthError):
        get_sinch_client().get_batch("01NOSUCHBATCH")
    failure = AuthFailure.objects.get()
    assert failure.count == 1
    assert failure.status == 401
    assert "not-the-secret" not in failure.message
    response = client.get(URL)
    token = check(response, "token")
    assert token["level"] == "bad"
    assert "refused" in token["text"]
    assert "token request" in token["text"]
    assert "not-the-secret" not in response.content.decode()
    assert "real Sinch" in check(response, "mode")["text"]
    get_sinch_client.cache_clear()
