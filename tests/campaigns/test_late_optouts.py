"""Late opt-outs and erasures: nobody who said no gets a batch scheduled at Sinch.

A campaign scheduled for later is handed to Sinch with send_after; someone
opts out (or is erased) afterwards. The tick cancels the batch at Sinch,
waits for Sinch to confirm (the simulator cancels asynchronously, like
Sinch: after `cancel_delay_s`, and silently not at all for a share
`cancel_failure_ratio`), then submits a replacement without them for the same
send time. "At Sinch" and "delivered" are what the simulator holds.
"""

import re
import time
from datetime import timedelta

import pytest
from django.utils import timezone

from campaigns import tasks
from campaigns.dispatch import cancellation, late_optouts
from campaigns.dispatch import control as controls
from campaigns.models import Batch, Campaign, Recipient
from campaigns.tracking import health, reconciliation
from contacts.models import ChannelIdentity
from contacts.services.consent import Evidence, record_consent
from contacts.services.erasure import erase_contact
from sinch import client as sinch_client
from sinch.transport import RetryPolicy
from tests.campaigns.test_health import check as health_check
from tests.campaigns.test_receipts import batch_status, inbound, process

S, B, R = Campaign.Status, Batch.Status, Recipient.Status
LEAVER = "+14155550003"  # one of the seven customers of make_launchable


@pytest.fixture
def scheduled(launched_campaign, sinch, django_capture_on_commit_callbacks):
    """A campaign to seven people, scheduled at Sinch two hours from now."""
    campaign = launched_campaign(send_at=timezone.now() + timedelta(hours=2))
    (batch,) = Batch.objects.filter(campaign=campaign)
    assert (batch.status, batch.remote_status) == (B.ACCEPTED, "SCHEDULED")
    return campaign


@pytest.fixture
def tick(django_capture_on_commit_callbacks):
    """The periodic tick, with what it queues on commit (a replacement's
    drain loop) run at once."""

    def run():
        with django_capture_on_commit_callbacks(execute=True):
            return tasks.tick()

    return run


def opt_out(number: str = LEAVER) -> None:
    record_consent(
        identity=ChannelIdentity.objects.get(identity=number),
        kind="OPT_OUT",
        purpose="MARKETING",
        source="INBOUND_KEYWORD",
        evidence=Evidence(wording="STOP"),
    )


def at_sinch(control) -> dict[str, str]:
    return {b["batch_id"]: b["status"] for b in control.state()["batches"]}


def delivered_to(control, campaign) -> set[str]:
    """Identities the simulator sent a message to once the send time came
    (waiting for one per person handed to Sinch, and a moment for strays)."""
    control.post("advance", seconds=3 * 3600)
    expected = Recipient.objects.filter(
        campaign=campaign, status__in=(R.SUBMITTED, R.PENDING)
    ).count()
    deadline = time.monotonic() + 10
    while len(control.state()["messages"]) < expected:
        assert time.monotonic() < deadline, "the simulator never sent them"
        time.sleep(0.05)
    time.sleep(0.3)
    return {"+" + m["identity"].lstrip("+") for m in control.state()["messages"]}


def page_text(response) -> str:
    html = response.content.decode()
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", html))


def test_an_opt_out_after_launch_cancels_the_batch_and_replaces_it_without_them(
    scheduled, control, tick
):
    (original,) = Batch.objects.filter(campaign=scheduled)
    opt_out()
    tick()
    original.refresh_from_db()
    assert original.status == B.CANCELLED
    assert original.replace_reason == "1 person opted out after launch"
    new = Batch.objects.get(replaces=original)
    assert (new.status, new.size, new.send_after) == (
        B.ACCEPTED,
        6,
        original.send_after,
    )
    assert new.metadata_key != original.metadata_key
    assert at_sinch(control) == {
        original.sinch_batch_id: "CANCELLED",
        new.sinch_batch_id: "SCHEDULED",
    }
    leaver = Recipient.objects.get(campaign=scheduled, identity=LEAVER)
    assert (leaver.status, leaver.reason, leaver.batch) == (
        R.EXCLUDED,
        "opted out after launch",
        None,
    )
    assert Campaign.objects.get(pk=scheduled.pk).status == S.SUBMITTED
    sent = delivered_to(control, scheduled)
    assert LEAVER not in sent
    assert len(sent) == 6


