"""Launch, pause, resume and cancel from the admin; the campaign's dispatch state.

Only the Sender role launches, pauses and cancels; the pages say what will
happen before it happens, and the campaign page says what did: each batch
held here, scheduled at Sinch (with Sinch's rounded time), processed, failed
or cancelled, and after a cancel, the cancellation receipt. The views drive
the real launch and control code against a real simulator.
"""

import re
from datetime import timedelta
from zoneinfo import ZoneInfo

import pytest
from django.urls import reverse
from django.utils import timezone

from campaigns.authoring import presend
from campaigns.dispatch import freeze, launching
from campaigns.models import Batch, Campaign, Recipient
from contacts.models import AuditEvent, ConsentState

IN, OUT = ConsentState.OPTED_IN, ConsentState.OPTED_OUT
S, B = Campaign.Status, Batch.Status
CHANGELIST = reverse("admin:campaigns_campaign_changelist")


@pytest.fixture
def campaign(launchable_campaign):
    return launchable_campaign


def url(name: str, campaign: Campaign) -> str:
    return reverse(f"admin:campaigns_campaign_{name}", args=[campaign.pk])


def text(response) -> str:
    """The page's visible text, whitespace collapsed."""
    body = response.content.decode()
    body = re.sub(r"<(script|style)\b.*?</\1>", " ", body, flags=re.S)
    body = re.sub(r"</?(strong|em|a|span)\b[^>]*>", "", body)  # inline: no gap
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", body)).strip()


def send_at(campaign: Campaign, delta: timedelta, zone: str = "Europe/Berlin"):
    """Give the draft a send time `delta` from now, and check it again."""
    Campaign.objects.filter(pk=campaign.pk).update(
        send_at=timezone.now() + delta, send_time_zone=zone
    )
    campaign.refresh_from_db()
    presend.run_presend_check(campaign)
    campaign.refresh_from_db()
    return campaign


@pytest.fixture
def launched_held(campaign, launched_campaign, small_batches):
    """Launched with a send time 9 days out: batches held here, none at Sinch."""
    send_at(campaign, timedelta(days=9))
    launched_campaign(campaign, dispatch=False)
    assert campaign.status == S.SCHEDULED
    return campaign


# --- who may do what ---


@pytest.mark.parametrize("persona", ["viewer", "marketer", "compliance_admin"])
def test_only_a_sender_may_launch_pause_resume_or_cancel(
    client, request, persona, campaign
):
    user = request.getfixturevalue(persona)
    client.force_login(user)
    page = client.get(url("change", campaign))
    assert page.status_code == 200
    assert "Launch…" not in page.content.decode()
    assert url("launch", campaign) not in page.content.decode()
    for name in ("launch", "cancel"):
        assert client.get(url(name, campaign)).status_code == 403
    for name in ("launch", "pause", "resume", "cancel"):
        assert client.post(url(name, campaign)).status_code == 403
    campaign.refresh_from_db()
    assert campaign.status == S.DRAFT
    assert not Batch.objects.exists()
    assert not AuditEvent.objects.filter(
        action__in=("LAUNCH", "PAUSE", "RESUME", "CANCEL")
    ).exists()


def test_a_viewer_sees_the_dispatch_state_but_no_buttons(client, viewer, launched_held):
    client.force_login(viewer)
    page = text(client.get(url("change", launched_held)))
    assert "Dispatch" in page
    assert "3 held here" in page
    assert "Pause" not in page
    assert "Cancel the campaign" not in page


def test_a_sender_finds_launch_on_the_campaign_and_on_the_preview(
    client, sender, campaign
):
    client.force_login(sender)
    for name in ("change", "preview"):
        assert (
            url("launch", campaign) in client.get(url(name, campaign)).content.decode()
        )


# --- launch ---


