"""A Sinch outage at launch is waited out, shown, and never fails a campaign.

Issue 15: a 2-3 minute outage of Sinch or its auth server at launch failed
the whole campaign as "permanent", with the reason "its worker kept dying",
and the retry page advised against retrying. These tests take the
simulator down (connection refused, on the same port) or make it answer 503
(its `outage` knob), drive the product's own client over HTTP, and bring it
back: the campaign finishes by itself, every batch reaches Sinch exactly
once, and "Sinch unreachable since 10:02, retrying" is shown meanwhile.
"""

import re
from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from campaigns.dispatch import batch_request, drain, settlement
from campaigns.dispatch import sinch_outage as outage
from campaigns.models import Batch, Campaign, Recipient
from campaigns.tracking import failures, follow_up_campaigns
from sinch import client as sinch_client
from sinch.models import Outage

S, B, R = Campaign.Status, Batch.Status, Recipient.Status
HEALTH = "/admin/health/"


@pytest.fixture
def client_without_waits(sinch, monkeypatch):
    """The product's client aimed at the simulator; its own retries of a
    call are not slept through (the outage is what the test is about)."""
    client = sinch_client.get_sinch_client()
    monkeypatch.setattr(client.transport, "_sleep", lambda seconds: None)
    return client


@pytest.fixture
def campaign(make_launchable, small_batches, launched_campaign):
    """Seven recipients in batches of three, launched: three batches due."""
    return launched_campaign(make_launchable(), dispatch=False)


def at_sinch(control) -> list[str]:
    return [
        b["meta_data"].get(batch_request.BATCH_KEY) for b in control.state()["batches"]
    ]


def batches(campaign) -> list[Batch]:
    return list(Batch.objects.filter(campaign=campaign).order_by("sequence"))


def text(page: bytes) -> str:
    return " ".join(re.sub(r"<[^>]+>", " ", page.decode()).split())


def minutes_pass(campaign, seconds: float) -> None:
    """Time passes: waits run out, and uncertain batches pass their grace."""
    earlier = timezone.now() - timedelta(seconds=seconds)
    Batch.objects.filter(campaign=campaign, status=B.PENDING).update(not_before=earlier)
    Batch.objects.filter(campaign=campaign, status=B.UNCERTAIN).update(
        uncertain_since=earlier
    )
    Outage.objects.filter(pk=1, down_since__isnull=False).update(
        down_since=earlier - timedelta(minutes=1)
    )


def what_the_tick_does(campaign) -> str:
    """The periodic tick's part that matters here: settle, then a drain loop
    where batches are due (restart_idle_campaigns starts one)."""
    settlement.settle_uncertain_batches()
    return drain.run_dispatcher(campaign.pk, seconds=30)


def go_down(sim, control, how: str) -> None:
    if how == "refused":
        sim.go_down()
    else:
        control.knobs(outage=how)


def come_back(sim, control, how: str) -> None:
    if how == "refused":
        sim.come_back()
    else:
        control.knobs(outage="")


