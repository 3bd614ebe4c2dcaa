"""Stored Sinch callbacks processed into recipient statuses, batch statuses,
replies and consent (campaigns.receipts): in bulk, idempotent, in any order."""

import itertools
import json
import secrets
import time
from datetime import UTC, datetime, timedelta

import pytest
from django.db import OperationalError
from django.utils import timezone

from campaigns import counters, tasks
from campaigns.dispatch.batch_request import BATCH_KEY, CAMPAIGN_KEY, RECIPIENT_KEY
from campaigns.models import (
    Batch,
    Campaign,
    CampaignTimeline,
    InboundMessage,
    Recipient,
    WebhookEvent,
)
from campaigns.tracking import deliveries, receipts
from contacts.models import ChannelIdentity, ConsentEvent, ConsentState, Contact
from sinch import wire
from sinch.simulator import events
from sinch.simulator.state import Message
from tests.sinch.conftest import ACCOUNT

R, State = Recipient.Status, WebhookEvent.State
IN, OUT = ConsentState.OPTED_IN, ConsentState.OPTED_OUT
# Sinch's event times: after the fixtures' own consent records (made "now").
T0 = (datetime.now(UTC) + timedelta(hours=1)).replace(second=0, microsecond=0)
_clock = itertools.count()


# --- building stored callbacks as Sinch sends them ------------------------------


def store(payload: dict | str, *, save: bool = True) -> WebhookEvent:
    """A verified callback as the intake stores it: raw body, fresh nonce."""
    body = payload if isinstance(payload, str) else events.dumps(payload).decode()
    at = timezone.now()
    event = WebhookEvent(
        received_at=at, signed_at=at, nonce=secrets.token_hex(13), body=body
    )
    if save:
        event.save()
    return event


def receipt(
    recipient: Recipient,
    status: str,
    *,
    reason: str = "",
    channel: str = "SMS",
    at: datetime | None = None,
    metadata: dict | None = None,
    save: bool = True,
) -> WebhookEvent:
    batch = recipient.batch
    meta = metadata
    if meta is None:
        meta = {
            CAMPAIGN_KEY: str(recipient.campaign_id),
            RECIPIENT_KEY: str(recipient.pk),
            wire.RESERVED_METADATA_KEY: batch.sinch_batch_id if batch else "",
        }
    message = Message(
        message_id=f"01MSG{recipient.pk:022d}",
        contact_id="",
        metadata=json.dumps(meta, separators=(",", ":")),
    )
    moment = (at or T0 + timedelta(seconds=next(_clock))).timestamp()
    payload = events.delivery_report(
        ACCOUNT,
        message,
        status=status,
        channel=channel,
        identity=recipient.identity,
        reason=reason,
        mode="DISPATCH",
        correlation_id="",
        now=moment,
    )
    return store(payload, save=save)


def inbound(
    text: str,
    identity: str = "+14155550101",
    *,
    channel: str = "SMS",
    message_id: str | None = None,
    conversation: dict | None = None,
) -> WebhookEvent:
    payload = events.inbound(
        ACCOUNT,
        message_id=message_id or f"01INBOUND{secrets.token_hex(8)}",
        channel=channel,
        identity=identity,
        text=text,
        sender_id="",
        conversation_metadata=json.dumps(conversation) if conversation else "",
        mode="DISPATCH",
        now=T0.timestamp(),
    )
    return store(payload)


def consent_note(kind: str, identity: str, status: str = "") -> WebhookEvent:
    payload = events.consent_notification(
        ACCOUNT,
        kind=kind,
        request_id="req-1",
        channel="SMS",
        identity=identity,
        mode="DISPATCH",
        now=T0.timestamp(),
    )
    key = "opt_out_notification" if kind == "OPT_OUT" else "opt_in_notification"
    if status:
        payload[key]["status"] = status
    return store(payload)


def batch_status(batch: Batch, status: str, **item) -> WebhookEvent:
    payload = events.envelope(
        ACCOUNT,
        T0.timestamp(),
        wire.BATCH_STATUS_UPDATE_KEY,
        {
            "batch_id": batch.sinch_batch_id,
            "status": status,
            "meta_data": {BATCH_KEY: batch.metadata_key},
            **item,
        },
    )
    return store(payload)


