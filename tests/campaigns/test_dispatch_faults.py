"""Dispatch under faults, against the simulator and its fault knobs.

Each test is one rule of issue 5 in the user's words: a batch is never sent
twice, never sent without being due, and never lost. "At Sinch" is what the
simulator holds (its /_simulator/state), counted by our batch metadata key.
"""

import os
import random
import threading
from datetime import timedelta

import pytest
from django.db import connections
from django.urls import reverse
from django.utils import timezone
from django_q.models import Schedule
from django_q.scheduler import scheduler

from campaigns import tasks, transitions
from campaigns.dispatch import (
    batch_request,
    drain,
    in_flight,
    launching,
    ratelimit,
    settlement,
)
from campaigns.dispatch import control as controls
from campaigns.models import Batch, Campaign, Recipient
from contacts.models import AuditEvent
from sinch import client as sinch_client
from sinch import wire

S, B, R = Campaign.Status, Batch.Status, Recipient.Status


@pytest.fixture
def make_spring(make_launchable):
    """A checked campaign to 7 opted-in contacts (and one who opted out)."""

    def make(send_at=None) -> Campaign:
        return make_launchable(
            list_name="Customers of Spring",
            opted_out=["+14155559999"],
            send_at=send_at,
        )

    return make


@pytest.fixture
def campaign(make_spring):
    return make_spring()


@pytest.fixture
def capture(django_capture_on_commit_callbacks):
    return django_capture_on_commit_callbacks


@pytest.fixture
def client(sinch):
    """The product's client, as dispatch uses it (cached per process)."""
    return sinch_client.get_sinch_client()


def batches(campaign) -> list[Batch]:
    return list(Batch.objects.filter(campaign=campaign).order_by("sequence"))


def at_sinch(control) -> list[str]:
    """Our batch keys of every batch the simulator accepted, in arrival order."""
    return [
        b["meta_data"].get(batch_request.BATCH_KEY) for b in control.state()["batches"]
    ]


def remote_statuses(control) -> dict[str, str]:
    return {
        b["meta_data"].get(batch_request.BATCH_KEY): b["status"]
        for b in control.state()["batches"]
    }


def keys(batch_list) -> list[str]:
    return [b.metadata_key for b in batch_list]


def refuse_app_for(monkeypatch, client, refused: set[str]) -> None:
    """Batches whose key is in `refused` go out with an app id Sinch does not
    know, so Sinch answers them 400; the others go out as usual."""
    send = client.send_batch

    def send_batch(request):
        if request.batch_metadata.get(batch_request.BATCH_KEY) not in refused:
            return send(request)
        real = client.app_id
        client.app_id = "not-our-app"
        try:
            return send(request)
        finally:
            client.app_id = real

    monkeypatch.setattr(client, "send_batch", send_batch)


def backdate(batch: Batch, **fields) -> None:
    Batch.objects.filter(pk=batch.pk).update(**fields)


def ago(seconds: float):
    return timezone.now() - timedelta(seconds=seconds)


# --- 429 ----------------------------------------------------------------------


def test_a_short_retry_after_is_waited_out_then_the_batch_is_sent_once(
    campaign, client, control, small_batches, monkeypatch, launched_campaign
):
    launched_campaign(campaign, dispatch=False)
    waits = []

    def sleep(seconds):  # the client's wait, recorded instead of slept
        waits.append((seconds, control.state()["counters"].get("api_calls", 0)))

    monkeypatch.setattr(client.transport, "_sleep", sleep)
    control.post("inject", responses=[{"status": 429, "retry_after": 7}])
    drain.run_dispatcher(campaign.pk)
    # One call answered 429, then a wait of Retry-After, and only then the resend.
    assert waits == [(7.0, 1)]
    assert at_sinch(control) == keys(batches(campaign))
    first = batches(campaign)[0]
    assert (first.status, first.attempts) == (B.ACCEPTED, 1)


