"""Delivery reconciliation against the simulator: what the callbacks did not say.

Receipts "stop arriving" with the simulator's drop_ratio=1 knob (it records
every callback and sends none). Time is moved by passing `now`, never slept.
"""

import json
import logging
import time
from datetime import timedelta

import pytest
from django.utils import timezone

from campaigns import counters
from campaigns.dispatch import batch_request, drain, ratelimit, settlement
from campaigns.models import (
    Batch,
    Campaign,
    Recipient,
    WebhookEvent,
)
from campaigns.schedules import RECONCILE_NAME
from campaigns.tracking import inbox, orphans, receipts
from campaigns.tracking import reconciliation as rec
from sinch import client as sinch_client
from sinch import wire
from sinch.errors import SinchNotFoundError

B, R = Batch.Status, Recipient.Status
NOWHERE = "http://127.0.0.1:9/webhooks/sinch"  # never reached: all dropped


@pytest.fixture(autouse=True)
def thresholds(settings):
    settings.RECONCILE_SILENT_AFTER_S = 600
    settings.RECEIPTS_STALLED_AFTER_S = 1800
    settings.RECEIPTS_TTL_MARGIN_S = 600
    settings.RECONCILE_EVERY_MINUTES = 5
    settings.RECONCILE_RECOUNT_EVERY_S = 3600
    settings.RECONCILE_RECOUNT_ALWAYS_BELOW = 50_000


@pytest.fixture
def small_batches(monkeypatch):
    """Batches of 3 recipients: 7 contacts make batches of 3, 3 and 1."""
    monkeypatch.setattr(wire, "MAX_RECIPIENTS", 3)


@pytest.fixture
def client(sinch):
    return sinch_client.get_sinch_client()


@pytest.fixture
def reads(client, monkeypatch):
    """Every status read the product makes at Sinch, as (method, argument)."""
    made = []
    listing, single = client.batches_by_metadata, client.get_batch

    def batches_by_metadata(key, value):
        made.append(("list", value))
        return listing(key, value)

    def get_batch(batch_id):
        made.append(("get", batch_id))
        return single(batch_id)

    monkeypatch.setattr(client, "batches_by_metadata", batches_by_metadata)
    monkeypatch.setattr(client, "get_batch", get_batch)
    return made


@pytest.fixture
def slots(monkeypatch):
    """Rate-limit slots taken; `slots.free = False` makes none available."""

    class Slots(list):
        free = True

    taken = Slots()
    acquire = ratelimit.acquire

    def counting(**kwargs):
        if not taken.free:
            return False
        taken.append(kwargs)
        return acquire(**kwargs)

    monkeypatch.setattr(ratelimit, "acquire", counting)
    return taken


@pytest.fixture
def launched(
    make_template,
    make_audience,
    make_campaign,
    launched_campaign,
    sinch,
    control,
    small_batches,
):
    """Launch a campaign to 7 opted-in contacts (one more opted out) whose
    receipts never reach us; returns it once Sinch processed its batches."""
    made = 0

    def launch(name="Spring", *, send_at=None, ttl_seconds=None, wait=True):
        nonlocal made
        made += 1
        control.knobs(webhook_url=NOWHERE, drop_ratio=1)
        template = make_template(name, "Hi ${first_name}!")
        customers = make_audience(
            f"Customers of {name}",
            7,
            phone=f"+1415555{made}{{:03d}}",
            opted_out=[f"+1415555{made}999"],
        )
        campaign = make_campaign(
            template,
            [customers],
            name,
            checked=True,
            send_at=send_at,
            ttl_seconds=ttl_seconds,
        )
        launched_campaign(campaign, dispatch=False)
        drain.run_dispatcher(campaign.pk)
        if wait:
            for batch in Batch.objects.filter(campaign=campaign):
                control.wait_for_batch(batch.sinch_batch_id, "PROCESSED")
        campaign.refresh_from_db()
        return campaign

    return launch


def batches(campaign) -> list[Batch]:
    return list(Batch.objects.filter(campaign=campaign).order_by("sequence"))


def submitted(campaign):
    """When the campaign's last batch was handed to Sinch."""
    return max(b.submitted_at for b in batches(campaign))