def process() -> dict:
    return dict(receipts.process_pending())


def state(event: WebhookEvent) -> tuple[str, str]:
    event.refresh_from_db()
    return event.state, event.error


# --- a campaign handed to Sinch ---------------------------------------------------


@pytest.fixture
def campaign(make_template, make_campaign, make_contact):
    campaign = make_campaign(
        make_template("Spring", "Hi"), name="Spring", status=Campaign.Status.SUBMITTED
    )
    batch = Batch.objects.create(
        campaign=campaign,
        sequence=1,
        size=3,
        metadata_key="key-spring-1",
        status=Batch.Status.ACCEPTED,
        sinch_batch_id="01BATCHSPRING0000000000001",
    )
    for n in range(3):
        contact = make_contact(f"+1415555{n:04d}", consent=IN)
        Recipient.objects.create(
            campaign=campaign,
            batch=batch,
            index=n,
            contact=contact,
            identity=f"+1415555{n:04d}",
            status=R.SUBMITTED,
        )
    counters.add(campaign.pk, {R.SUBMITTED: 3})
    return campaign


@pytest.fixture
def people(campaign):
    return list(campaign.recipients.order_by("index"))


def statuses(campaign) -> list[str]:
    return list(campaign.recipients.order_by("index").values_list("status", flat=True))


def timeline(campaign) -> dict[str, int]:
    result: dict[str, int] = {}
    for status, n in CampaignTimeline.objects.filter(campaign=campaign).values_list(
        "status", "count"
    ):
        result[status] = result.get(status, 0) + n
    return result


# --- delivery receipts ------------------------------------------------------------


def test_receipts_move_a_recipient_along_and_keep_its_message_id(campaign, people):
    ann = people[0]
    for status in ("QUEUED_ON_CHANNEL", "DELIVERED", "READ"):
        receipt(ann, status, channel="WHATSAPP")
    assert process() == {State.PROCESSED: 3}
    ann.refresh_from_db()
    assert ann.status == R.READ
    assert ann.message_id == f"01MSG{ann.pk:022d}"
    assert counters.counts(campaign.pk) == {R.SUBMITTED: 2, R.READ: 1}
    assert timeline(campaign) == {R.QUEUED_ON_CHANNEL: 1, R.DELIVERED: 1, R.READ: 1}


def test_the_same_receipt_delivered_three_times_counts_once(campaign, people):
    for _ in range(3):
        receipt(people[0], "DELIVERED")  # fresh nonce each time
    receipt(people[1], "DELIVERED")
    process()
    for _ in range(2):  # and again, in a later run
        receipt(people[0], "DELIVERED")
    process()
    assert counters.counts(campaign.pk) == {R.SUBMITTED: 1, R.DELIVERED: 2}
    assert timeline(campaign) == {R.QUEUED_ON_CHANNEL: 2, R.DELIVERED: 2}
    assert WebhookEvent.objects.filter(state=State.PROCESSED).count() == 6


@pytest.mark.parametrize("split", [False, True], ids=["one chunk", "separate runs"])
def test_receipts_in_any_order_end_in_the_most_advanced_status(campaign, people, split):
    ann, bob, _ = people
    order = [(ann, "READ"), (ann, "QUEUED_ON_CHANNEL"), (ann, "DELIVERED")]
    order += [(bob, "DELIVERED"), (bob, "QUEUED_ON_CHANNEL")]
    for person, status in order:
        receipt(person, status)
        if split:
            process()
    process()
    assert statuses(campaign) == [R.READ, R.DELIVERED, R.SUBMITTED]
    assert counters.counts(campaign.pk) == {R.READ: 1, R.DELIVERED: 1, R.SUBMITTED: 1}
    # each status reached counted once, whatever the order: READ implies the rest
    assert timeline(campaign) == {R.QUEUED_ON_CHANNEL: 2, R.DELIVERED: 2, R.READ: 1}