def test_a_long_retry_after_puts_the_batch_back_until_then(
    campaign, client, control, launched_campaign
):
    launched_campaign(campaign, dispatch=False)
    control.post("inject", responses=[{"status": 429, "retry_after": 600}])
    drain.run_dispatcher(campaign.pk)
    (batch,) = batches(campaign)
    assert batch.status == B.PENDING
    assert abs((batch.not_before - timezone.now()).total_seconds() - 600) < 5
    assert "rate limited" in batch.last_error
    assert batch.attempts == 0  # a 429 is not an attempt: Sinch did nothing
    drain.run_dispatcher(campaign.pk)  # not due yet: not resubmitted
    assert at_sinch(control) == []
    backdate(batch, not_before=ago(1))  # Retry-After has passed
    drain.run_dispatcher(campaign.pk)
    batch.refresh_from_db()
    assert batch.status == B.ACCEPTED
    assert at_sinch(control) == [batch.metadata_key]
    assert Campaign.objects.get(pk=campaign.pk).status == S.SUBMITTED


# --- uncertain outcomes --------------------------------------------------------


def test_a_timeout_on_send_is_reconciled_by_metadata_and_never_resent(
    campaign, client, control, monkeypatch, launched_campaign
):
    launched_campaign(campaign, dispatch=False)
    monkeypatch.setattr(client.transport, "timeout", (2.0, 0.3))
    # Sinch processes the batch but answers after the client gave up.
    control.knobs(timeout_ratio=1, timeout_s=1)
    drain.run_dispatcher(campaign.pk)
    (batch,) = batches(campaign)
    assert batch.status == B.UNCERTAIN
    assert batch.last_error.startswith("Outcome uncertain")
    control.knobs(timeout_ratio=0)
    drain.run_dispatcher(campaign.pk)  # reconciles first: found at Sinch
    batch.refresh_from_db()
    (remote,) = control.state()["batches"]
    assert batch.status == B.ACCEPTED
    assert batch.sinch_batch_id == remote["batch_id"]
    assert batch.attempts == 1
    assert (
        Recipient.objects.filter(batch=batch, status=R.SUBMITTED).count()
        == batch.size
        == 7
    )
    assert control.state()["counters"]["batches_accepted"] == 1
    assert Campaign.objects.get(pk=campaign.pk).status == S.SUBMITTED


def test_a_500_on_send_waits_the_grace_period_then_is_sent_once(
    campaign, client, control, settings, launched_campaign
):
    settings.DISPATCH_UNCERTAIN_GRACE_S = 120
    launched_campaign(campaign, dispatch=False)
    control.post("inject", responses=[{"status": 500}])  # Sinch never stored it
    drain.run_dispatcher(campaign.pk)
    (batch,) = batches(campaign)
    assert batch.status == B.UNCERTAIN
    # Looked up at Sinch, not found, but within the grace: not resent.
    assert settlement.settle_uncertain_batches(campaign.pk)["waiting"] == 1
    drain.run_dispatcher(campaign.pk)
    batch.refresh_from_db()
    assert batch.status == B.UNCERTAIN
    assert at_sinch(control) == []
    backdate(batch, uncertain_since=ago(121))
    drain.run_dispatcher(campaign.pk)  # reconcile -> PENDING -> sent
    batch.refresh_from_db()
    # The 500 was Sinch's outage, not a dying worker: its attempt was given
    # back, so the budget counts only the resend.
    assert (batch.status, batch.attempts) == (B.ACCEPTED, 1)
    assert at_sinch(control) == [batch.metadata_key]
    settlement.settle_uncertain_batches()
    drain.run_dispatcher(campaign.pk)
    assert at_sinch(control) == [batch.metadata_key]


def test_a_batch_left_uncertain_by_hand_is_resent_once_after_the_grace(
    campaign, client, control, settings, launched_campaign
):
    settings.DISPATCH_UNCERTAIN_GRACE_S = 120
    launched_campaign(campaign, dispatch=False)
    batch = drain.claim_next(campaign.pk)  # its worker died before the call
    Batch.objects.filter(pk=batch.pk).update(status=B.UNCERTAIN)
    drain.run_dispatcher(campaign.pk)
    batch.refresh_from_db()
    assert batch.status == B.UNCERTAIN
    assert batch.uncertain_since is not None  # the grace starts now
    assert at_sinch(control) == []
    backdate(batch, uncertain_since=ago(121))
    drain.run_dispatcher(campaign.pk)
    drain.run_dispatcher(campaign.pk)
    batch.refresh_from_db()
    assert batch.status == B.ACCEPTED
    assert at_sinch(control) == [batch.metadata_key]


