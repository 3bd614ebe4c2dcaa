"""A launch stopped by an error or a vanished worker never stays LAUNCHING.

Issue 15: a database error during an inline launch left the campaign
LAUNCHING forever. Now an error sends it back to a draft with the reason
shown (nothing was frozen for good), or leaves it to be resumed; a launch
whose worker vanished is found by the periodic tick through its lease, and
resumed after its last sealed batch, or failed with the reason after
LAUNCH_MAX_RESUMES.
"""

import re
from datetime import timedelta

import pytest
from django.db import DatabaseError
from django.urls import reverse
from django.utils import timezone

from campaigns import tasks
from campaigns.dispatch import freeze, launch_recovery
from campaigns.models import Batch, Campaign, Recipient
from contacts.models import AuditEvent

S, B, R = Campaign.Status, Batch.Status, Recipient.Status


@pytest.fixture
def capture(django_capture_on_commit_callbacks):
    return django_capture_on_commit_callbacks


def text(response) -> str:
    return " ".join(re.sub(r"<[^>]+>", " ", response.content.decode()).split())


def fail_writing_recipients(monkeypatch, after_calls: int = 0):
    """The database fails while the freeze writes recipients (after
    `after_calls` writes that worked); the error names a phone number."""
    real = freeze.TableWriter.insert
    calls = []

    def insert(self, rows):
        calls.append(len(rows))
        if len(calls) > after_calls:
            raise DatabaseError(
                "could not extend file: No space left on device "
                '(Key (identity)=(+14155550003) in "campaigns_recipient")'
            )
        return real(self, rows)

    monkeypatch.setattr(freeze.TableWriter, "insert", insert)


def fail_at_the_last_seal(monkeypatch):
    """The database fails at the end of the freeze, after batches were
    sealed (and may have gone to Sinch)."""
    real = freeze._seal
    calls = []

    def seal(campaign, batches, now, releases):
        calls.append(len(batches))
        if len(calls) > 1:
            raise DatabaseError("server closed the connection unexpectedly")
        return real(campaign, batches, now, releases)

    monkeypatch.setattr(freeze, "_seal", seal)


def expire_lease(campaign, settings) -> None:
    Campaign.objects.filter(pk=campaign.pk).update(
        launch_lease_at=timezone.now() - timedelta(seconds=settings.LAUNCH_LEASE_S + 1)
    )


def test_a_database_error_in_an_inline_launch_makes_it_a_draft_again_with_why(
    make_launchable, client, sender, sinch, monkeypatch, capture
):
    campaign = make_launchable()
    fail_writing_recipients(monkeypatch)
    client.force_login(sender)
    launch_url = reverse("admin:campaigns_campaign_launch", args=[campaign.pk])
    with capture(execute=True):
        page = client.post(launch_url, follow=True)
    campaign.refresh_from_db()
    assert campaign.status == S.DRAFT
    assert campaign.status_reason.startswith(
        "The launch failed (DatabaseError: could not extend file"
    )
    assert "Nothing was sent" in campaign.status_reason
    assert "+14155550003" not in campaign.status_reason  # no number shown
    assert "The campaign was not launched: The launch failed" in text(page)
    assert not Recipient.objects.filter(campaign=campaign).exists()
    assert not Batch.objects.filter(campaign=campaign).exists()
    # The draft's page says why, and the audit trail has it.
    change = client.get(reverse("admin:campaigns_campaign_change", args=[campaign.pk]))
    assert "The launch failed (DatabaseError" in text(change)
    assert AuditEvent.objects.filter(
        action=AuditEvent.Action.LAUNCH, summary__contains="The launch failed"
    ).exists()
    # Once the database is fine again, it is launched as usual.
    monkeypatch.undo()
    with capture(execute=True):
        client.post(launch_url, follow=True)
    campaign.refresh_from_db()
    assert campaign.status == S.SUBMITTED
    assert campaign.status_reason == ""
    assert Recipient.objects.filter(campaign=campaign, status=R.SUBMITTED).count() == 7


def test_an_inline_launch_stopped_after_batches_were_sealed_is_resumed_by_the_tick(
    make_launchable, client, sender, sinch, small_batches, monkeypatch, capture
):
    campaign = make_launchable()
    fail_at_the_last_seal(monkeypatch)
    client.force_login(sender)
    launch_url = reverse("admin:campaigns_campaign_launch", args=[campaign.pk])
    with capture(execute=False):
        page = client.post(launch_url, follow=True)
    campaign.refresh_from_db()
    assert campaign.status == S.LAUNCHING
    assert campaign.status_reason.startswith(
        "The launch was interrupted (DatabaseError: server closed the connection"
    )
    assert "it resumes by itself" in campaign.status_reason
    # The Sender lands on the campaign page, which says what happened.
    assert "The launch was interrupted" in text(page)
    assert "already launched" not in text(page)
    monkeypatch.undo()
    with capture(execute=True):
        assert launch_recovery.resume_stalled_launches() == 1
    campaign.refresh_from_db()
    assert campaign.status == S.SUBMITTED
    # Resumed after its last sealed batch: everyone frozen once.
    rows = Recipient.objects.filter(campaign=campaign, is_test=False)
    assert rows.count() == 8  # seven opted in, Olga excluded
    assert rows.values("contact_id").distinct().count() == 8
    assert rows.filter(status=R.SUBMITTED).count() == 7