def waiting(campaign) -> int:
    figures = counters.counts(campaign.pk)
    return figures.get(R.SUBMITTED, 0) + figures.get(R.QUEUED_ON_CHANNEL, 0)


def stalled(campaign) -> str:
    return Campaign.objects.get(pk=campaign.pk).receipts_stalled


def receipt_arrives(campaign, at, status=R.DELIVERED) -> Recipient:
    """One receipt recorded as the receipt processor records it."""
    recipient = Recipient.objects.filter(campaign=campaign, status=R.SUBMITTED).first()
    Recipient.objects.filter(pk=recipient.pk).update(status=status)
    counters.moved(campaign.pk, R.SUBMITTED, status, 1)
    Batch.objects.filter(pk=recipient.batch_id).update(last_receipt_at=at)
    Campaign.objects.filter(pk=campaign.pk).update(last_receipt_at=at)
    return recipient


# --- silent batches -------------------------------------------------------------


@pytest.mark.parametrize("shape", ["list", "object"])
def test_batches_silent_past_the_threshold_have_their_status_read_in_one_request(
    launched, control, reads, slots, shape
):
    control.knobs(metadata_list_shape=shape)  # a bare array, or a holder
    campaign = launched()
    slots.clear()  # those dispatch took
    assert control.state()["counters"]["callbacks_dropped"] > 0
    first, second, third = batches(campaign)
    assert {b.remote_status for b in (first, second, third)} == {""}
    later = submitted(campaign) + timedelta(minutes=11)
    # The second was re-read a moment ago; a callback about the third came.
    Batch.objects.filter(pk=second.pk).update(
        remote_checked_at=later - timedelta(minutes=3)
    )
    Batch.objects.filter(pk=third.pk).update(
        last_receipt_at=later - timedelta(minutes=2)
    )

    assert rec.read_silent_batches(now=timezone.now()) == {
        "requests": 0,
        "read": 0,
        "not_found": 0,
        "skipped": 0,
    }
    assert reads == []

    result = rec.read_silent_batches(now=later)
    assert result["read"] == 1
    assert reads == [("list", str(campaign.pk))]
    assert len(slots) == 1
    first, second, third = batches(campaign)
    assert (first.remote_status, first.remote_checked_at) == ("PROCESSED", later)
    assert second.remote_status == third.remote_status == ""
    # Read once: not again within the threshold.
    assert rec.read_silent_batches(now=later + timedelta(minutes=5))["requests"] == 0
    assert rec.read_silent_batches(now=later + timedelta(minutes=11))["read"] == 2
    assert {b.remote_status for b in batches(campaign)} == {"PROCESSED"}


def test_batches_the_list_does_not_name_are_read_one_by_one(
    launched, client, reads, slots, monkeypatch
):
    campaign = launched()
    slots.clear()
    later = submitted(campaign) + timedelta(minutes=11)

    def refused(key, value):
        reads.append(("list", value))
        raise SinchNotFoundError("not found", status=404)

    monkeypatch.setattr(client, "batches_by_metadata", refused)
    result = rec.read_silent_batches(now=later)
    assert result == {"requests": 4, "read": 3, "not_found": 0, "skipped": 0}
    assert reads[0] == ("list", str(campaign.pk))
    assert sorted(reads[1:]) == sorted(
        ("get", b.sinch_batch_id) for b in batches(campaign)
    )
    assert len(slots) == 4
    assert {b.remote_status for b in batches(campaign)} == {"PROCESSED"}


def test_without_a_free_request_slot_nothing_is_read_and_the_batches_stay_due(
    launched, reads, slots
):
    campaign = launched()
    later = submitted(campaign) + timedelta(minutes=11)
    slots.free = False
    assert rec.read_silent_batches(now=later)["skipped"] == 3
    assert reads == []
    assert {b.remote_checked_at for b in batches(campaign)} == {None}
    slots.free = True
    assert rec.read_silent_batches(now=later)["read"] == 3