def test_a_worker_that_died_mid_claim_is_reconciled_after_the_lease(
    campaign, client, control, settings, launched_campaign
):
    settings.DISPATCH_CLAIM_LEASE_S = 60
    launched_campaign(campaign, dispatch=False)
    batch = drain.claim_next(campaign.pk)
    # The claim is fresh: another loop does not touch it.
    drain.run_dispatcher(campaign.pk)
    assert Batch.objects.get(pk=batch.pk).status == B.SUBMITTING
    backdate(batch, claimed_at=ago(61))
    assert settlement.settle_uncertain_batches(campaign.pk)["stale"] == 1
    batch.refresh_from_db()
    assert batch.status == B.UNCERTAIN
    assert at_sinch(control) == []


def test_a_batch_names_the_machine_whose_submission_counts(
    campaign, client, control, settings, launched_campaign, admin_client
):
    # Two machines share the work; machine A claims the batch and dies
    # before calling Sinch. After the lease and the grace, machine B sends it.
    settings.DISPATCH_CLAIM_LEASE_S = 60
    settings.DISPATCH_UNCERTAIN_GRACE_S = 120
    settings.WORKER_NAME = "machine-a"
    launched_campaign(campaign, dispatch=False)
    batch = drain.claim_next(campaign.pk)
    assert batch.claimed_by == f"machine-a:{os.getpid()}"
    backdate(batch, claimed_at=ago(61))
    settlement.settle_uncertain_batches(campaign.pk)  # looked up: not at Sinch
    backdate(batch, uncertain_since=ago(121))

    settings.WORKER_NAME = "machine-b"
    drain.run_dispatcher(campaign.pk)
    batch.refresh_from_db()
    assert (batch.status, batch.claimed_by) == (B.ACCEPTED, f"machine-b:{os.getpid()}")
    assert at_sinch(control) == [batch.metadata_key]
    # The batch's admin page says so.
    page = admin_client.get(reverse("admin:campaigns_batch_change", args=[batch.pk]))
    assert f"machine-b:{os.getpid()}" in page.content.decode()


# --- 400 ------------------------------------------------------------------------


def test_a_refused_batch_fails_with_sinchs_message_and_the_others_go_on(
    campaign, client, control, small_batches, monkeypatch, launched_campaign
):
    launched_campaign(campaign, dispatch=False)
    first, second, third = batches(campaign)
    refuse_app_for(monkeypatch, client, {second.metadata_key})
    drain.run_dispatcher(campaign.pk)
    second.refresh_from_db()
    assert second.status == B.FAILED
    assert "Unknown app 'not-our-app'" in second.last_error
    assert "HTTP 400" in second.last_error
    failed = Recipient.objects.filter(batch=second)
    assert {r.status for r in failed} == {R.FAILED}
    assert all("Unknown app" in r.reason for r in failed)
    assert [b.status for b in batches(campaign)] == [B.ACCEPTED, B.FAILED, B.ACCEPTED]
    assert at_sinch(control) == [first.metadata_key, third.metadata_key]
    assert Campaign.objects.get(pk=campaign.pk).status == S.SUBMITTED


# --- two workers ------------------------------------------------------------------


def test_two_workers_claiming_the_same_batch_submit_it_once(
    campaign, client, control, monkeypatch, launched_campaign
):
    """Worker A reads the due batch, worker B claims it before A's claim
    lands: A's conditional update changes nothing and A gets no batch."""
    launched_campaign(campaign, dispatch=False)
    got = {}

    def worker_b_claims_first(batch_id):
        # claim_next's seam: after reading the candidates, before claiming.
        if "b" not in got:
            got["b"] = None
            got["b"] = drain.claim_next(campaign.pk)  # worker B, meanwhile

    with monkeypatch.context() as patch:
        patch.setattr(drain, "before_claim", worker_b_claims_first)
        got["a"] = drain.claim_next(campaign.pk)
    (batch,) = batches(campaign)
    assert got["a"] is None
    assert got["b"].pk == batch.pk
    assert batch.attempts == 1
    context = drain.SubmitContext(got["b"].campaign)
    drain.submit(got["b"], context)
    drain.run_dispatcher(campaign.pk)  # worker A's next round
    assert at_sinch(control) == [batch.metadata_key]


