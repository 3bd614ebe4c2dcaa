"""The pre-send check as a background job: queued, claimed once, with progress."""

import csv
import random
from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from campaigns.authoring import presend
from campaigns.models import Campaign
from campaigns.tasks import presend_check
from contacts.models import ConsentState

IN = ConsentState.OPTED_IN
State = Campaign.PresendState


@pytest.fixture
def campaign(make_template, make_audience, make_campaign):
    template = make_template(
        "Tiers",
        "Hi ${first_name}, you are ${tier}",
        parameters={"tier": {"default": "a member"}},
    )
    customers = make_audience("Customers", 12)
    return make_campaign(template, [customers], "Spring")


def test_a_small_audience_is_checked_at_once(campaign, settings):
    settings.PRESEND_INLINE_RECIPIENTS = 100
    assert presend.request_check(campaign) is True
    campaign.refresh_from_db()
    assert campaign.presend_state == State.DONE
    assert campaign.presend_total == campaign.presend_progress == 12
    assert campaign.presend["ok"] == 12


def test_a_large_audience_is_checked_by_a_worker(
    campaign, settings, django_capture_on_commit_callbacks
):
    settings.PRESEND_INLINE_RECIPIENTS = 5
    with django_capture_on_commit_callbacks(execute=False) as queued:
        assert presend.request_check(campaign) is False
    campaign.refresh_from_db()
    assert campaign.presend_state == State.QUEUED
    assert campaign.presend_total == 12
    assert campaign.presend is None
    assert len(queued) == 1
    queued[0]()  # the worker picks the task up (django-q2 runs it in sync mode)
    campaign.refresh_from_db()
    assert campaign.presend_state == State.DONE
    assert campaign.presend_progress == 12
    assert campaign.presend["ok"] == 12


def test_a_task_delivered_twice_checks_once(campaign, settings, monkeypatch):
    settings.PRESEND_INLINE_RECIPIENTS = 0
    presend.request_check(campaign)
    campaign.refresh_from_db()
    token = campaign.presend_requested_at.isoformat()
    runs = []
    real = presend.run_presend_check
    monkeypatch.setattr(
        presend, "run_presend_check", lambda c, **kw: runs.append(1) or real(c, **kw)
    )
    assert "0 blocking" in presend_check(campaign.pk, token)
    assert "taken or superseded" in presend_check(campaign.pk, token)
    assert runs == [1]


def test_a_superseded_request_does_not_run(campaign, settings):
    settings.PRESEND_INLINE_RECIPIENTS = 0
    presend.request_check(campaign)
    assert "superseded" in presend_check(campaign.pk, "2001-01-01T00:00:00+00:00")
    campaign.refresh_from_db()
    assert campaign.presend_state == State.QUEUED


def test_asking_again_while_it_runs_starts_nothing(
    campaign, settings, django_capture_on_commit_callbacks
):
    settings.PRESEND_INLINE_RECIPIENTS = 0
    with django_capture_on_commit_callbacks(execute=False) as queued:
        presend.request_check(campaign)
        campaign.refresh_from_db()
        presend.request_check(campaign)
    assert len(queued) == 1


def test_a_check_left_by_a_dead_worker_can_be_asked_again(
    campaign, settings, django_capture_on_commit_callbacks
):
    settings.PRESEND_INLINE_RECIPIENTS = 0
    presend.request_check(campaign)
    long_ago = campaign.presend_requested_at.replace(year=2000)
    Campaign.objects.filter(pk=campaign.pk).update(
        presend_state=State.RUNNING, presend_requested_at=long_ago
    )
    campaign.refresh_from_db()
    with django_capture_on_commit_callbacks(execute=True) as queued:
        presend.request_check(campaign)
    assert len(queued) == 1
    campaign.refresh_from_db()
    assert campaign.presend_state == State.DONE