def test_a_batch_scheduled_at_sinch_is_not_silent_before_its_send_time(
    launched, client, reads, control
):
    # About the list read, not the cancel: the simulator cancels at once.
    control.knobs(cancel_delay_s=0)
    campaign = launched(send_at=timezone.now() + timedelta(hours=2), wait=False)
    first = batches(campaign)[0]
    assert first.remote_status == "SCHEDULED"
    assert rec.read_silent_batches(now=first.send_after)["requests"] == 0
    # Cancelled at Sinch behind our back: found when the send time has passed.
    for batch in batches(campaign):
        client.cancel_batch(batch.sinch_batch_id)
    after = first.send_after + timedelta(minutes=11)
    assert rec.read_silent_batches(now=after)["read"] == 3
    assert {(b.status, b.remote_status) for b in batches(campaign)} == {
        (B.CANCELLED, "CANCELLED")
    }
    assert counters.counts(campaign.pk) == {R.CANCELLED: 7, R.EXCLUDED: 1}


# --- stalled receipts -----------------------------------------------------------


def test_a_campaign_whose_receipts_stopped_is_flagged_and_unflagged_when_they_return(
    launched, caplog
):
    campaign = launched()
    sent = submitted(campaign)
    rec.read_silent_batches(now=sent + timedelta(minutes=11))  # PROCESSED
    assert rec.flag_stalled_campaigns(now=sent + timedelta(minutes=29)) == {
        "flagged": 0,
        "cleared": 0,
    }
    assert stalled(campaign) == ""

    with caplog.at_level(logging.WARNING, logger="campaigns.tracking.reconciliation"):
        result = rec.flag_stalled_campaigns(now=sent + timedelta(minutes=42))
    assert result == {"flagged": 1, "cleared": 0}
    assert stalled(campaign) == (
        "No delivery receipt for 42 minutes while 7 messages are still waiting "
        "for one; check the webhook (operator health page)."
    )
    assert "check the webhook" in caplog.text

    receipt_arrives(campaign, at=sent + timedelta(minutes=43))
    result = rec.flag_stalled_campaigns(now=sent + timedelta(minutes=44))
    assert result == {"flagged": 0, "cleared": 1}
    assert stalled(campaign) == ""
    # Silent again for the threshold after that receipt: flagged again.
    rec.flag_stalled_campaigns(now=sent + timedelta(minutes=43 + 31))
    assert stalled(campaign).startswith(
        "No delivery receipt for 31 minutes while 6 messages"
    )


def test_nothing_is_flagged_while_sinch_has_not_processed_the_batches(launched):
    campaign = launched()
    sent = submitted(campaign)
    # Not read yet: we do not know Sinch processed them.
    rec.flag_stalled_campaigns(now=sent + timedelta(hours=2))
    assert stalled(campaign) == ""
    assert waiting(campaign) == 7


def test_only_messages_of_processed_batches_count_as_waiting(launched):
    campaign = launched()
    sent = submitted(campaign)
    rec.read_silent_batches(now=sent + timedelta(minutes=11))
    Batch.objects.filter(pk=batches(campaign)[0].pk).update(remote_status="READY")
    rec.flag_stalled_campaigns(now=sent + timedelta(minutes=40))
    assert "while 4 messages are still waiting" in stalled(campaign)


def test_a_campaign_waiting_behind_an_earlier_one_still_draining_is_not_flagged(
    launched,
):
    earlier = launched("Earlier")
    later_one = launched("Later")
    sent = submitted(later_one)
    rec.read_silent_batches(now=sent + timedelta(minutes=11))
    # Sinch is still draining the earlier campaign: its receipts keep coming.
    receipt_arrives(earlier, at=sent + timedelta(minutes=39))
    rec.flag_stalled_campaigns(now=sent + timedelta(minutes=40))
    assert stalled(later_one) == ""
    assert stalled(earlier) == ""
    # The earlier one went quiet too: both are flagged.
    rec.flag_stalled_campaigns(now=sent + timedelta(minutes=39 + 31))
    assert stalled(later_one).startswith("No delivery receipt for 70 minutes")
    assert stalled(earlier).startswith("No delivery receipt for 31 minutes")