def test_a_late_failure_never_undoes_a_delivery(campaign, people):
    ann = people[0]
    receipt(ann, "DELIVERED")
    process()
    late = receipt(ann, "FAILED", reason="DELIVERY_TIMED_OUT")
    process()
    ann.refresh_from_db()
    assert (ann.status, ann.failure_code) == (R.DELIVERED, "")
    assert state(late) == (State.PROCESSED, "")
    assert counters.counts(campaign.pk)[R.DELIVERED] == 1


def test_a_failure_keeps_sinchs_reason_code_and_is_final(campaign, people):
    ann = people[0]
    receipt(ann, "QUEUED_ON_CHANNEL")
    receipt(ann, "FAILED", reason="RECIPIENT_NOT_REACHABLE")
    receipt(ann, "DELIVERED")  # without a channel switch: a stray receipt
    process()
    ann.refresh_from_db()
    assert (ann.status, ann.failure_code) == (R.FAILED, "RECIPIENT_NOT_REACHABLE")
    assert counters.counts(campaign.pk) == {R.SUBMITTED: 2, R.FAILED: 1}


def test_failed_then_switching_channel_then_delivered_ends_delivered(campaign, people):
    ann = people[0]
    receipt(ann, "FAILED", reason="CHANNEL_FAILURE", channel="WHATSAPP")
    process()
    receipt(ann, "SWITCHING_CHANNEL", reason="CHANNEL_FAILURE", channel="WHATSAPP")
    process()
    ann.refresh_from_db()
    assert (ann.status, ann.switched_channel) == (R.FAILED, True)
    receipt(ann, "QUEUED_ON_CHANNEL", channel="SMS")  # not a success yet
    receipt(ann, "DELIVERED", channel="SMS")
    process()
    ann.refresh_from_db()
    assert (ann.status, ann.failure_code) == (R.DELIVERED, "")
    assert counters.counts(campaign.pk) == {R.SUBMITTED: 2, R.DELIVERED: 1}
    assert timeline(campaign) == {R.FAILED: 1, R.DELIVERED: 1}


def test_receipts_that_match_no_recipient_are_kept_as_orphans(campaign, people):
    ann = people[0]
    unknown = receipt(ann, "DELIVERED", metadata={RECIPIENT_KEY: "999999"})
    unnamed = receipt(ann, "DELIVERED", metadata={"something": "else"})
    elsewhere = receipt(
        ann,
        "DELIVERED",
        metadata={RECIPIENT_KEY: str(ann.pk), CAMPAIGN_KEY: str(campaign.pk + 1)},
    )
    other_batch = receipt(
        ann,
        "DELIVERED",
        metadata={RECIPIENT_KEY: str(ann.pk), wire.RESERVED_METADATA_KEY: "01OTHER"},
    )
    good = receipt(people[1], "DELIVERED")
    assert process() == {State.ORPHAN: 4, State.PROCESSED: 1}
    assert state(unknown) == (
        State.ORPHAN,
        "no recipient #999999 (from the receipt's metadata)",
    )
    assert "names no recipient" in state(unnamed)[1]
    assert f"belongs to campaign {campaign.pk}" in state(elsewhere)[1]
    assert "01OTHER" in state(other_batch)[1]
    assert state(good) == (State.PROCESSED, "")
    assert statuses(campaign) == [R.SUBMITTED, R.DELIVERED, R.SUBMITTED]


@pytest.mark.parametrize("body", ["not json at all", "[1, 2]", '"text"'])
def test_an_unreadable_event_fails_alone_and_the_rest_go_through(
    campaign, people, body
):
    receipt(people[0], "DELIVERED")
    bad = store(body)
    receipt(people[1], "DELIVERED")
    assert process() == {State.PROCESSED: 2, State.FAILED: 1}
    event_state, error = state(bad)
    assert event_state == State.FAILED
    assert error.startswith("not a callback")
    assert statuses(campaign) == [R.DELIVERED, R.DELIVERED, R.SUBMITTED]