def _threads(target, count=2):
    errors = []

    def run(n):
        try:
            target(n)
        except Exception as exc:  # reported by the test
            errors.append(exc)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=run, args=(n,)) for n in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert not errors, errors


def test_two_drain_loops_racing_post_every_batch_exactly_once(
    transactional_db, make_spring, sender, client, control, monkeypatch
):
    """Two threads, two connections: both read the same due batches and both
    try to claim the first one at the same moment; then they race freely."""
    monkeypatch.setattr(wire, "MAX_RECIPIENTS", 1)
    monkeypatch.setattr(drain, "start", lambda *a, **k: None)
    campaign = make_spring()
    launching.launch(campaign, sender)  # 7 batches of 1; drain loops held
    barrier, local = threading.Barrier(2), threading.local()

    def claim_in_step(batch_id):  # each worker's first claim waits for the other's
        if not getattr(local, "stepped", False):
            local.stepped = True
            barrier.wait(5)

    monkeypatch.setattr(drain, "before_claim", claim_in_step)
    _threads(lambda n: drain.run_dispatcher(campaign.pk))
    assert sorted(at_sinch(control)) == sorted(keys(batches(campaign)))
    counters = control.state()["counters"]
    assert counters["batches_accepted"] == counters["api_calls"] == 7  # 7 POSTs
    assert {(b.status, b.attempts) for b in batches(campaign)} == {(B.ACCEPTED, 1)}


def test_two_drain_loops_over_one_campaign_post_every_batch_once(
    campaign, client, control, monkeypatch, launched_campaign
):
    """Two loops interleaved on one connection: loop B runs whole while loop A
    is between two of its batches."""
    monkeypatch.setattr(wire, "MAX_RECIPIENTS", 1)
    launched_campaign(campaign, dispatch=False)
    submit, nested = drain.submit, []

    def submit_then_other_loop(batch, context):
        outcome = submit(batch, context)
        if not nested:
            nested.append(drain.run_dispatcher(campaign.pk))  # loop B
        return outcome

    monkeypatch.setattr(drain, "submit", submit_then_other_loop)
    drain.run_dispatcher(campaign.pk)  # loop A
    assert sorted(at_sinch(control)) == sorted(keys(batches(campaign)))
    counters = control.state()["counters"]
    assert counters["batches_accepted"] == counters["api_calls"] == 7  # 7 POSTs
    assert {(b.status, b.attempts) for b in batches(campaign)} == {(B.ACCEPTED, 1)}


# --- cancel in every batch state ---------------------------------------------------


def test_cancel_before_any_submission_sends_nothing(
    campaign, sender, client, control, small_batches, launched_campaign
):
    launched_campaign(campaign, dispatch=False)
    receipt = controls.cancel(campaign, sender)
    assert receipt["prevented"] == receipt["never_submitted"] == 7
    assert receipt["already_sent"] == receipt["cancelled_at_sinch"] == 0
    assert {b.status for b in batches(campaign)} == {B.CANCELLED}
    assert set(
        Recipient.objects.filter(campaign=campaign)
        .exclude(status=R.EXCLUDED)
        .values_list("status", flat=True)
    ) == {R.CANCELLED}
    drain.run_dispatcher(campaign.pk)
    tasks.tick()
    assert at_sinch(control) == []
    with pytest.raises(controls.ControlError):
        controls.cancel(campaign, sender)


def test_cancel_between_claim_and_call_sends_nothing(
    campaign, sender, client, control, launched_campaign
):
    launched_campaign(campaign, dispatch=False)
    batch = drain.claim_next(campaign.pk)
    receipt = controls.cancel(campaign, sender)
    assert receipt["unconfirmed"] == 7  # in flight: not known yet
    assert drain.submit(batch, drain.SubmitContext(batch.campaign)) == B.CANCELLED
    assert at_sinch(control) == []
    campaign.refresh_from_db()
    assert campaign.cancel_receipt["prevented"] == 7
    assert campaign.cancel_receipt["unconfirmed"] == 0