def test_after_the_ttl_the_waiting_messages_are_reported_without_a_receipt(
    launched,
):
    campaign = launched(ttl_seconds=3600)
    sent = submitted(campaign)
    rec.read_silent_batches(now=sent + timedelta(minutes=11))
    rec.flag_stalled_campaigns(now=sent + timedelta(minutes=60 + 9))
    assert "ttl" not in stalled(campaign)
    rec.flag_stalled_campaigns(now=sent + timedelta(minutes=60 + 11))
    assert stalled(campaign) == (
        "No delivery receipt for 71 minutes while 7 messages are still waiting "
        "for one. Their ttl (60 minutes) has passed: Sinch no longer tries to "
        "deliver them, so their outcome is unknown (no receipt); check the "
        "webhook (operator health page)."
    )
    # Their statuses are left as Sinch last reported them.
    assert waiting(campaign) == 7


def test_the_flag_clears_when_nothing_waits_for_a_receipt_any_more(launched):
    campaign = launched()
    sent = submitted(campaign)
    rec.read_silent_batches(now=sent + timedelta(minutes=11))
    rec.flag_stalled_campaigns(now=sent + timedelta(minutes=40))
    assert stalled(campaign)
    n = Recipient.objects.filter(campaign=campaign, status=R.SUBMITTED).update(
        status=R.FAILED
    )
    counters.moved(campaign.pk, R.SUBMITTED, R.FAILED, n)
    rec.flag_stalled_campaigns(now=sent + timedelta(minutes=41))
    assert stalled(campaign) == ""


# --- counter drift --------------------------------------------------------------


def test_drifted_counters_are_healed_from_a_full_count_and_logged(launched, caplog):
    campaign = launched()
    assert counters.counts(campaign.pk) == {R.SUBMITTED: 7, R.EXCLUDED: 1}
    counters.add(campaign.pk, {R.SUBMITTED: 5, R.DELIVERED: -2})  # a lost move
    with caplog.at_level(logging.WARNING, logger="campaigns.tracking.reconciliation"):
        healed = rec.heal_counter_drift(now=timezone.now())
    assert healed == {campaign.pk: {R.SUBMITTED: -5, R.DELIVERED: 2}}
    assert counters.counts(campaign.pk) == counters.actual(campaign.pk)
    assert "drifted" in caplog.text
    assert rec.heal_counter_drift(now=timezone.now()) == {}


def test_a_large_campaign_is_recounted_only_once_an_hour(launched, settings):
    settings.RECONCILE_RECOUNT_ALWAYS_BELOW = 5  # 8 recipients: "large"
    campaign = launched()
    start = timezone.now().replace(minute=0, second=0, microsecond=0)
    healed = []
    for k in range(12):  # one hour of runs, every 5 minutes
        counters.add(campaign.pk, {R.SUBMITTED: 1})  # drifting all the time
        healed.append(rec.heal_counter_drift(now=start + timedelta(minutes=5 * k)))
    due = [k for k, found in enumerate(healed) if found]
    assert len(due) == 1
    assert healed[due[0]] == {campaign.pk: {R.SUBMITTED: -(due[0] + 1)}}
    rest = rec.heal_counter_drift(campaign_ids=[campaign.pk])
    # The drift since the recount (none when it was due at the last run: the
    # campaign's id decides which run of the hour recounts it).
    since = 11 - due[0]
    assert rest == ({campaign.pk: {R.SUBMITTED: -since}} if since else {})
    assert counters.counts(campaign.pk) == counters.actual(campaign.pk)


def test_campaigns_no_longer_sending_or_waiting_are_not_recounted(launched):
    campaign = launched()
    n = Recipient.objects.filter(campaign=campaign, status=R.SUBMITTED).update(
        status=R.DELIVERED
    )
    counters.moved(campaign.pk, R.SUBMITTED, R.DELIVERED, n)
    Campaign.objects.filter(pk=campaign.pk).update(status=Campaign.Status.COMPLETED)
    counters.add(campaign.pk, {R.READ: 1})
    assert rec.heal_counter_drift(now=timezone.now()) == {}
    counters.add(campaign.pk, {R.READ: -1})  # the conftest's check still holds


@pytest.mark.django_db(transaction=True)
def test_drift_is_measured_in_one_snapshot_when_run_by_the_worker(
    make_template, make_campaign
):
    """Outside any transaction (as on a worker) both figures come from one
    snapshot (REPEATABLE READ on PostgreSQL)."""
    campaign = make_campaign(
        make_template("T", "Hi"), name="C", status=Campaign.Status.SUBMITTED
    )
    Recipient.objects.bulk_create(
        Recipient(campaign=campaign, identity=f"+1415555{n:04d}", status=R.SUBMITTED)
        for n in range(3)
    )  # written without reporting the move: drift
    assert rec.heal_counter_drift() == {campaign.pk: {R.SUBMITTED: 3}}
    assert counters.counts(campaign.pk) == {R.SUBMITTED: 3}