def test_a_launch_whose_worker_vanished_is_resumed_by_the_periodic_tick(
    make_launchable, sender, sinch, settings, capture
):
    from campaigns.dispatch import launching

    settings.LAUNCH_INLINE_RECIPIENTS = 0  # frozen on a worker
    campaign = make_launchable()
    with capture(execute=False):  # the worker never runs the task
        assert launching.launch(campaign, sender) is False
    # A worker took it, then died without a word.
    token = launch_recovery.take_lease(campaign.pk)
    assert token is not None
    with capture(execute=True):
        assert launch_recovery.resume_stalled_launches() == 0  # lease still live
    assert Campaign.objects.get(pk=campaign.pk).status == S.LAUNCHING
    expire_lease(campaign, settings)
    with capture(execute=True):
        assert "1 launches resumed" in tasks.tick()
    campaign.refresh_from_db()
    assert campaign.status == S.SUBMITTED
    assert campaign.launch_resumes == 1
    assert "The launch's worker stopped" in campaign.status_reason
    # The old worker, back from the dead, finds its lease taken.
    with pytest.raises(launch_recovery.LeaseLost):
        launch_recovery.renew_lease(campaign.pk, token)


def test_a_second_freeze_of_the_same_launch_does_nothing(
    make_launchable, sender, sinch, settings, capture
):
    from campaigns.dispatch import launching

    settings.LAUNCH_INLINE_RECIPIENTS = 0
    campaign = make_launchable()
    with capture(execute=False):
        launching.launch(campaign, sender)
    assert launch_recovery.take_lease(campaign.pk) is not None  # one runs
    result = tasks.freeze_recipients(campaign.pk)
    assert result.endswith("being frozen by another worker")
    assert not Recipient.objects.filter(campaign=campaign).exists()


def test_an_error_on_the_worker_is_shown_and_the_task_fails(
    make_launchable, sender, sinch, settings, monkeypatch, capture
):
    from campaigns.dispatch import launching

    settings.LAUNCH_INLINE_RECIPIENTS = 0
    campaign = make_launchable()
    with capture(execute=False):
        launching.launch(campaign, sender)
    fail_writing_recipients(monkeypatch)
    with pytest.raises(DatabaseError):
        tasks.freeze_recipients(campaign.pk)
    campaign.refresh_from_db()
    assert campaign.status == S.DRAFT
    assert campaign.status_reason.startswith("The launch failed (DatabaseError")


def test_a_launch_that_keeps_losing_its_worker_fails_visibly(
    make_launchable, sender, sinch, settings, small_batches, capture
):
    from campaigns.dispatch import launching

    settings.LAUNCH_INLINE_RECIPIENTS = 0
    settings.LAUNCH_MAX_RESUMES = 2
    campaign = make_launchable()
    with capture(execute=False):
        launching.launch(campaign, sender)
        # Its worker died after sealing two batches, three times.
        freeze.freeze_recipients(campaign.pk)
    Campaign.objects.filter(pk=campaign.pk).update(status=S.LAUNCHING, launch_resumes=2)
    Batch.objects.filter(campaign=campaign, sequence=3).update(
        not_before=freeze.FILLING
    )
    expire_lease(campaign, settings)
    with capture(execute=True):
        assert launch_recovery.resume_stalled_launches() == 0
    campaign.refresh_from_db()
    assert campaign.status == S.FAILED
    assert campaign.status_reason.startswith("The launch failed after 2 resumes")
    assert "Batches already handed to Sinch stay sent" in campaign.status_reason
    # None had gone to Sinch yet: none ever will.
    assert set(
        Batch.objects.filter(campaign=campaign).values_list("status", flat=True)
    ) == {B.CANCELLED}


def test_a_fresh_launch_is_never_resumed_twice(
    make_launchable, sender, sinch, settings, capture
):
    from campaigns.dispatch import launching

    settings.LAUNCH_INLINE_RECIPIENTS = 0
    campaign = make_launchable()
    with capture(execute=False):
        launching.launch(campaign, sender)
    expire_lease(campaign, settings)
    with capture(execute=False):
        assert launch_recovery.resume_stalled_launches() == 1
        assert launch_recovery.resume_stalled_launches() == 0  # lease renewed


def test_an_inline_launch_taken_over_by_a_resume_leaves_the_resume_alone(
    make_launchable, sender, sinch, settings, monkeypatch, capture
):
    """A web request so slow that the tick thought it dead: the worker that
    resumed the launch owns it; the request's freeze stops, changing nothing."""
    from campaigns.dispatch import launching

    campaign = make_launchable()
    real = launch_recovery.renew_lease

    def taken_over(campaign_id, token):
        Campaign.objects.filter(pk=campaign_id).update(launch_owner="resumer")
        return real(campaign_id, token)

    monkeypatch.setattr(launch_recovery, "renew_lease", taken_over)
    with capture(execute=False):
        assert launching.launch(campaign, sender) is False
    campaign.refresh_from_db()
    assert campaign.status == S.LAUNCHING
    assert campaign.launch_owner == "resumer"  # untouched
    assert campaign.status_reason == ""
    assert not Recipient.objects.filter(campaign=campaign).exists()