def _cancel_during_the_call(monkeypatch, client, campaign, user, seen):
    send = client.send_batch

    def send_batch(request):
        response = send(request)  # Sinch has it; our commit is still to come
        seen.append(controls.cancel(Campaign.objects.get(pk=campaign.pk), user))
        return response

    monkeypatch.setattr(client, "send_batch", send_batch)


def test_cancel_while_a_scheduled_batch_is_in_flight_cancels_it_at_sinch(
    make_spring, sender, client, control, monkeypatch, launched_campaign
):
    campaign = make_spring(send_at=timezone.now() + timedelta(hours=2))
    launched_campaign(campaign, dispatch=False)
    seen = []
    _cancel_during_the_call(monkeypatch, client, campaign, sender, seen)
    drain.run_dispatcher(campaign.pk)
    (batch,) = batches(campaign)
    assert seen[0]["unconfirmed"] == 7
    assert batch.status == B.CANCELLED
    assert batch.remote_status == "CANCELLED"
    assert remote_statuses(control) == {batch.metadata_key: "CANCELLED"}
    receipt = Campaign.objects.get(pk=campaign.pk).cancel_receipt
    assert (receipt["prevented"], receipt["cancelled_at_sinch"]) == (7, 7)
    assert (receipt["already_sent"], receipt["unconfirmed"]) == (0, 0)
    assert set(
        Recipient.objects.filter(batch=batch).values_list("status", flat=True)
    ) == {R.CANCELLED}


def test_cancel_while_an_immediate_batch_is_in_flight_reports_it_gone(
    campaign, sender, client, control, monkeypatch, launched_campaign
):
    launched_campaign(campaign, dispatch=False)
    seen = []
    _cancel_during_the_call(monkeypatch, client, campaign, sender, seen)
    drain.run_dispatcher(campaign.pk)
    (batch,) = batches(campaign)
    assert (batch.status, batch.cancel_requested) == (B.ACCEPTED, True)
    receipt = Campaign.objects.get(pk=campaign.pk).cancel_receipt
    assert (receipt["prevented"], receipt["already_sent"]) == (0, 7)
    assert at_sinch(control) == [batch.metadata_key]


def test_cancel_of_an_uncertain_batch_sinch_never_got_never_sends_it(
    campaign, sender, client, control, settings, launched_campaign
):
    launched_campaign(campaign, dispatch=False)
    control.post("inject", responses=[{"status": 500}])
    drain.run_dispatcher(campaign.pk)
    (batch,) = batches(campaign)
    assert batch.status == B.UNCERTAIN
    receipt = controls.cancel(campaign, sender)
    assert (receipt["unconfirmed"], receipt["prevented"]) == (7, 0)
    backdate(batch, uncertain_since=ago(settings.DISPATCH_UNCERTAIN_GRACE_S + 1))
    tasks.tick()
    batch.refresh_from_db()
    assert batch.status == B.CANCELLED
    assert at_sinch(control) == []
    assert set(
        Recipient.objects.filter(batch=batch).values_list("status", flat=True)
    ) == {R.CANCELLED}
    receipt = Campaign.objects.get(pk=campaign.pk).cancel_receipt
    assert (receipt["prevented"], receipt["unconfirmed"]) == (7, 0)


def test_cancel_of_an_uncertain_batch_sinch_scheduled_cancels_it_there(
    make_spring, sender, client, control, monkeypatch, launched_campaign
):
    campaign = make_spring(send_at=timezone.now() + timedelta(hours=2))
    launched_campaign(campaign, dispatch=False)
    monkeypatch.setattr(client.transport, "timeout", (2.0, 0.3))
    control.post("inject", responses=[{"timeout": True, "delay_s": 1.0}])
    drain.run_dispatcher(campaign.pk)
    (batch,) = batches(campaign)
    assert batch.status == B.UNCERTAIN
    controls.cancel(campaign, sender)
    settlement.settle_uncertain_batches()
    batch.refresh_from_db()
    assert (batch.status, batch.remote_status) == (B.CANCELLED, "CANCELLED")
    assert remote_statuses(control) == {batch.metadata_key: "CANCELLED"}
    receipt = Campaign.objects.get(pk=campaign.pk).cancel_receipt
    assert (receipt["cancelled_at_sinch"], receipt["unconfirmed"]) == (7, 0)