# --- orphans --------------------------------------------------------------------


def orphan(body: str, *, received_at=None, nonce=None) -> WebhookEvent:
    at = received_at or timezone.now()
    return WebhookEvent.objects.create(
        received_at=at,
        signed_at=at,
        nonce=nonce or f"n{WebhookEvent.objects.count()}",
        body=body,
        state=WebhookEvent.State.ORPHAN,
    )


def states(events) -> list[str]:
    """The current state of each event (given as rows or ids)."""
    ids = [getattr(e, "pk", e) for e in events]
    found = dict(WebhookEvent.objects.filter(pk__in=ids).values_list("pk", "state"))
    return [found[pk] for pk in ids]


def test_callbacks_that_came_before_their_uncertain_batch_was_known_are_retried(
    launched, client, control, monkeypatch, django_capture_on_commit_callbacks
):
    monkeypatch.setattr(wire, "MAX_RECIPIENTS", 10)  # one batch
    monkeypatch.setattr(client.transport, "timeout", (2.0, 0.3))
    # Sinch takes the batch and processes it, but answers too late.
    control.knobs(timeout_ratio=1, timeout_s=1)
    campaign = launched(wait=False)
    (batch,) = batches(campaign)
    assert batch.status == B.UNCERTAIN
    (remote,) = control.state()["batches"]
    control.wait_for_batch(remote["batch_id"], "PROCESSED")
    control.knobs(timeout_ratio=0)
    # Its status updates (Sinch may leave our metadata out of them) and a
    # report failing its first message arrive before we know its Sinch id.
    bodies = []
    for callback in control.state()["callbacks"]:
        if callback["kind"] == "BATCH_STATUS_UPDATE":
            body = json.loads(callback["body"])
            body[wire.BATCH_STATUS_UPDATE_KEY].pop("meta_data")
            bodies.append(body)
    report = {k: v for k, v in bodies[0].items() if k != wire.BATCH_STATUS_UPDATE_KEY}
    report[wire.BATCH_PROCESSING_REPORT_KEY] = {
        "batch_id": remote["batch_id"],
        "message_index": 0,
        "reason": {"code": "RECIPIENT_NOT_REACHABLE"},
    }
    bodies.append(report)
    events = [
        inbox.store(json.dumps(body), f"nonce-{n}", int(time.time()))
        for n, body in enumerate(bodies)
    ]
    receipts.process_pending()
    assert set(states(events)) == {WebhookEvent.State.ORPHAN}
    now = timezone.now()
    old = orphan(json.dumps(bodies[0]), received_at=now - timedelta(days=2))
    assert orphans.retry_orphans(now=now) == 0

    # Found at Sinch by metadata:
    settlement.settle_uncertain_batches(campaign_id=campaign.pk)
    assert Batch.objects.get(pk=batch.pk).sinch_batch_id == remote["batch_id"]
    with django_capture_on_commit_callbacks() as wake:
        assert orphans.retry_orphans(now=now) == len(events)
    assert set(states(events)) == {WebhookEvent.State.NEW}
    assert states([old]) == [WebhookEvent.State.ORPHAN]  # too old to retry

    (processor,) = wake  # the receipt processor is woken
    processor()
    assert set(states(events)) == {WebhookEvent.State.PROCESSED}
    assert Batch.objects.get(pk=batch.pk).remote_status == "PROCESSED"
    first = Recipient.objects.get(batch=batch, index=0)
    assert (first.status, first.failure_code) == (R.FAILED, "RECIPIENT_NOT_REACHABLE")