@pytest.mark.parametrize(
    "how",
    [
        "refused",  # Sinch and its auth server unreachable: connection refused
        "auth",  # the auth server answers 503: no token
        "api",  # the Batch API answers 503 (a send's outcome is then unknown)
    ],
)
def test_an_outage_at_launch_is_waited_out_and_every_batch_goes_once_after(
    how,
    campaign,
    sim,
    control,
    client_without_waits,
    settings,
    client,
    sender,
    superuser,
):
    settings.DISPATCH_MAX_ATTEMPTS = 2
    settings.DISPATCH_PAUSE_MIN_BATCHES = 1
    go_down(sim, control, how)
    # Three minutes of outage, a try every few seconds: more tries than
    # DISPATCH_MAX_ATTEMPTS, and the drain loop stops at the first outage.
    assert "Sinch unreachable" in what_the_tick_does(campaign)
    for _ in range(6):
        minutes_pass(campaign, 30)
        what_the_tick_does(campaign)
    campaign.refresh_from_db()
    assert campaign.status == S.SUBMITTING  # not failed, not paused
    assert not Batch.objects.filter(campaign=campaign, status=B.FAILED).exists()
    assert not Recipient.objects.filter(campaign=campaign, status=R.FAILED).exists()
    assert all(b.attempts <= 1 for b in batches(campaign))

    # Shown on the campaign page, in the campaign list and on the health page.
    since = timezone.localtime(Outage.objects.get(pk=1).down_since)
    shown = f"Sinch unreachable since {since:%H:%M}, retrying"
    client.force_login(sender)
    page = client.get(reverse("admin:campaigns_campaign_change", args=[campaign.pk]))
    assert shown in text(page.content)
    dashboard = reverse("admin:campaigns_campaign_dashboard", args=[campaign.pk])
    assert shown in text(client.get(dashboard).content)
    listing = client.get(reverse("admin:campaigns_campaign_changelist"))
    assert shown in text(listing.content)
    client.force_login(superuser)
    assert shown in text(client.get(HEALTH).content)

    come_back(sim, control, how)
    for _ in range(3):
        minutes_pass(campaign, 130)
        what_the_tick_does(campaign)
    campaign.refresh_from_db()
    assert campaign.status == S.SUBMITTED
    assert sorted(at_sinch(control)) == sorted(
        b.metadata_key for b in batches(campaign)
    )
    assert [b.status for b in batches(campaign)] == [B.ACCEPTED] * 3
    # Only the sends that worked used an attempt: the outage used none.
    assert [b.attempts for b in batches(campaign)] == [1, 1, 1]
    assert outage.current() is None
    client.force_login(sender)
    page = client.get(reverse("admin:campaigns_campaign_change", args=[campaign.pk]))
    assert "Sinch unreachable" not in text(page.content)


def test_a_batch_whose_worker_kept_dying_is_given_up_as_safe_to_send_again(
    campaign, sim, control, client_without_waits, settings, client, marketer
):
    settings.DISPATCH_MAX_ATTEMPTS = 2
    first, second, third = batches(campaign)
    # Its worker died after each of two claims; Sinch never got it.
    Batch.objects.filter(pk=second.pk).update(
        attempts=2,
        last_error="Sinch did not have it after the grace period "
        f"({settlement.WORKER_STOPPED}): submitted again",
    )
    drain.run_dispatcher(campaign.pk)
    second.refresh_from_db()
    assert second.status == B.FAILED
    assert "its worker kept dying" in second.last_error
    assert at_sinch(control) == [first.metadata_key, third.metadata_key]
    failed = Recipient.objects.filter(batch=second)
    assert {r.failure_code for r in failed} == {failures.SUBMISSION_GIVEN_UP}
    # The retry page puts them with the transient failures: sending is safe.
    found = follow_up_campaigns.failed_recipients(campaign)
    assert found.by_class == {failures.TRANSIENT: 3, failures.PERMANENT: 0}
    client.force_login(marketer)
    page = client.get(reverse("admin:campaigns_campaign_retry", args=[campaign.pk]))
    words = text(page.content)
    assert "Never handed to Sinch" in words
    assert "Sending again is safe" in words


def test_credentials_refused_every_time_are_given_up_with_that_reason(
    campaign, sim, control, client_without_waits, settings, monkeypatch
):
    """A refusal is no outage and no dying worker: the reason says so."""
    settings.DISPATCH_MAX_ATTEMPTS = 2
    monkeypatch.setattr(client_without_waits._tokens, "token", lambda: "wrong")
    for _ in range(3):
        drain.run_dispatcher(campaign.pk)
        minutes_pass(campaign, 300)
    first = batches(campaign)[0]
    assert first.status == B.FAILED
    assert first.last_error.startswith("Given up after 2 attempts; the last:")
    assert "not authenticated" in first.last_error
    assert "worker" not in first.last_error
    assert outage.current() is None
    assert at_sinch(control) == []


def test_the_wait_between_tries_grows_with_the_outage_up_to_a_minute():
    now = timezone.now()
    assert outage.wait_s(None, now) == outage.FIRST_WAIT_S
    assert outage.wait_s(now - timedelta(seconds=4), now) == outage.FIRST_WAIT_S
    assert outage.wait_s(now - timedelta(seconds=40), now) == 20
    assert outage.wait_s(now - timedelta(minutes=3), now) == outage.LONGEST_WAIT_S