def test_the_confirmation_shows_the_pre_send_summary_and_that_sinch_will_schedule_it(
    client, sender, campaign, sinch, control
):
    send_at(campaign, timedelta(hours=2))
    client.force_login(sender)
    response = client.get(url("launch", campaign))
    assert response.status_code == 200
    page = text(response)
    assert "Audience 8" in page
    assert "Will receive it 7" in page
    assert "Excluded (not sent) 1 — 1 \N{MULTIPLICATION SIGN} opted out" in page
    assert "Estimated delivery time" in page
    local = campaign.local_send_time
    assert f"{local:%Y-%m-%d %H:%M} Europe/Berlin" in page
    assert "scheduled at Sinch" in page
    assert "held here" not in page
    assert 'value="Launch to 7 recipients"' in response.content.decode()
    assert control.state()["batches"] == []  # a GET sends nothing
    assert Campaign.objects.get(pk=campaign.pk).status == S.DRAFT


def test_the_confirmation_says_a_send_time_beyond_a_week_is_held_here(
    client, sender, campaign
):
    send_at(campaign, timedelta(days=9), zone="America/New_York")
    client.force_login(sender)
    page = text(client.get(url("launch", campaign)))
    hold = freeze.hold_until(campaign).astimezone(ZoneInfo("America/New_York"))
    assert "held here" in page
    assert f"until {hold:%Y-%m-%d %H:%M} America/New_York" in page


def test_what_blocks_a_launch_is_listed_and_there_is_no_button(
    client, sender, campaign
):
    Campaign.objects.filter(pk=campaign.pk).update(presend=None, presend_at=None)
    client.force_login(sender)
    response = client.get(url("launch", campaign))
    page = text(response)
    assert "cannot be launched yet" in page
    assert "Run the pre-send check first." in page
    assert 'id="launch-button"' not in response.content.decode()

    # A POST anyway (a stale tab): a clear error, nothing changed.
    response = client.post(url("launch", campaign), follow=True)
    assert "The campaign was not launched: Run the pre-send check first." in text(
        response
    )
    campaign.refresh_from_db()
    assert (campaign.status, campaign.launched_at) == (S.DRAFT, None)
    assert not Batch.objects.exists()


def test_a_send_time_that_has_passed_blocks_the_launch(client, sender, campaign):
    send_at(campaign, timedelta(hours=1))
    Campaign.objects.filter(pk=campaign.pk).update(
        send_at=timezone.now() - timedelta(minutes=1)
    )
    client.force_login(sender)
    assert "The send time has passed" in text(client.get(url("launch", campaign)))


def test_a_sender_launches_now_and_a_double_submit_launches_once(
    client,
    sender,
    campaign,
    sinch,
    control,
    small_batches,
    django_capture_on_commit_callbacks,
):
    client.force_login(sender)
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(url("launch", campaign))
    assert response.status_code == 302
    assert response["Location"] == url("change", campaign)
    with django_capture_on_commit_callbacks(execute=True):
        again = client.post(url("launch", campaign), follow=True)
    assert "already launched by sandra" in text(again)
    assert "nothing more was done" in text(again)

    campaign.refresh_from_db()
    assert campaign.status == S.SUBMITTED
    assert campaign.launched_by == sender
    assert len(control.state()["batches"]) == 3
    assert Batch.objects.filter(campaign=campaign).count() == 3
    assert AuditEvent.objects.filter(action="LAUNCH").count() == 1

    page = text(client.get(url("change", campaign)))
    assert "Status Submitted" in page
    assert "by sandra" in page
    assert "3 accepted by Sinch (7 messages)" in page
    for batch in Batch.objects.filter(campaign=campaign):
        assert batch.sinch_batch_id in page
    assert "Handed to Sinch: 7" in page
    assert "Excluded: 1" in page
    assert "opted out: 1" in page
    assert "Hi ${first_name}, spring sale!" in page  # the frozen message
    assert "Launch…" not in page