def test_an_event_that_breaks_the_bulk_path_is_failed_alone(
    campaign, people, monkeypatch
):
    """Even an unexpected error in one event never blocks its chunk."""
    original = deliveries.advance
    poisoned = people[1].pk

    def advance(row, *args):
        if row.id == poisoned:
            raise RuntimeError("boom")
        return original(row, *args)

    monkeypatch.setattr(deliveries, "advance", advance)
    receipt(people[0], "DELIVERED")
    bad = receipt(people[1], "DELIVERED")
    receipt(people[2], "DELIVERED")
    assert process() == {State.PROCESSED: 2, State.FAILED: 1}
    assert state(bad) == (State.FAILED, "RuntimeError: boom")
    assert statuses(campaign) == [R.DELIVERED, R.SUBMITTED, R.DELIVERED]


def test_a_database_hiccup_leaves_the_events_new_for_the_next_run(
    campaign, people, monkeypatch
):
    """A deadlock or a lost connection is nobody's fault: nothing is FAILED."""

    def deadlock(*args, **kwargs):
        raise OperationalError("deadlock detected")

    event = receipt(people[0], "DELIVERED")
    with monkeypatch.context() as patch:
        patch.setattr(deliveries, "_write_recipients", deadlock)
        with pytest.raises(OperationalError):
            process()
    assert state(event) == (State.NEW, "")
    assert process() == {State.PROCESSED: 1}
    assert statuses(campaign)[0] == R.DELIVERED


def test_receipts_record_when_the_campaign_and_batch_last_heard_from_sinch(
    campaign, people
):
    at = timezone.now() - timedelta(minutes=3)
    event = receipt(people[0], "DELIVERED")
    WebhookEvent.objects.filter(pk=event.pk).update(received_at=at)
    process()
    campaign.refresh_from_db()
    batch = Batch.objects.get(campaign=campaign)
    assert campaign.last_receipt_at == at
    assert batch.last_receipt_at == at
    older = receipt(people[1], "DELIVERED")
    WebhookEvent.objects.filter(pk=older.pk).update(received_at=at - timedelta(1))
    process()
    batch.refresh_from_db()
    assert batch.last_receipt_at == at  # never moved back


def test_timeline_counts_each_status_in_the_minute_sinch_reached_it(campaign, people):
    receipt(people[0], "DELIVERED", at=T0 + timedelta(seconds=10))
    receipt(people[1], "DELIVERED", at=T0 + timedelta(seconds=50))
    receipt(people[2], "DELIVERED", at=T0 + timedelta(seconds=70))
    process()
    rows = CampaignTimeline.objects.filter(
        campaign=campaign, status=R.DELIVERED
    ).order_by("minute")
    # event_time is 50 ms before accepted_time
    assert [(r.minute, r.status, r.count) for r in rows] == [
        (T0, R.DELIVERED, 2),
        (T0 + timedelta(minutes=1), R.DELIVERED, 1),
    ]


def test_a_test_send_is_tracked_but_kept_out_of_the_campaign_figures(campaign):
    batch = Batch.objects.create(
        campaign=campaign,
        sequence=1,
        is_test=True,
        metadata_key="key-test-1",
        status=Batch.Status.ACCEPTED,
        sinch_batch_id="01TESTBATCH",
    )
    seed = Recipient.objects.create(
        campaign=campaign,
        batch=batch,
        index=0,
        is_test=True,
        identity="+14155559999",
        status=R.SUBMITTED,
    )
    receipt(seed, "DELIVERED")
    process()
    seed.refresh_from_db()
    assert seed.status == R.DELIVERED
    assert counters.counts(campaign.pk) == {R.SUBMITTED: 3}
    assert timeline(campaign) == {}
    campaign.refresh_from_db()
    assert campaign.last_receipt_at is None


