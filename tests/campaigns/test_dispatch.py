"""Launch and dispatch against the simulator: exactly once, never without consent."""

import time
from datetime import timedelta

import pytest
from django.utils import timezone

from campaigns import tasks
from campaigns.authoring import presend
from campaigns.dispatch import control as controls
from campaigns.dispatch import drain, freeze, launching
from campaigns.models import Batch, Campaign, Recipient
from contacts.models import AuditEvent, ConsentState
from contacts.services.consent import Evidence, record_opt_out_for_contacts

IN, OUT = ConsentState.OPTED_IN, ConsentState.OPTED_OUT
S, B = Campaign.Status, Batch.Status


@pytest.fixture
def campaign(launchable_campaign):
    return launchable_campaign


def _sent(control) -> list[dict]:
    return control.state()["batches"]


def test_a_launch_freezes_the_recipients_and_submits_each_batch_once(
    campaign, sender, sinch, control, small_batches, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        launching.launch(campaign, sender)
    campaign.refresh_from_db()
    assert campaign.status == S.SUBMITTED
    batches = list(Batch.objects.filter(campaign=campaign).order_by("sequence"))
    assert [b.size for b in batches] == [3, 3, 1]
    assert {b.status for b in batches} == {B.ACCEPTED}
    at_sinch = _sent(control)
    assert len(at_sinch) == 3
    assert {b["batch_id"] for b in at_sinch} == {b.sinch_batch_id for b in batches}
    olga = Recipient.objects.get(campaign=campaign, contact__first_name="Olga")
    assert (olga.status, olga.reason) == (Recipient.Status.EXCLUDED, "opted out")
    assert (
        Recipient.objects.filter(
            campaign=campaign, status=Recipient.Status.SUBMITTED
        ).count()
        == 7
    )
    assert AuditEvent.objects.filter(action=AuditEvent.Action.LAUNCH).count() == 1


def test_an_opt_out_after_launch_is_excluded_from_every_batch_not_yet_submitted(
    campaign, sender, sinch, control, small_batches, launched_campaign
):
    launched_campaign(campaign, dispatch=False)  # frozen; dispatch not started yet
    late = (
        Recipient.objects.filter(campaign=campaign, status=Recipient.Status.PENDING)
        .order_by("batch__sequence", "index")
        .last()
    )
    record_opt_out_for_contacts(
        contacts=[late.contact_id],
        purposes=["MARKETING"],
        evidence=Evidence(wording="Asked by phone"),
        actor=sender,
    )
    drain.run_dispatcher(campaign.pk)
    late.refresh_from_db()
    assert (late.status, late.reason) == (
        Recipient.Status.EXCLUDED,
        "opted out after launch",
    )
    assert control.state()["counters"]["recipients_accepted"] == 6
    # Sinch makes the messages once it processes the batches: wait for them.
    deadline = time.monotonic() + 5
    while len(messages := control.state()["messages"]) < 6:
        assert time.monotonic() < deadline, messages
        time.sleep(0.02)
    assert len(messages) == 6
    assert late.identity not in {m["identity"] for m in messages}


def test_a_send_time_within_a_week_is_scheduled_at_sinch_with_its_rounded_time(
    campaign, sender, sinch, control, django_capture_on_commit_callbacks
):
    campaign.send_at = timezone.now() + timedelta(hours=2, minutes=1)
    campaign.send_time_zone = "Europe/Berlin"
    Campaign.objects.filter(pk=campaign.pk).update(
        send_at=campaign.send_at, send_time_zone="Europe/Berlin"
    )
    presend.run_presend_check(campaign)
    campaign.refresh_from_db()
    with django_capture_on_commit_callbacks(execute=True):
        launching.launch(campaign, sender)
    batch = Batch.objects.get(campaign=campaign)
    assert batch.status == B.ACCEPTED
    assert batch.remote_status == "SCHEDULED"
    assert batch.send_after >= campaign.send_at
    assert batch.send_after.minute % 5 == 0


def test_a_send_time_beyond_sinchs_horizon_is_held_here(
    campaign, sender, sinch, control, django_capture_on_commit_callbacks
):
    send_at = timezone.now() + timedelta(days=9)
    Campaign.objects.filter(pk=campaign.pk).update(send_at=send_at)
    presend.run_presend_check(campaign)
    campaign.refresh_from_db()
    with django_capture_on_commit_callbacks(execute=True):
        launching.launch(campaign, sender)
    campaign.refresh_from_db()
    assert campaign.status == S.SCHEDULED
    batch = Batch.objects.get(campaign=campaign)
    assert batch.status == B.PENDING
    assert batch.not_before == send_at - freeze.schedule_horizon()
    assert _sent(control) == []
    tasks.tick()  # nothing is due yet
    assert _sent(control) == []


def test_cancel_prevents_unsubmitted_batches_and_reports_the_receipt(
    campaign, sender, sinch, control, small_batches, launched_campaign
):
    launched_campaign(campaign, dispatch=False)
    receipt = controls.cancel(campaign, sender)
    assert receipt["prevented"] == 7
    assert receipt["already_sent"] == 0
    drain.run_dispatcher(campaign.pk)
    assert _sent(control) == []


def test_erasing_a_contact_forgets_their_number_and_values_in_every_campaign(
    campaign, compliance_admin, sinch, launched_campaign
):
    from contacts.services.erasure import erase_contact

    launched_campaign(campaign)
    recipient = Recipient.objects.filter(
        campaign=campaign, status=Recipient.Status.SUBMITTED
    ).first()
    number = recipient.identity
    assert recipient.parameters
    erase_contact(contact=recipient.contact, actor=compliance_admin)
    recipient.refresh_from_db()
    assert recipient.identity.startswith("erased:")
    assert number not in recipient.identity
    assert recipient.parameters == {}
    assert recipient.status == Recipient.Status.SUBMITTED  # the figures stay


@pytest.fixture
def big_campaign(make_template, make_campaign, make_contact, make_list):
    """20 opted-in people and 2 opted-out ones, checked and ready to launch."""
    template = make_template("Big", "Hi ${first_name}!")
    customers = make_list("Many customers")
    for n in range(22):  # the two who opted out among the others, not last
        make_contact(
            f"+1415666{n:04d}", consent=OUT if n in (5, 17) else IN, lists=[customers]
        )
    return make_campaign(template, [customers], "Big", checked=True)


def test_batches_go_out_while_the_launch_is_still_freezing(
    big_campaign, sender, sinch, small_batches, settings, monkeypatch
):
    settings.LAUNCH_INLINE_RECIPIENTS = 0  # the freeze is a worker's task
    launching.launch(big_campaign, sender)
    seen = []

    def start(campaign_id, loops=None):
        frozen = Recipient.objects.filter(campaign_id=campaign_id).count()
        sealed = Batch.objects.filter(campaign_id=campaign_id).exclude(
            not_before=freeze.FILLING
        )
        status = Campaign.objects.get(pk=campaign_id).status
        seen.append((status, frozen, sealed.count()))
        drain.run_dispatcher(campaign_id)  # a worker picks it up at once

    monkeypatch.setattr(drain, "start", start)
    freeze.freeze_recipients(big_campaign.pk, chunk_size=4)
    status, frozen, sealed = seen[0]
    assert status == S.LAUNCHING
    assert 0 < frozen < 22  # started long before the last member was frozen
    assert sealed >= 1
    # The early loop submitted what was sealed; the final one the rest, once each.
    batches = Batch.objects.filter(campaign=big_campaign)
    assert batches.count() == 7  # 20 people in batches of 3
    assert set(batches.values_list("status", flat=True)) == {B.ACCEPTED}
    assert sum(batches.values_list("size", flat=True)) == 20


def test_a_launch_whose_worker_died_resumes_without_sending_anyone_twice(
    big_campaign, sender, sinch, control, small_batches, settings, freeze_killed_mid_way
):
    settings.LAUNCH_INLINE_RECIPIENTS = 0
    launching.launch(big_campaign, sender)
    freeze_killed_mid_way(big_campaign.pk, chunk_size=4)
    # Meanwhile a drain loop submitted the batches sealed before the crash.
    drain.run_dispatcher(big_campaign.pk)
    sent_before = control.state()["counters"]["recipients_accepted"]
    assert 0 < sent_before < 20
    freeze.freeze_recipients(big_campaign.pk, chunk_size=4)  # the task again
    drain.run_dispatcher(big_campaign.pk)

    recipients = Recipient.objects.filter(campaign=big_campaign)
    assert recipients.count() == 22  # everyone once, sent or excluded
    assert recipients.filter(status=Recipient.Status.SUBMITTED).count() == 20
    assert recipients.filter(status=Recipient.Status.EXCLUDED).count() == 2
    # Sinch accepted 20 recipients in all: nobody twice, nobody lost.
    assert control.state()["counters"]["recipients_accepted"] == 20
    sequences = list(
        Batch.objects.filter(campaign=big_campaign).values_list("sequence", flat=True)
    )
    assert len(sequences) == len(set(sequences))
    big_campaign.refresh_from_db()
    assert big_campaign.status == S.SUBMITTED


@pytest.mark.django_db(transaction=True)
def test_queueing_the_drain_loops_mid_launch_may_close_the_connection(
    make_audience,
    make_template,
    make_campaign,
    sender,
    small_batches,
    settings,
    monkeypatch,
):
    """django-q2's ORM broker closes the connection when it queues a task; the
    launch queues the drain loops after its first sealed batch and must go on.
    (SQLite's in-memory test database ignores closes: this bites on PostgreSQL.)"""
    from django.db import connection

    template = make_template("Close", "Hi ${first_name}")
    customers = make_audience("Close customers", 10, phone="+1415777{:04d}")
    campaign = make_campaign(template, [customers], "Close", checked=True)
    settings.LAUNCH_INLINE_RECIPIENTS = 0
    monkeypatch.setattr(launching, "async_task", lambda *a, **k: None)  # no worker
    launching.launch(campaign, sender)
    calls = []

    def queue_drain_loops(*args, **kwargs):
        calls.append(1)
        connection.close()

    monkeypatch.setattr(drain, "start", queue_drain_loops)
    freeze.freeze_recipients(campaign.pk, chunk_size=2)
    assert Recipient.objects.filter(campaign=campaign).count() == 10
    assert Batch.objects.filter(campaign=campaign).count() == 4
    assert len(calls) == 2  # early, with the first sealed batch, and at the end