def test_an_erasure_after_launch_keeps_the_person_out_of_the_batch(
    scheduled, control, tick, compliance_admin
):
    contact = ChannelIdentity.objects.get(identity=LEAVER).contact
    erase_contact(contact=contact, actor=compliance_admin)
    tick()
    (original, new) = Batch.objects.filter(campaign=scheduled).order_by("sequence")
    assert new.replaces == original
    assert new.size == 6
    assert "erased" in original.replace_reason
    sent = delivered_to(control, scheduled)
    assert LEAVER not in sent
    assert len(sent) == 6


def test_the_replacement_waits_for_sinch_to_confirm_the_cancel(
    scheduled, control, tick, admin_client_for
):
    """Invariant 2: while Sinch still says SCHEDULED, nothing is resubmitted."""
    control.knobs(cancel_delay_s=600)
    opt_out()
    tick()
    (original,) = Batch.objects.filter(campaign=scheduled)
    assert original.status == B.ACCEPTED
    assert original.cancel_requested_at is not None
    assert at_sinch(control) == {original.sinch_batch_id: "SCHEDULED"}
    page = page_text(admin_client_for(scheduled))
    assert "Batch 1 being replaced: 1 person opted out after launch" in page
    assert "cancellation requested at Sinch, not yet confirmed" in page

    tick()  # still not confirmed: asked again, still nothing new
    assert len(at_sinch(control)) == 1
    control.post("advance", seconds=601)
    control.wait_for_batch(original.sinch_batch_id, "CANCELLED")
    tick()
    new = Batch.objects.get(replaces=original)
    assert at_sinch(control)[new.sinch_batch_id] == "SCHEDULED"
    page = page_text(admin_client_for(scheduled))
    assert "Batch 1 replaced by batch 2: 1 person opted out after launch" in page


def test_a_stop_reply_and_a_cancelled_callback_replace_the_batch(
    scheduled, control, tick, settings, django_capture_on_commit_callbacks
):
    settings.SINCH_CANCEL_CONFIRM_WAIT_S = 0
    control.knobs(cancel_delay_s=600)
    inbound("STOP", identity=LEAVER)
    process()
    tick()
    (original,) = Batch.objects.filter(campaign=scheduled)
    assert original.replace_reason == "1 person opted out after launch"
    control.post("advance", seconds=601)
    control.wait_for_batch(original.sinch_batch_id, "CANCELLED")
    # Sinch's batch status update says CANCELLED before any status read does.
    with django_capture_on_commit_callbacks(execute=True):
        batch_status(original, "CANCELLED")
        process()
    original.refresh_from_db()
    assert original.status == B.CANCELLED
    new = Batch.objects.get(replaces=original)
    assert (new.status, new.size) == (B.ACCEPTED, 6)
    assert at_sinch(control)[new.sinch_batch_id] == "SCHEDULED"


def test_a_cancel_that_sinch_silently_drops_is_asked_again(scheduled, control, tick):
    control.knobs(cancel_failure_ratio=1)
    opt_out()
    tick()
    (original,) = Batch.objects.filter(campaign=scheduled)
    assert original.status == B.ACCEPTED
    assert not Batch.objects.filter(replaces=original).exists()
    control.knobs(cancel_failure_ratio=0, cancel_delay_s=0)
    tick()  # read: still SCHEDULED, so asked again
    tick()  # read: CANCELLED, replaced
    assert Batch.objects.get(replaces=original).status == B.ACCEPTED
    sent = delivered_to(control, scheduled)
    assert LEAVER not in sent
    assert len(sent) == 6


@pytest.fixture
def quick_retries(sinch, monkeypatch):
    """The product's client, with quick retries (the faults come in series)."""
    client = sinch_client.get_sinch_client()
    monkeypatch.setattr(client.transport, "timeout", (2.0, 0.3))
    monkeypatch.setattr(
        client.transport,
        "retry",
        RetryPolicy(attempts=4, backoff_s=0.01, backoff_max_s=0.05),
    )
    return client