def test_a_thousand_receipts_take_a_bounded_number_of_queries(
    campaign, django_assert_max_num_queries
):
    batch = Batch.objects.get(campaign=campaign)
    Recipient.objects.bulk_create(
        Recipient(
            campaign=campaign,
            batch=batch,
            index=3 + n,
            identity=f"+1415666{n:04d}",
            status=R.SUBMITTED,
        )
        for n in range(500)
    )
    counters.add(campaign.pk, {R.SUBMITTED: 500})
    people = list(campaign.recipients.filter(index__gte=3).select_related("batch"))
    WebhookEvent.objects.bulk_create(
        receipt(person, status, save=False)
        for person in people
        for status in ("QUEUED_ON_CHANNEL", "DELIVERED")
    )
    with django_assert_max_num_queries(20):
        assert process() == {State.PROCESSED: 1000}
    assert counters.counts(campaign.pk) == {R.SUBMITTED: 3, R.DELIVERED: 500}


# --- batch status updates ---------------------------------------------------------


def test_batch_status_updates_are_kept_as_received(campaign):
    batch = Batch.objects.get(campaign=campaign)
    batch_status(batch, "PROCESSED")
    process()
    batch.refresh_from_db()
    assert batch.remote_status == "PROCESSED"
    batch_status(batch, "READY")  # a late, earlier status: ignored
    process()
    batch.refresh_from_db()
    assert batch.remote_status == "PROCESSED"
    batch_status(batch, "SOMETHING_NEW")  # unknown: never replaces a known one
    process()
    batch.refresh_from_db()
    assert batch.remote_status == "PROCESSED"
    assert batch.last_receipt_at is not None
    Batch.objects.filter(pk=batch.pk).update(remote_status="")
    batch_status(batch, "SOMETHING_NEW")  # nothing known yet: kept as received
    process()
    batch.refresh_from_db()
    assert batch.remote_status == "SOMETHING_NEW"


def test_a_batch_status_update_is_found_by_batch_metadata_too(campaign):
    batch = Batch.objects.get(campaign=campaign)
    Batch.objects.filter(pk=batch.pk).update(sinch_batch_id="")
    batch_status(batch, "SCHEDULED", batch_id="01NOTYETKNOWN")
    process()
    batch.refresh_from_db()
    assert batch.remote_status == "SCHEDULED"


def test_a_status_update_for_an_unknown_batch_is_an_orphan(campaign):
    ghost = Batch(sinch_batch_id="01GHOST", metadata_key="nope")
    event = batch_status(ghost, "PROCESSED")
    process()
    assert state(event) == (State.ORPHAN, "no batch with Sinch id 01GHOST")


def test_a_processing_report_fails_the_recipient_at_that_index(campaign, people):
    batch = Batch.objects.get(campaign=campaign)
    payload = events.processing_report(
        ACCOUNT, batch.sinch_batch_id, 1, "CONTACT_NOT_FOUND", T0.timestamp()
    )
    store(payload)
    process()
    assert statuses(campaign) == [R.SUBMITTED, R.FAILED, R.SUBMITTED]
    bob = Recipient.objects.get(pk=people[1].pk)
    assert bob.failure_code == "CONTACT_NOT_FOUND"


# --- inbound messages ----------------------------------------------------------------


@pytest.fixture
def olga(make_contact):
    return make_contact("+14155550101", consent=IN, first_name="Olga")


def identity_of(contact) -> ChannelIdentity:
    return ChannelIdentity.objects.get(contact=contact)


@pytest.mark.parametrize(
    "text",
    [
        "STOP",
        " stop!",
        "Stop.",
        "UNSUBSCRIBE",
        "opt out",
        "OPT-OUT",
        "StopAll",
        "cancel",
        "END",
        "quit",
        "Revoke",
        "optout",
        "Baja",  # es
        "Arrêt",  # fr
        "STOPP",  # de
    ],
)
def test_a_stop_reply_opts_the_number_out_of_marketing_with_the_message_as_evidence(
    olga, text
):
    event = inbound(text, "14155550101", message_id="01STOPMSG")  # no "+"
    process()
    identity = identity_of(olga)
    assert identity.marketing_consent == OUT
    assert identity.transactional_consent == ConsentState.UNKNOWN
    entry = ConsentEvent.objects.get(identity=identity, kind="OPT_OUT")
    assert entry.source == ConsentEvent.Source.INBOUND_KEYWORD
    assert entry.purpose == "MARKETING"
    assert entry.evidence_wording == text
    assert "01STOPMSG" in entry.evidence_note
    assert "SMS message from +14155550101" in entry.evidence_note
    # Sinch dated it T0, an hour ahead of our clock: counted as received
    # (issue 11, 4a; this used to assert T0).
    assert entry.occurred_at == event.received_at
    reply = InboundMessage.objects.get()
    assert (reply.keyword, reply.contact, reply.event_id) == ("STOP", olga, event.pk)
    assert state(event) == (State.PROCESSED, "")