def test_cancel_of_batches_scheduled_at_sinch_cancels_and_confirms_them(
    make_spring, sender, client, control, small_batches, launched_campaign
):
    campaign = make_spring(send_at=timezone.now() + timedelta(hours=2))
    launched_campaign(campaign)
    assert set(remote_statuses(control).values()) == {"SCHEDULED"}
    receipt = controls.cancel(campaign, sender)
    assert receipt["prevented"] == receipt["cancelled_at_sinch"] == 7
    assert receipt["batches_cancelled_at_sinch"] == 3
    assert receipt["already_sent"] == 0
    assert {(b.status, b.remote_status) for b in batches(campaign)} == {
        (B.CANCELLED, "CANCELLED")
    }
    assert set(remote_statuses(control).values()) == {"CANCELLED"}
    assert Recipient.objects.filter(campaign=campaign, status=R.CANCELLED).count() == 7


def test_cancel_after_sinch_processed_the_batches_reports_them_gone(
    campaign, sender, client, control, small_batches, launched_campaign
):
    launched_campaign(campaign)
    receipt = controls.cancel(campaign, sender)
    assert receipt["prevented"] == 0
    assert (receipt["already_sent"], receipt["batches_already_sent"]) == (7, 3)
    assert {b.status for b in batches(campaign)} == {B.ACCEPTED}
    assert Campaign.objects.get(pk=campaign.pk).status == S.CANCELLED


def test_cancel_with_a_failed_batch_counts_it_apart(
    campaign, sender, client, control, small_batches, monkeypatch, launched_campaign
):
    launched_campaign(campaign, dispatch=False)
    first = batches(campaign)[0]
    refuse_app_for(monkeypatch, client, {first.metadata_key})
    batch = drain.claim_next(campaign.pk)
    drain.submit(batch, drain.SubmitContext(batch.campaign))
    receipt = controls.cancel(campaign, sender)
    assert receipt["failed_before"] == 3
    assert receipt["prevented"] == 4
    assert receipt["already_sent"] == 0
    assert [b.status for b in batches(campaign)] == [
        B.FAILED,
        B.CANCELLED,
        B.CANCELLED,
    ]
    assert at_sinch(control) == []


# --- a one-off schedule ---------------------------------------------------------


def _release_is_due(campaign) -> Schedule:
    """Time passes: the held batches are due and the release schedule fires."""
    (release,) = Schedule.objects.filter(func="campaigns.tasks.dispatch_campaign")
    assert release.args == str(campaign.pk)
    Schedule.objects.filter(pk=release.pk).update(next_run=ago(1))
    send_at = timezone.now() + timedelta(hours=1)
    Campaign.objects.filter(pk=campaign.pk).update(send_at=send_at)
    # The batches' wave (campaigns.dispatch.ingress) is that send time too.
    Batch.objects.filter(campaign=campaign).update(not_before=ago(1), wave_at=send_at)
    return release


def test_a_held_campaigns_release_schedule_submits_it_when_due(
    make_spring, client, control, launched_campaign
):
    campaign = make_spring(send_at=timezone.now() + timedelta(days=9))
    launched_campaign(campaign)
    assert at_sinch(control) == []
    _release_is_due(campaign)
    scheduler()  # django-q2's scheduler; the task runs inline (sync cluster)
    (batch,) = batches(campaign)
    assert batch.status == B.ACCEPTED
    assert at_sinch(control) == [batch.metadata_key]


def test_a_release_schedule_firing_after_a_cancel_sends_nothing(
    make_spring, sender, client, control, launched_campaign
):
    campaign = make_spring(send_at=timezone.now() + timedelta(days=9))
    launched_campaign(campaign)
    controls.cancel(campaign, sender)
    _release_is_due(campaign)
    scheduler()
    assert at_sinch(control) == []
    assert {b.status for b in batches(campaign)} == {B.CANCELLED}


# --- pause and resume ---------------------------------------------------------------