def test_a_cancel_meeting_500s_and_timeouts_is_retried_and_the_person_never_gets_it(
    scheduled, control, tick, quick_retries
):
    control.knobs(cancel_delay_s=0)
    opt_out()
    # Every attempt of the cancel and of the read after it fails: 500s, then
    # answers that come after the client gave up.
    faults = [{"status": 500}] * 4 + [{"timeout": True, "delay_s": 1.0}] * 4
    control.post("inject", responses=faults)
    tick()
    (original,) = Batch.objects.filter(campaign=scheduled)
    assert original.status == B.ACCEPTED
    assert original.cancel_requested_at is not None
    assert "Cancel at Sinch failed" in original.last_error
    assert at_sinch(control) == {original.sinch_batch_id: "SCHEDULED"}
    control.post("inject", responses=[{"status": 500}] * 4)  # the next read too
    tick()
    tick()  # read SCHEDULED, asked again
    tick()  # confirmed
    new = Batch.objects.get(replaces=original)
    assert new.status == B.ACCEPTED
    sent = delivered_to(control, scheduled)
    assert LEAVER not in sent
    assert len(sent) == 6


def test_when_sinch_never_confirms_in_time_the_page_and_health_say_so(
    scheduled, control, tick, admin_client_for, client, superuser
):
    control.knobs(cancel_failure_ratio=1)
    opt_out()
    tick()
    (original,) = Batch.objects.filter(campaign=scheduled)
    # The send time comes before Sinch ever confirmed.
    Batch.objects.filter(pk=original.pk).update(
        send_after=timezone.now() - timedelta(seconds=1)
    )
    tick()
    original.refresh_from_db()
    assert original.last_error.startswith(cancellation.NOT_IN_TIME)
    assert "1 person opted out after launch" in original.last_error
    assert not Batch.objects.filter(replaces=original).exists()
    leaver = Recipient.objects.get(campaign=scheduled, identity=LEAVER)
    assert leaver.status == R.SUBMITTED  # honest: it went to Sinch
    assert "sent anyway" in leaver.reason
    page = page_text(admin_client_for(scheduled))
    assert (
        "Batch 1 (7 messages) was sent as scheduled: Sinch did not confirm its "
        "cancellation before the send time, with 1 person opted out after launch."
        in page
    )
    (check,) = [c for c in health.checks() if c.key == "cancels"]
    assert check.level == health.BAD
    assert "1 not confirmed before the send time" in check.value
    client.force_login(superuser)
    row = health_check(client.get("/admin/health/"), "cancels")
    assert row["level"] == health.BAD
    assert "sent: not confirmed in time" in row["text"]


def test_a_cancelled_campaign_never_says_already_gone_before_the_send_time(
    scheduled, control, sender, settings
):
    settings.SINCH_CANCEL_CONFIRM_WAIT_S = 0
    control.knobs(cancel_failure_ratio=1)
    receipt = controls.cancel(scheduled, sender)
    assert receipt["already_sent"] == 0
    assert (receipt["cancel_requested"], receipt["batches_cancel_requested"]) == (7, 1)
    assert receipt["prevented"] == 0
    (batch,) = Batch.objects.filter(campaign=scheduled)
    assert batch.status == B.ACCEPTED


def test_a_cancelled_status_from_a_list_read_settles_the_batch_and_the_receipt(
    scheduled, control, sender, settings
):
    settings.SINCH_CANCEL_CONFIRM_WAIT_S = 0
    receipt = controls.cancel(scheduled, sender)
    assert receipt["cancel_requested"] == 7
    (batch,) = Batch.objects.filter(campaign=scheduled)
    control.wait_for_batch(batch.sinch_batch_id, "CANCELLED")
    # Silent long enough to be read (its send time is ahead: pretend later).
    reconciliation.read_silent_batches(timezone.now() + timedelta(hours=3))
    batch.refresh_from_db()
    assert batch.status == B.CANCELLED
    assert set(
        Recipient.objects.filter(campaign=scheduled).values_list("status", flat=True)
    ) == {R.CANCELLED, R.EXCLUDED}
    receipt = Campaign.objects.get(pk=scheduled.pk).cancel_receipt
    assert (receipt["prevented"], receipt["cancel_requested"]) == (7, 0)