def test_stop_can_be_set_to_cover_transactional_messages_too(olga, settings):
    settings.INBOUND_STOP_PURPOSES = ["MARKETING", "TRANSACTIONAL"]
    inbound("STOP")
    process()
    identity = identity_of(olga)
    assert (identity.marketing_consent, identity.transactional_consent) == (OUT, OUT)


def test_with_exact_matching_a_sentence_containing_stop_is_a_reply_for_review(
    olga, settings
):
    # Issue 11 (7): by default such a sentence now opts out (see
    # test_replies.py); exact matching keeps the old rule and flags it.
    settings.INBOUND_STOP_MATCH = "exact"
    inbound("please don't stop the discounts")
    process()
    assert identity_of(olga).marketing_consent == IN
    assert InboundMessage.objects.get().keyword == ""
    assert InboundMessage.objects.get().review == "PENDING"


def test_start_after_stop_opts_the_number_back_in(olga):
    inbound("STOP")
    process()
    later = inbound("Unstop")
    WebhookEvent.objects.filter(pk=later.pk).update(
        body=later.body.replace(
            wire.format_time(T0), wire.format_time(T0 + timedelta(hours=1))
        )
    )
    process()
    identity = identity_of(olga)
    assert identity.marketing_consent == IN
    assert list(
        ConsentEvent.objects.filter(identity=identity)
        .order_by("id")
        .values_list("kind", "source")
    ) == [
        ("OPT_IN", "FORM"),
        ("OPT_OUT", "INBOUND_KEYWORD"),
        ("OPT_IN", "INBOUND_KEYWORD"),
    ]


def test_help_is_logged_and_changes_no_consent(olga, caplog):
    caplog.set_level("INFO", logger="campaigns.tracking.replies")
    inbound("help?")
    process()
    assert InboundMessage.objects.get().keyword == "HELP"
    assert ConsentEvent.objects.filter(identity=identity_of(olga)).count() == 1
    # The log names the number masked: logs are kept and copied where
    # erasure cannot reach them.
    assert "HELP from SMS +1********01" in caplog.text
    assert "4155550101" not in caplog.text


def test_a_reply_is_linked_to_the_contact_and_the_campaign_it_answers(campaign, olga):
    # Sinch returns the batch's `_batch_id` in the conversation metadata
    # (issue 11, 8: the campaign key read before is never sent).
    event = inbound(
        "Do you have it in blue?",
        conversation={"_batch_id": "01BATCHSPRING0000000000001"},
    )
    process()
    reply = InboundMessage.objects.get()
    assert (reply.contact, reply.campaign, reply.keyword) == (olga, campaign, "")
    assert reply.campaign_inferred is False
    assert reply.text == "Do you have it in blue?"
    assert state(event) == (State.PROCESSED, "")


def test_a_reply_from_an_unknown_number_is_kept_as_an_orphan(db):
    event = inbound("Who is this?", "+14155550777")
    process()
    reply = InboundMessage.objects.get()
    assert (reply.contact, reply.identity) == (None, "+14155550777")
    assert state(event) == (
        State.ORPHAN,
        "no contact with SMS identity +14155550777",
    )


def test_a_stop_from_an_unknown_number_is_remembered_so_no_import_opts_it_in(db):
    inbound("STOP", "14155550888")
    process()
    identity = ChannelIdentity.objects.get(identity="+14155550888")
    assert identity.marketing_consent == OUT
    assert Contact.objects.filter(pk=identity.contact_id).exists()
    assert InboundMessage.objects.get().contact_id == identity.contact_id