def test_an_orphan_receipt_is_retried_only_when_its_recipient_matches(launched):
    campaign = launched()
    recipient = Recipient.objects.filter(campaign=campaign, status=R.SUBMITTED).first()

    def receipt(recipient_id, campaign_id):
        metadata = {
            batch_request.RECIPIENT_KEY: str(recipient_id),
            batch_request.CAMPAIGN_KEY: str(campaign_id),
        }
        report = {
            "message_id": "m1",
            "status": "DELIVERED",
            "metadata": json.dumps(metadata),
        }
        return orphan(json.dumps({"app_id": "a", "message_delivery_report": report}))

    matching = receipt(recipient.pk, campaign.pk)
    other_campaign = receipt(recipient.pk, campaign.pk + 1)
    unknown = receipt(recipient.pk + 1000, campaign.pk)
    assert orphans.retry_orphans() == 1
    assert states([matching, other_campaign, unknown]) == [
        WebhookEvent.State.NEW,
        WebhookEvent.State.ORPHAN,
        WebhookEvent.State.ORPHAN,
    ]


# --- the periodic task ----------------------------------------------------------


def test_the_periodic_task_runs_every_step_and_is_scheduled(launched):
    from django_q.models import Schedule

    from campaigns import tasks

    schedule = Schedule.objects.get(name=RECONCILE_NAME)
    assert (schedule.func, schedule.minutes) == (
        "campaigns.tasks.reconcile_deliveries",
        5,
    )
    campaign = launched()
    # Sent 45 minutes ago (Sinch stores the acceptance as the send time).
    ago = timezone.now() - timedelta(minutes=45)
    Batch.objects.filter(campaign=campaign).update(submitted_at=ago, send_after=ago)
    summary = tasks.reconcile_deliveries()
    assert "'read': 3" in summary
    assert "'flagged': 1" in summary
    assert stalled(campaign).startswith("No delivery receipt for 45 minutes")


def test_a_campaign_whose_recipients_all_have_an_outcome_is_completed(
    make_template, make_audience, make_campaign, launched_campaign, sinch
):
    from campaigns import counters
    from campaigns.tracking.completion import complete_finished_campaigns

    template = make_template("Done", "Hi ${first_name}")
    customers = make_audience("Done customers", 3, phone="+1415888{:04d}")
    campaign = make_campaign(template, [customers], "Done", checked=True)
    launched_campaign(campaign)
    assert campaign.status == Campaign.Status.SUBMITTED
    assert complete_finished_campaigns() == 0  # all three still wait for receipts
    rows = Recipient.objects.filter(campaign=campaign).order_by("pk")
    for recipient, outcome in zip(
        rows, (Recipient.Status.DELIVERED, Recipient.Status.DELIVERED), strict=False
    ):
        Recipient.objects.filter(pk=recipient.pk).update(status=outcome)
        counters.moved(campaign.pk, Recipient.Status.SUBMITTED, outcome, 1)
    assert complete_finished_campaigns() == 0  # one still waits
    last = rows.last()
    Recipient.objects.filter(pk=last.pk).update(status=Recipient.Status.FAILED)
    counters.moved(campaign.pk, Recipient.Status.SUBMITTED, Recipient.Status.FAILED, 1)
    assert complete_finished_campaigns() == 1
    campaign.refresh_from_db()
    assert campaign.status == Campaign.Status.COMPLETED


def test_a_campaign_that_becomes_submitted_during_the_check_is_not_completed(
    make_template, make_audience, make_campaign, launched_campaign, sinch, monkeypatch
):
    # The tick checks completion in one process while a drain loop in another
    # marks the campaign SUBMITTED: its three recipients still wait for their
    # receipts, so it must not be taken for done.
    from campaigns.tracking.completion import complete_finished_campaigns

    template = make_template("Racing", "Hi ${first_name}")
    customers = make_audience("Racing customers", 3, phone="+1415777{:04d}")
    campaign = make_campaign(template, [customers], "Racing", checked=True)
    launched_campaign(campaign)
    Campaign.objects.filter(pk=campaign.pk).update(status=Campaign.Status.SUBMITTING)
    real_filter = Campaign.objects.filter

    def the_drain_loop_finishes_meanwhile(*args, **kwargs):
        real_filter(pk=campaign.pk).update(status=Campaign.Status.SUBMITTED)
        return real_filter(*args, **kwargs)

    monkeypatch.setattr(Campaign.objects, "filter", the_drain_loop_finishes_meanwhile)
    assert complete_finished_campaigns() == 0
    monkeypatch.undo()
    campaign.refresh_from_db()
    assert campaign.status == Campaign.Status.SUBMITTED