@pytest.mark.parametrize(("ahead_hours", "status"), [(24, B.PENDING), (48, B.ACCEPTED)])
def test_batches_are_handed_to_sinch_only_within_the_configured_horizon(
    launched_campaign, sinch, control, settings, ahead_hours, status
):
    settings.SINCH_SCHEDULE_AHEAD_HOURS = ahead_hours
    campaign = launched_campaign(send_at=timezone.now() + timedelta(hours=30))
    assert Batch.objects.get(campaign=campaign).status == status
    assert len(control.state()["batches"]) == (status == B.ACCEPTED)


def test_only_batches_holding_someone_who_left_are_replaced(scheduled, control):
    assert late_optouts.replace_late_optouts() == {
        "scheduled": 1,
        "checked": 1,
        "being_replaced": 0,
    }
    assert len(at_sinch(control)) == 1


@pytest.fixture
def checked_once(scheduled, monkeypatch):
    """The tick has checked the scheduled batch once; changes count from then
    (no clock margin, so that what the fixtures wrote a moment ago is older)."""
    monkeypatch.setattr(late_optouts, "CLOCK_MARGIN", timedelta(0))
    late_optouts.replace_late_optouts()
    return scheduled


def test_a_scheduled_batch_nobody_in_it_changed_since_is_not_read_again(
    checked_once, control, make_audience
):
    # Someone on another list opts out: not in the batch, nothing to re-check.
    make_audience("Others", 1, phone="+1650555{:04d}")
    opt_out("+16505550000")
    assert late_optouts.replace_late_optouts() == {
        "scheduled": 1,
        "checked": 0,
        "being_replaced": 0,
    }
    assert at_sinch(control) == {
        Batch.objects.get(campaign=checked_once).sinch_batch_id: "SCHEDULED"
    }


def test_an_opt_out_long_after_the_last_check_still_replaces_the_batch(
    checked_once, control, tick
):
    opt_out()
    tick()
    assert Batch.objects.filter(campaign=checked_once).count() == 2
    leaver = Recipient.objects.get(campaign=checked_once, identity=LEAVER)
    assert (leaver.status, leaver.reason) == (R.EXCLUDED, "opted out after launch")
    assert LEAVER not in delivered_to(control, checked_once)


def test_a_replaced_number_after_the_last_check_is_found(checked_once, control, sender):
    from contacts.services.identities import replace_identity

    replace_identity(
        ChannelIdentity.objects.get(identity=LEAVER), "+14155558888", actor=sender
    )
    result = late_optouts.replace_late_optouts()
    assert (result["checked"], result["being_replaced"]) == (1, 1)


def test_any_erasure_after_the_last_check_makes_every_batch_be_read_again(
    checked_once, control, make_audience, compliance_admin
):
    # The erased person's number may be someone else's too: only a full
    # re-check can find it, so one is made; nobody in the batch is dropped.
    (other,) = make_audience("Others", 1, phone="+1650555{:04d}").contacts.all()
    erase_contact(contact=other, actor=compliance_admin)
    assert late_optouts.replace_late_optouts() == {
        "scheduled": 1,
        "checked": 1,
        "being_replaced": 0,
    }


def test_the_launch_page_says_what_really_happens(client, sender, launchable_campaign):
    launchable_campaign.send_at = timezone.now() + timedelta(hours=2)
    launchable_campaign.save()
    client.force_login(sender)
    page = page_text(
        client.get(f"/admin/campaigns/campaign/{launchable_campaign.pk}/launch/")
    )
    assert "once more just before each batch is handed to Sinch" in page
    assert "cancelled at Sinch and, once Sinch confirms the cancellation, replaced" in (
        page
    )
    assert "An opt-out at least 10 minutes before the send time is honoured" in page


@pytest.fixture
def admin_client_for(client, sender):
    """The campaign page as the Sender sees it."""
    client.force_login(sender)
    return lambda campaign: client.get(
        f"/admin/campaigns/campaign/{campaign.pk}/change/"
    )