def test_the_same_inbound_message_delivered_twice_is_recorded_once(olga):
    first = inbound("STOP", message_id="01SAMEMSG")
    again = inbound("STOP", message_id="01SAMEMSG")
    process()
    third = inbound("STOP", message_id="01SAMEMSG")
    process()
    assert InboundMessage.objects.count() == 1
    assert ConsentEvent.objects.filter(kind="OPT_OUT").count() == 1
    assert state(first)[0] == State.PROCESSED
    assert state(again)[0] == state(third)[0] == State.IGNORED


def test_replies_are_visible_read_only_in_the_admin(admin_client, olga):
    inbound("Do you have it in blue?")
    process()
    page = admin_client.get("/admin/campaigns/inboundmessage/")
    assert page.status_code == 200
    assert "Do you have it in blue?" in page.content.decode()
    reply = InboundMessage.objects.get()
    detail = admin_client.get(f"/admin/campaigns/inboundmessage/{reply.pk}/change/")
    assert detail.status_code == 200
    assert "Save" not in detail.content.decode()
    assert admin_client.get("/admin/campaigns/inboundmessage/add/").status_code == 403


# --- consent management notifications ----------------------------------------------


def test_sinch_consent_notifications_go_into_the_ledger(olga):
    consent_note("OPT_OUT", "+14155550101")
    process()
    identity = identity_of(olga)
    assert identity.marketing_consent == OUT
    entry = ConsentEvent.objects.get(identity=identity, kind="OPT_OUT")
    assert entry.source == ConsentEvent.Source.API
    assert "req-1" in entry.evidence_note
    consent_note("OPT_IN", "+14155550101")
    process()
    assert ConsentEvent.objects.filter(identity=identity, kind="OPT_IN").count() == 2


def test_a_failed_consent_notification_changes_nothing(olga):
    event = consent_note("OPT_OUT", "+14155550101", status="OPT_OUT_FAILED")
    process()
    assert identity_of(olga).marketing_consent == IN
    assert state(event)[0] == State.IGNORED


def test_an_opt_in_for_an_unknown_number_is_an_orphan(db):
    event = consent_note("OPT_IN", "+14155550999")
    process()
    assert state(event)[0] == State.ORPHAN
    assert not ChannelIdentity.objects.exists()


# --- the task and the safety net ----------------------------------------------------


def test_the_task_drains_every_new_event_in_chunks(campaign, people, monkeypatch):
    monkeypatch.setattr(receipts, "CHUNK", 2)
    for person in people:
        receipt(person, "DELIVERED")
    store('{"unknown_trigger": {}}')
    assert tasks.process_webhook_events() == "1 ignored, 3 processed"
    assert not WebhookEvent.objects.filter(state=State.NEW).exists()
    assert statuses(campaign) == [R.DELIVERED] * 3


def test_the_tick_processes_events_whose_task_never_ran(campaign, people):
    stale = receipt(people[0], "DELIVERED")
    WebhookEvent.objects.filter(pk=stale.pk).update(
        received_at=timezone.now() - timedelta(seconds=30)
    )
    fresh = receipt(people[1], "DELIVERED")  # its own task is on its way
    tasks.tick()
    assert state(stale)[0] == State.PROCESSED
    assert state(fresh)[0] == State.NEW


# --- end to end with the simulator ----------------------------------------------------


@pytest.fixture
def audience(make_template, make_audience, make_campaign):
    template = make_template("Sale", "Hi ${first_name}")
    customers = make_audience("Customers", 12, phone="+1415777{:04d}")
    return make_campaign(template, [customers], "Sale", checked=True)