def test_pause_stops_further_batches_and_resume_continues_where_it_stopped(
    campaign,
    sender,
    client,
    control,
    small_batches,
    monkeypatch,
    capture,
    launched_campaign,
):
    launched_campaign(campaign, dispatch=False)
    first, second, third = batches(campaign)
    submit = drain.submit

    def submit_then_pause(batch, context):  # the user pauses after batch 1
        outcome = submit(batch, context)
        controls.pause(Campaign.objects.get(pk=campaign.pk), sender)
        return outcome

    monkeypatch.setattr(drain, "submit", submit_then_pause)
    drain.run_dispatcher(campaign.pk)
    monkeypatch.setattr(drain, "submit", submit)
    campaign.refresh_from_db()
    assert campaign.status == S.PAUSED
    assert at_sinch(control) == [first.metadata_key]
    drain.run_dispatcher(campaign.pk)  # another loop while paused
    tasks.tick()
    assert at_sinch(control) == [first.metadata_key]
    with capture(execute=True):
        controls.resume(campaign, sender)
    assert at_sinch(control) == keys([first, second, third])
    assert {(b.status, b.attempts) for b in batches(campaign)} == {(B.ACCEPTED, 1)}
    assert Campaign.objects.get(pk=campaign.pk).status == S.SUBMITTED


def test_a_batch_claimed_when_the_pause_came_is_released_unsent(
    campaign, sender, client, control, capture, launched_campaign
):
    launched_campaign(campaign, dispatch=False)
    batch = drain.claim_next(campaign.pk)
    controls.pause(campaign, sender)
    assert drain.submit(batch, drain.SubmitContext(batch.campaign)) == B.PENDING
    batch.refresh_from_db()
    assert (batch.status, batch.attempts) == (B.PENDING, 0)
    assert at_sinch(control) == []
    with capture(execute=True):
        controls.resume(campaign, sender)
    assert at_sinch(control) == [batch.metadata_key]


def test_the_campaign_pauses_itself_when_too_many_batches_fail(
    campaign, sender, client, control, monkeypatch, capture, settings, launched_campaign
):
    settings.DISPATCH_PAUSE_MIN_BATCHES = 2
    settings.DISPATCH_PAUSE_ERROR_RATE = 0.5
    monkeypatch.setattr(wire, "MAX_RECIPIENTS", 2)  # batches of 2, 2, 2, 1
    launched_campaign(campaign, dispatch=False)
    one, two, three, four = batches(campaign)
    refuse_app_for(monkeypatch, client, keys([one, two, three]))
    drain.run_dispatcher(campaign.pk)
    campaign.refresh_from_db()
    assert campaign.status == S.PAUSED
    assert campaign.status_reason.startswith("Paused automatically: 2 of the last 2")
    assert "Unknown app 'not-our-app'" in campaign.status_reason
    pause = AuditEvent.objects.get(action=AuditEvent.Action.PAUSE)
    assert pause.actor is None
    assert pause.actor_label == transitions.SYSTEM
    assert pause.target_id == str(campaign.pk)
    assert at_sinch(control) == []
    assert [b.status for b in batches(campaign)][2:] == [B.PENDING, B.PENDING]
    # Resumed: the failures that paused it do not pause it again at once.
    with capture(execute=True):
        controls.resume(campaign, sender)
    assert [b.status for b in batches(campaign)] == [B.FAILED] * 3 + [B.ACCEPTED]
    assert at_sinch(control) == [four.metadata_key]


def test_a_batch_claimed_too_often_is_failed_with_a_clear_message(
    campaign, client, control, small_batches, settings, launched_campaign
):
    settings.DISPATCH_MAX_ATTEMPTS = 2
    launched_campaign(campaign, dispatch=False)
    first, second, third = batches(campaign)
    backdate(first, attempts=1)  # one lost attempt: one more is allowed
    backdate(second, attempts=2)  # its worker died twice
    drain.run_dispatcher(campaign.pk)
    second.refresh_from_db()
    assert second.status == B.FAILED
    assert second.last_error.startswith("Given up after 2 attempts")
    assert set(
        Recipient.objects.filter(batch=second).values_list("status", flat=True)
    ) == {R.FAILED}
    assert at_sinch(control) == [first.metadata_key, third.metadata_key]