def test_a_launch_that_loses_the_race_to_a_simultaneous_click_says_it_went_once(
    client, sender, campaign, monkeypatch, django_capture_on_commit_callbacks
):
    real_launch = launching.launch

    def other_click_first(stale, user):
        real_launch(Campaign.objects.get(pk=stale.pk), user)  # the other click
        return real_launch(stale, user)

    monkeypatch.setattr(launching, "launch", other_click_first)
    client.force_login(sender)
    with django_capture_on_commit_callbacks(execute=False):
        page = text(client.post(url("launch", campaign), follow=True))
    assert "already launched by sandra" in page
    assert "not launched" not in page
    assert AuditEvent.objects.filter(action="LAUNCH").count() == 1


# --- the batches on the campaign page ---


def test_each_batch_says_where_it_is_with_its_times_and_errors(
    client, viewer, campaign, sender
):
    Campaign.objects.filter(pk=campaign.pk).update(
        status=S.SUBMITTING,
        send_time_zone="Europe/Berlin",
        launched_at=timezone.now(),
        launched_by=sender,
    )
    now = timezone.now()
    at = now.replace(microsecond=0) + timedelta(hours=3)
    states = [
        dict(status=B.PENDING, not_before=now + timedelta(days=2)),
        dict(status=B.PENDING),
        dict(status=B.SUBMITTING, attempts=1),
        dict(status=B.UNCERTAIN, attempts=1, last_error="Outcome uncertain: timeout"),
        dict(status=B.ACCEPTED, sinch_batch_id="SCHED1", send_after=at, attempts=1),
        dict(status=B.ACCEPTED, sinch_batch_id="DONE1", remote_status="PROCESSED"),
        dict(status=B.FAILED, attempts=1, last_error="Sinch refused the batch: bad"),
        dict(status=B.CANCELLED),
        dict(status=B.CANCELLED, sinch_batch_id="GONE1"),
    ]
    for n, fields in enumerate(states, start=1):
        Batch.objects.create(
            campaign=campaign, sequence=n, size=10, metadata_key=f"k{n}", **fields
        )
    Batch.objects.create(  # a test send: not part of the campaign's batches
        campaign=campaign, sequence=1, is_test=True, size=2, metadata_key="t1"
    )
    client.force_login(viewer)
    response = client.get(url("change", campaign))
    rows = {
        int(m.group(1)): re.sub(r"<[^>]+>", "", m.group(2)).strip()
        for m in re.finditer(
            r"<tr class=\"batch-[a-z_]+\"><td>(\d+)</td><td class=\"batch-state\">"
            r"(.*?)</td>",
            response.content.decode(),
            flags=re.S,
        )
    }
    berlin = at.astimezone(ZoneInfo("Europe/Berlin"))
    assert rows[1].startswith("Held here until ")
    assert rows[2] == "Not submitted yet"
    assert rows[3] == "Being submitted"
    assert rows[4] == "Outcome uncertain"
    assert rows[
        5
    ] == f"Scheduled at Sinch for {berlin:%Y-%m-%d %H:%M} Europe/Berlin" + (
        f" ({at:%H:%M} UTC)"
    )
    assert rows[6] == "Processed by Sinch"
    assert rows[7] == "Failed"
    assert rows[8] == "Cancelled before submission"
    assert rows[9] == "Cancelled at Sinch"
    assert len(rows) == 9  # the test send is not among them
    page = text(response)
    assert "Sinch refused the batch: bad" in page
    assert "9 batches of at most 1000 recipients" in page
    for phrase in (
        "1 held here (10 messages)",
        "1 scheduled at Sinch (10 messages)",
        "1 failed (10 messages)",
        "1 cancelled at Sinch (10 messages)",
    ):
        assert phrase in page


def test_a_campaign_of_many_batches_shows_the_first_fifty_and_counts_the_rest(
    client, viewer, campaign
):
    Campaign.objects.filter(pk=campaign.pk).update(status=S.SUBMITTING)
    Batch.objects.bulk_create(
        Batch(campaign=campaign, sequence=n, size=1000, metadata_key=f"k{n}")
        for n in range(1, 121)
    )
    client.force_login(viewer)
    response = client.get(url("change", campaign))
    assert response.content.decode().count('<td class="batch-state">') == 50
    page = text(response)
    assert "120 not submitted yet (120000 messages)" in page
    assert "The first 50 are shown; 70 more." in page