@pytest.mark.parametrize(
    ("style", "final_status"), [("rest", "PROCESSED"), ("event", "COMPLETED")]
)
def test_the_simulators_receipts_end_in_the_statuses_it_reports(
    audience,
    sinch,
    control,
    live_server,
    monkeypatch,
    launched_campaign,
    style,
    final_status,
):
    """A campaign sent to the simulator, with duplicate and out-of-order
    receipts and some failures: its signed callbacks go over HTTP to the
    webhook, are processed, and every recipient ends in the status the
    simulator last reported for its message. In either style of batch status
    callback (the REST enum with metadata, or the event docs' COMPLETED with
    counts and no metadata) each batch ends final at Sinch."""
    from campaigns.tracking import inbox

    # Processed here, once the simulator has delivered everything: the
    # figures are then read from a settled state.
    monkeypatch.setattr(inbox, "queue_processor", lambda: None)
    control.knobs(
        webhook_url=live_server.url + "/webhooks/sinch",
        # Receipts start once the launch is done.
        processing_delay_s=2.0,
        latency_s=0.05,
        failure_ratio=0.3,
        duplicate_ratio=0.5,
        out_of_order_ratio=0.5,
        batch_status_style=style,
    )
    monkeypatch.setattr(wire, "MAX_RECIPIENTS", 5)
    launched_campaign(audience)
    deadline = time.monotonic() + 15
    while True:
        snapshot = control.state(limit=1000)
        messages = snapshot["messages"]
        answered = not snapshot["callback_backlog"] and all(
            c["http_status"] == 200 for c in snapshot["callbacks"]
        )
        final = all(m["status"] in ("DELIVERED", "FAILED") for m in messages)
        if len(messages) == 12 and final and answered:
            break
        assert time.monotonic() < deadline, snapshot["counters"]
        time.sleep(0.05)
    time.sleep(0.2)
    kinds = {c["kind"] for c in control.state(limit=1000)["callbacks"]}
    assert {"MESSAGE_DELIVERY", "BATCH_STATUS_UPDATE"} <= kinds
    process()
    assert not WebhookEvent.objects.exclude(state=State.PROCESSED).exists()
    expected = {m["identity"]: m["status"] for m in messages}
    got = dict(audience.recipients.values_list("identity", "status"))
    assert got == expected
    assert set(expected.values()) == {"FAILED", "DELIVERED"}
    for batch in Batch.objects.filter(campaign=audience):
        assert batch.remote_status == final_status
    kept = counters.counts(audience.pk)
    assert kept == counters.actual(audience.pk)
    assert sum(kept.values()) == 12


# --- two processors at once ------------------------------------------------------


def test_two_processors_at_once_share_the_events_and_count_each_move_once(
    transactional_db, make_template, make_campaign, monkeypatch
):
    import threading

    from django.db import connection

    if connection.vendor != "postgresql":
        pytest.skip("SQLite serialises writers (IMMEDIATE transactions)")
    campaign = make_campaign(
        make_template("Both", "Hi"), name="Both", status=Campaign.Status.SUBMITTED
    )
    batch = Batch.objects.create(
        campaign=campaign,
        sequence=1,
        metadata_key="key-both-1",
        status=Batch.Status.ACCEPTED,
        sinch_batch_id="01BOTH",
    )
    people = Recipient.objects.bulk_create(
        Recipient(
            campaign=campaign,
            batch=batch,
            index=n,
            identity=f"+1415888{n:04d}",
            status=R.SUBMITTED,
        )
        for n in range(200)
    )
    counters.add(campaign.pk, {R.SUBMITTED: 200})
    for person in people:
        person.batch = batch
    WebhookEvent.objects.bulk_create(
        receipt(person, status, save=False)
        for person in people
        for status in ("QUEUED_ON_CHANNEL", "DELIVERED", "DELIVERED", "READ")
    )
    outcomes = []
    ready = threading.Barrier(2)
    apply = receipts._apply

    def slow_apply(rows):
        time.sleep(0.01)  # so that neither drains everything alone
        return apply(rows)

    def work():
        try:
            ready.wait()
            outcomes.append(receipts.process_pending(chunk=40))
        finally:
            connection.close()

    monkeypatch.setattr(receipts, "_apply", slow_apply)
    threads = [threading.Thread(target=work) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sum(o[State.PROCESSED] for o in outcomes) == 800
    assert all(o[State.PROCESSED] for o in outcomes), "both took a share"
    assert counters.counts(campaign.pk) == {R.READ: 200}
    assert timeline(campaign) == {
        R.QUEUED_ON_CHANNEL: 200,
        R.DELIVERED: 200,
        R.READ: 200,
    }