def test_a_failing_check_is_recorded_and_shown(
    campaign, settings, monkeypatch, client, marketer
):
    settings.PRESEND_INLINE_RECIPIENTS = 100

    def broken(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(presend, "run_presend_check", broken)
    with pytest.raises(OSError, match="disk full"):
        presend.request_check(campaign)
    campaign.refresh_from_db()
    assert campaign.presend_state == State.FAILED
    assert campaign.presend_error == "OSError: disk full"
    client.force_login(marketer)
    page = client.get(
        reverse("admin:campaigns_campaign_preview", args=[campaign.pk])
    ).content.decode()
    assert "The last pre-send check failed: OSError: disk full" in page


def test_progress_is_reported_after_each_chunk(campaign):
    seen = []
    presend.run_presend_check(campaign, chunk_size=5, progress=seen.append)
    assert seen == [5, 10, 12]


def test_the_preview_shows_the_progress_of_a_running_check(
    campaign, settings, client, marketer, django_capture_on_commit_callbacks
):
    settings.PRESEND_INLINE_RECIPIENTS = 0
    client.force_login(marketer)
    url = reverse("admin:campaigns_campaign_presend", args=[campaign.pk])
    with django_capture_on_commit_callbacks(execute=False):
        response = client.post(url, follow=True)
    page = response.content.decode()
    assert "started on the worker" in page
    Campaign.objects.filter(pk=campaign.pk).update(
        presend_state=State.RUNNING, presend_progress=5
    )
    page = client.get(
        reverse("admin:campaigns_campaign_preview", args=[campaign.pk])
    ).content.decode()
    assert 'class="presend-progress"' in page
    assert "presend_progress.js" in page
    status = client.get(
        reverse("admin:campaigns_campaign_presend_status", args=[campaign.pk])
    ).json()
    assert status == {
        "state": "RUNNING",
        "running": True,
        "state_label": "Running",
        "checked": 5,
        "total": 12,
        "error": "",
    }


def test_a_check_left_behind_by_a_dead_worker_is_not_shown_as_running(
    campaign, settings, client, marketer, django_capture_on_commit_callbacks
):
    """The page and its poller say what request_check decides: past the
    cluster's task timeout the check may be asked for again."""
    settings.PRESEND_INLINE_RECIPIENTS = 0
    client.force_login(marketer)
    with django_capture_on_commit_callbacks(execute=False):
        client.post(reverse("admin:campaigns_campaign_presend", args=[campaign.pk]))
    long_ago = timezone.now() - timedelta(seconds=settings.Q_CLUSTER["timeout"] + 60)
    Campaign.objects.filter(pk=campaign.pk).update(
        presend_state=State.RUNNING, presend_requested_at=long_ago
    )
    page = client.get(
        reverse("admin:campaigns_campaign_preview", args=[campaign.pk])
    ).content.decode()
    assert 'class="presend-progress"' not in page
    status = client.get(
        reverse("admin:campaigns_campaign_presend_status", args=[campaign.pk])
    ).json()
    assert (status["state"], status["running"]) == ("RUNNING", False)


def test_the_status_needs_view_permission(campaign, client, outsider):
    client.force_login(outsider)
    url = reverse("admin:campaigns_campaign_presend_status", args=[campaign.pk])
    assert client.get(url).status_code in (302, 403)


@pytest.mark.parametrize("chunk_size", [1, 3, 7, 50])
def test_every_member_of_overlapping_lists_is_checked_exactly_once(
    make_template, make_campaign, make_contact, make_list, chunk_size
):
    rng = random.Random(chunk_size)
    lists = [make_list(f"List {i}") for i in range(3)]
    members = set()
    for _ in range(40):
        chosen = [lst for lst in lists if rng.random() < 0.4]
        contact = make_contact(consent=IN, lists=chosen)
        if chosen:
            members.add(contact.pk)
    campaign = make_campaign(make_template("Plain", "Hello"), lists, "All")
    result = presend.run_presend_check(campaign, chunk_size=chunk_size)
    with open(result.csv_path, encoding="utf-8") as handle:
        ids = [int(row["contact_id"]) for row in csv.DictReader(handle)]
    assert ids == sorted(members)
    assert result.audience == presend.audience_size(campaign) == len(members)