def test_an_automatic_pause_shows_its_reason(client, sender, launched_held):
    Campaign.objects.filter(pk=launched_held.pk).update(
        status=S.PAUSED,
        status_reason="Paused automatically: 3 of the last 4 batch submissions "
        "failed (threshold 50%).",
    )
    client.force_login(sender)
    page = text(client.get(url("change", launched_held)))
    assert "Status Paused" in page
    assert "Why Paused automatically: 3 of the last 4 batch submissions" in page
    listing = text(client.get(CHANGELIST))
    assert "Paused automatically: 3 of the last 4" in listing
    assert "3 batches held here" in listing


# --- pause and resume ---


def test_a_sender_pauses_and_resumes_a_campaign(
    client, sender, launched_held, django_capture_on_commit_callbacks
):
    client.force_login(sender)
    page = client.get(url("change", launched_held)).content.decode()
    assert 'id="pause-button"' in page
    response = client.post(url("pause", launched_held), follow=True)
    assert "Paused: no further batch is submitted" in text(response)
    launched_held.refresh_from_db()
    assert launched_held.status == S.PAUSED
    assert launched_held.status_reason == "Paused by sandra."
    page = response.content.decode()
    assert 'id="resume-button"' in page
    assert 'id="pause-button"' not in page

    with django_capture_on_commit_callbacks(execute=False):
        response = client.post(url("resume", launched_held), follow=True)
    assert "Resumed: submission continues with the next batch" in text(response)
    launched_held.refresh_from_db()
    assert launched_held.status == S.SCHEDULED
    assert list(
        AuditEvent.objects.filter(action__in=("PAUSE", "RESUME"))
        .order_by("pk")
        .values_list("action", flat=True)
    ) == ["PAUSE", "RESUME"]


def test_pausing_a_campaign_that_is_not_dispatching_says_so(
    client, sender, launched_held
):
    Campaign.objects.filter(pk=launched_held.pk).update(status=S.SUBMITTED)
    client.force_login(sender)
    response = client.post(url("pause", launched_held), follow=True)
    assert "A submitted campaign cannot be paused; nothing was changed." in text(
        response
    )
    response = client.post(url("resume", launched_held), follow=True)
    assert "Only a paused campaign can be resumed." in text(response)
    assert Campaign.objects.get(pk=launched_held.pk).status == S.SUBMITTED


# --- cancel ---


def test_the_cancel_page_says_what_will_happen_and_the_receipt_what_did(
    client, sender, launched_held
):
    client.force_login(sender)
    response = client.get(url("cancel", launched_held))
    assert response.status_code == 200
    page = text(response)
    assert "3 held here 7 Never sent." in page
    assert "cannot be undone" in page
    assert Campaign.objects.get(pk=launched_held.pk).status == S.SCHEDULED

    response = client.post(url("cancel", launched_held), follow=True)
    page = text(response)
    assert "Cancelled “Spring”: 7 messages prevented, 0 already gone." in page
    assert "Cancellation receipt" in page
    assert (
        "7 messages prevented: 7 never submitted to Sinch, 0 cancelled at Sinch" in page
    )
    assert "0 messages had already gone" in page
    assert "3 cancelled before submission" in page
    assert "Cancel the campaign" not in page  # nothing left to cancel
    assert (
        Recipient.objects.filter(
            campaign=launched_held, status=Recipient.Status.CANCELLED
        ).count()
        == 7
    )
    assert AuditEvent.objects.filter(action="CANCEL").count() == 1