# --- limits ---------------------------------------------------------------------------


class FakeClock:
    def __init__(self, start: float) -> None:
        self.now, self.slept = start, []

    def time(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.slept.append(round(seconds, 3))
        self.now += seconds


def _check_the_rate_limit(settings) -> int:
    settings.SINCH_MAX_REQUESTS_PER_S = 2
    second = random.randrange(10**10, 2 * 10**10)  # a second nobody else uses
    clock = FakeClock(second + 0.25)

    def take(timeout_s):
        return ratelimit.acquire(
            timeout_s=timeout_s, sleep=clock.sleep, clock=clock.time
        )

    assert take(0)  # two requests in this second
    assert take(0)
    assert not take(0.5)  # the third would have to wait 0.75 s
    assert clock.slept == []
    assert take(5)  # waits for the next second
    assert clock.slept == [0.75]
    assert clock.now == second + 1
    return second


def test_the_request_rate_limit_is_shared_through_the_database(db, settings):
    settings.REDIS_URL = ""
    _check_the_rate_limit(settings)


def test_the_request_rate_limit_is_shared_through_redis(db, settings):
    redis = pytest.importorskip("redis")
    url = os.environ.get("REDIS_URL") or "redis://127.0.0.1:6379/0"
    try:
        redis.Redis.from_url(url, socket_connect_timeout=1).ping()
    except redis.exceptions.ConnectionError:
        if os.environ.get("REDIS_URL"):
            raise
        pytest.skip("no Redis running (REDIS_URL unset)")
    settings.REDIS_URL = url
    ratelimit._redis.cache_clear()
    try:
        second = _check_the_rate_limit(settings)
        store = ratelimit._redis()
        # Every try counts, the refused one too.
        assert int(store.get(f"campaigns:sinch-requests:{second}")) == 4
        store.delete(*(f"campaigns:sinch-requests:{second + n}" for n in (0, 1)))
    finally:
        ratelimit._redis.cache_clear()


def test_further_batches_wait_until_sinch_has_processed_the_earlier_ones(
    campaign, client, control, small_batches, monkeypatch, settings, launched_campaign
):
    settings.SINCH_MAX_IN_FLIGHT_MESSAGES = 3  # one batch of 3 at a time
    monkeypatch.setattr(drain, "CAP_WAIT_S", 0.05)
    monkeypatch.setattr(in_flight, "REMOTE_REREAD_S", 0)
    control.knobs(processing_delay_s=20)  # Sinch holds them READY for 20 s
    launched_campaign(campaign, dispatch=False)
    first, second, third = batches(campaign)
    drain.run_dispatcher(campaign.pk, seconds=0.3)
    assert at_sinch(control) == [first.metadata_key]
    assert Batch.objects.get(pk=first.pk).remote_status == "READY"
    control.post("advance", seconds=21)
    control.wait_for_batch(Batch.objects.get(pk=first.pk).sinch_batch_id, "PROCESSED")
    drain.run_dispatcher(campaign.pk, seconds=0.3)
    assert at_sinch(control) == [first.metadata_key, second.metadata_key]
    assert Batch.objects.get(pk=first.pk).remote_status == "PROCESSED"
    assert Batch.objects.get(pk=third.pk).status == B.PENDING


# --- the audit trail ---------------------------------------------------------------


def test_launch_pause_resume_and_cancel_are_in_the_audit_trail(
    campaign, sender, client, control, capture, launched_campaign
):
    launched_campaign(campaign, dispatch=False)
    controls.pause(campaign, sender)
    with capture(execute=False):
        controls.resume(campaign, sender)
    controls.cancel(campaign, sender)
    rows = AuditEvent.objects.filter(
        target_type="campaign", target_id=str(campaign.pk)
    ).order_by("at", "id")
    assert [(r.action, r.actor) for r in rows] == [
        (AuditEvent.Action.LAUNCH, sender),
        (AuditEvent.Action.PAUSE, sender),
        (AuditEvent.Action.RESUME, sender),
        (AuditEvent.Action.CANCEL, sender),
    ]
    assert "7 messages prevented" in rows.last().summary