def test_batches_scheduled_at_sinch_are_cancelled_there_and_processed_ones_reported(
    client,
    sender,
    campaign,
    sinch,
    control,
    small_batches,
    django_capture_on_commit_callbacks,
):
    send_at(campaign, timedelta(hours=2))
    client.force_login(sender)
    with django_capture_on_commit_callbacks(execute=True):
        client.post(url("launch", campaign))
    assert {b["status"] for b in control.state()["batches"]} == {"SCHEDULED"}
    page = text(client.get(url("change", campaign)))
    assert "3 scheduled at Sinch (7 messages)" in page
    # One batch had gone already (as if its time had come): not cancellable.
    first = Batch.objects.get(campaign=campaign, sequence=1)
    Batch.objects.filter(pk=first.pk).update(send_after=timezone.now())

    page = text(client.get(url("cancel", campaign)))
    assert "2 scheduled at Sinch 4 Cancelled at Sinch" in page
    assert "1 already accepted by Sinch for sending 3 Not cancellable" in page

    page = text(client.post(url("cancel", campaign), follow=True))
    assert (
        "4 messages prevented: 0 never submitted to Sinch, 4 cancelled at Sinch" in page
    )
    assert "(2 batches, confirmed by Sinch)" in page
    assert "3 messages had already gone (1 batch Sinch had already processed" in page
    remote = {b["batch_id"]: b["status"] for b in control.state()["batches"]}
    for batch in Batch.objects.filter(campaign=campaign, sequence__gt=1):
        assert batch.status == B.CANCELLED
        assert remote[batch.sinch_batch_id] == "CANCELLED"


def test_a_cancelled_campaign_cannot_be_cancelled_again(client, sender, launched_held):
    client.force_login(sender)
    client.post(url("cancel", launched_held))
    assert "cannot be cancelled" in text(client.get(url("cancel", launched_held)))
    response = client.post(url("cancel", launched_held), follow=True)
    assert "A cancelled campaign cannot be cancelled. Nothing was changed." in text(
        response
    )
    assert AuditEvent.objects.filter(action="CANCEL").count() == 1


# --- the lists ---


def test_the_campaign_list_shows_and_filters_the_dispatch_state(
    client, viewer, campaign, launched_held
):
    client.force_login(viewer)
    page = text(client.get(CHANGELIST))
    assert "3 batches held here" in page
    held = text(client.get(CHANGELIST + "?batches=held"))
    assert "3 batches held here" in held
    assert "0 campaigns" not in held
    assert "Spring" not in text(client.get(CHANGELIST + "?batches=scheduled"))


def test_the_batches_of_a_campaign_are_listed_read_only(
    client, viewer, launched_held, make_campaign
):
    other = make_campaign(launched_held.template, name="Other")
    Batch.objects.create(campaign=other, sequence=1, metadata_key="other-1")
    client.force_login(viewer)
    batches = reverse("admin:campaigns_batch_changelist")
    response = client.get(f"{batches}?campaign__id__exact={launched_held.pk}")
    assert response.status_code == 200
    assert response.context["cl"].result_count == 3
    assert "Held here until" in text(response)
    batch = Batch.objects.filter(campaign=launched_held).first()
    change = client.get(reverse("admin:campaigns_batch_change", args=[batch.pk]))
    assert change.status_code == 200
    assert 'type="submit"' not in change.content.decode().split('id="batch_form"')[1]
    assert client.get(reverse("admin:campaigns_batch_add")).status_code == 403


def test_a_launched_campaign_cannot_be_deleted_from_the_admin(
    client, superuser, make_template, make_campaign
):
    template = make_template("Kept", "Hello")
    launched = make_campaign(template, name="Launched", status=S.SUBMITTED)
    draft = make_campaign(template, name="Draft")
    client.force_login(superuser)
    change = client.get(
        reverse("admin:campaigns_campaign_change", args=[launched.pk])
    ).content.decode()
    assert reverse("admin:campaigns_campaign_delete", args=[launched.pk]) not in change
    delete = reverse("admin:campaigns_campaign_delete", args=[launched.pk])
    assert client.post(delete, {"post": "yes"}).status_code == 403
    assert Campaign.objects.filter(pk=launched.pk).exists()
    delete_draft = reverse("admin:campaigns_campaign_delete", args=[draft.pk])
    assert client.post(delete_draft, {"post": "yes"}).status_code == 302
