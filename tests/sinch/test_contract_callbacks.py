"""Contract: the simulator's callbacks are signed, shaped as Sinch's, and
retried; our verifier and parser accept them."""

import itertools
import json
from datetime import UTC, datetime, timedelta

from sinch import signatures
from sinch.callbacks import (
    BatchProcessingReport,
    BatchStatusUpdate,
    ConsentNotification,
    DeliveryReport,
    InboundMessage,
    parse_callback,
)
from sinch.payloads import AppMessage, ChannelIdentity, Recipient, SendBatchRequest
from tests.sinch.conftest import WEBHOOK_SECRET, batch


def receipts(bodies, status=None):
    found = [b for b in bodies if "message_delivery_report" in b]
    if status:
        found = [b for b in found if b["message_delivery_report"]["status"] == status]
    return found


def test_receipts_are_signed_and_verify_with_our_verifier(client, receiver):
    client.send_batch(batch(2))
    receiver.wait_for(lambda b: len(receipts(b, "DELIVERED")) == 2)
    for headers, body in receiver.requests:
        assert signatures.verify(headers, body, [WEBHOOK_SECRET]).ok
        assert not signatures.verify(headers, body, ["another-secret"]).ok
        assert headers["x-sinch-webhook-signature-algorithm"] == "HmacSHA256"


def test_receipt_envelope_and_metadata_string_as_sinch_sends_them(client, receiver):
    request = SendBatchRequest(
        message=AppMessage.text("Hi ${first_name}"),
        recipients=[
            Recipient(
                identities=[ChannelIdentity("SMS", "+15551230001")],
                parameters={"first_name": "Jane"},
                message_metadata={"contact_ref": "c-1", "campaign_id": "override"},
            )
        ],
        message_metadata={"campaign_id": "spring", "source": "test"},
        correlation_id="corr-9",
    )
    sent = client.send_batch(request)
    bodies = receiver.wait_for(lambda b: len(receipts(b, "DELIVERED")) == 1)
    body = receipts(bodies, "DELIVERED")[0]
    assert set(body) >= {"app_id", "accepted_time", "event_time", "project_id"}
    assert body["correlation_id"] == "corr-9"
    report = body["message_delivery_report"]
    assert set(report) >= {
        "message_id",
        "conversation_id",
        "status",
        "channel_identity",
        "contact_id",
        "metadata",
        "processing_mode",
    }
    assert isinstance(report["metadata"], str)
    assert json.loads(report["metadata"]) == {
        "campaign_id": "override",
        "source": "test",
        "contact_ref": "c-1",
        "_batch_id": sent.batch_id,
    }
    assert report["channel_identity"] == {
        "channel": "SMS",
        "identity": "15551230001",
        "app_id": "",
    }
    parsed = parse_callback(json.dumps(body))
    assert isinstance(parsed, DeliveryReport)
    assert parsed.batch_id == sent.batch_id
    assert parsed.channel_identity.e164 == "+15551230001"


def test_each_recipient_gets_its_own_substituted_message(client, control):
    sent = client.send_batch(batch(3))
    control.wait_for_batch(sent.batch_id, "PROCESSED")
    messages = control.state(batch_id=sent.batch_id)["messages"]
    assert [m["rendered"]["text_message"]["text"] for m in messages] == [
        "Hi P0",
        "Hi P1",
        "Hi P2",
    ]
    assert len({m["message_id"] for m in messages}) == 3


def test_batch_status_updates_follow_the_batch(client, receiver, control):
    sent = client.send_batch(batch(1))
    bodies = receiver.wait_for(
        lambda b: (
            [
                x["batch_status_update"]["status"]
                for x in b
                if "batch_status_update" in x
            ]
            == ["READY", "PROCESSED"]
        )
    )
    update = parse_callback(json.dumps(bodies[0]))
    assert isinstance(update, BatchStatusUpdate)
    assert update.batch_id == sent.batch_id


def test_delivery_goes_queued_delivered_read_on_channels_with_read_receipts(
    client, receiver, control
):
    control.knobs(read_ratio=1.0)
    # A free-form message on WhatsApp: the person wrote first (the window).
    control.post("inbound", channel="WHATSAPP", identity="+15551230001", text="hi")
    client.send_batch(
        SendBatchRequest(
            message=AppMessage.text("x"),
            recipients=[
                Recipient(identities=[ChannelIdentity("WHATSAPP", "+15551230001")])
            ],
        )
    )
    bodies = receiver.wait_for(lambda b: len(receipts(b)) == 3)
    # Callbacks are posted by several threads, and Sinch promises no order of
    # arrival either: the receipts' event times give the order of events.
    reports = [parse_callback(json.dumps(r)) for r in receipts(bodies)]
    in_time = sorted(reports, key=lambda r: r.envelope.event_time)
    assert [r.status for r in in_time] == ["QUEUED_ON_CHANNEL", "DELIVERED", "READ"]


def test_failures_carry_realistic_reasons(client, receiver, control):
    control.knobs(failure_ratio=1.0, failure_reasons={"RECIPIENT_NOT_REACHABLE": 1})
    client.send_batch(batch(2))
    bodies = receiver.wait_for(lambda b: len(receipts(b, "FAILED")) == 2)
    reason = receipts(bodies, "FAILED")[0]["message_delivery_report"]["reason"]
    assert reason["code"] == "RECIPIENT_NOT_REACHABLE"
    assert reason["sub_code"] == "UNSPECIFIED_SUB_CODE"
    assert reason["description"]


def test_an_invalid_phone_number_fails_without_being_queued(client, receiver):
    client.send_batch(
        SendBatchRequest(
            message=AppMessage.text("x"),
            recipients=[Recipient(identities=[ChannelIdentity("SMS", "12")])],
        )
    )
    bodies = receiver.wait_for(lambda b: len(receipts(b, "FAILED")) == 1)
    assert len(receipts(bodies)) == 1
    reason = receipts(bodies)[0]["message_delivery_report"]["reason"]["code"]
    assert reason == "RECIPIENT_INVALID_CHANNEL_IDENTITY"


def test_a_failed_channel_switches_to_the_next_in_priority_order(
    client, receiver, control
):
    control.knobs(failure_ratio=0.0)
    client.send_batch(
        SendBatchRequest(
            message=AppMessage.text("x"),
            recipients=[
                Recipient(
                    identities=[
                        ChannelIdentity("SMS", "+15551230001"),
                        ChannelIdentity("WHATSAPP", "not-a-number"),
                    ]
                )
            ],
            channel_priority_order=["WHATSAPP", "SMS"],
        )
    )
    bodies = receiver.wait_for(lambda b: len(receipts(b, "DELIVERED")) == 1)
    trail = [
        (
            r["message_delivery_report"]["status"],
            r["message_delivery_report"]["channel_identity"]["channel"],
        )
        for r in receipts(bodies)
    ]
    assert trail == [
        ("SWITCHING_CHANNEL", "WHATSAPP"),
        ("QUEUED_ON_CHANNEL", "SMS"),
        ("DELIVERED", "SMS"),
    ]


def test_callbacks_are_retried_with_growing_backoff_while_the_webhook_fails(
    receiver, control
):
    receiver.statuses = [500, 503, 502]
    control.post("inbound", identity="+15551230000", text="hello")
    receiver.wait_for(lambda b: len(b) == 4)
    bodies = [body for _, body in receiver.requests]
    assert len(set(bodies)) == 1  # the same callback, four times
    nonces = {h["x-sinch-webhook-signature-nonce"] for h, _ in receiver.requests}
    assert len(nonces) == 4  # each delivery signed afresh
    times = receiver.times
    gaps = [later - earlier for earlier, later in itertools.pairwise(times)]
    assert gaps[0] < gaps[1] < gaps[2]
    control.wait_for_counter("callbacks_delivered", 1)
    assert control.state()["callbacks"][0]["attempts"] == 4


def test_a_callback_is_given_up_after_the_attempt_limit(receiver, control):
    control.knobs(callback_max_attempts=2)
    receiver.statuses = [500, 500]
    control.post("inbound", identity="+15551230000", text="hello")
    control.wait_for_counter("callbacks_failed", 1)
    assert [c["status"] for c in control.state()["callbacks"]] == ["failed"]
    assert len(receiver.requests) == 2


def test_duplicate_and_dropped_callbacks_on_demand(client, receiver, control):
    control.knobs(duplicate_ratio=1.0)
    client.send_batch(batch(1))
    bodies = receiver.wait_for(lambda b: len(receipts(b, "DELIVERED")) == 2)
    assert receipts(bodies, "DELIVERED")[0] == receipts(bodies, "DELIVERED")[1]
    control.knobs(duplicate_ratio=0.0, drop_ratio=1.0)
    before = len(receiver.requests)
    client.send_batch(batch(1))
    control.wait_for_counter("callbacks_dropped", 4)  # READY, PROCESSED, 2 receipts
    assert len(receiver.requests) == before


def test_out_of_order_receipts_on_demand(client, receiver, control):
    control.knobs(out_of_order_ratio=1.0, latency_s=0.05)
    client.send_batch(batch(1))
    bodies = receiver.wait_for(lambda b: len(receipts(b)) == 2)
    statuses = [r["message_delivery_report"]["status"] for r in receipts(bodies)]
    assert statuses == ["DELIVERED", "QUEUED_ON_CHANNEL"]
    message = control.state()["messages"][0]
    assert message["status"] == "DELIVERED"


def test_inbound_stop_on_demand_carries_the_batch_of_the_last_message(
    client, receiver, control
):
    control.knobs(processing_mode="CONVERSATION")
    sent = client.send_batch(batch(1, conversation_metadata={"campaign_id": "spring"}))
    receiver.wait_for(lambda b: len(receipts(b, "DELIVERED")) == 1)
    control.post("inbound", identity="+15551230000", text="STOP")
    bodies = receiver.wait_for(lambda b: any("message" in x for x in b))
    inbound = parse_callback(json.dumps(next(x for x in bodies if "message" in x)))
    assert isinstance(inbound, InboundMessage)
    assert inbound.text == "STOP"
    assert inbound.channel_identity.e164 == "+15551230000"
    assert inbound.batch_id == sent.batch_id
    assert inbound.conversation_metadata["campaign_id"] == "spring"


def test_in_dispatch_mode_replies_carry_no_batch_unless_retention_is_on(
    client, receiver, control
):
    client.send_batch(batch(1))
    receiver.wait_for(lambda b: len(receipts(b, "DELIVERED")) == 1)
    control.post("inbound", identity="+15551230000", text="hello")
    bodies = receiver.wait_for(lambda b: any("message" in x for x in b))
    inbound = parse_callback(json.dumps(next(x for x in bodies if "message" in x)))
    assert inbound.batch_id == ""
    control.knobs(dispatch_retention=True)
    control.post("inbound", identity="+15551230000", text="hello again")
    bodies = receiver.wait_for(lambda b: sum("message" in x for x in b) == 2)
    second = parse_callback(json.dumps([x for x in bodies if "message" in x][1]))
    assert second.batch_id


def test_stop_with_consent_management_opts_out_and_blocks_later_sends(
    client, receiver, control
):
    control.knobs(consent_management="primary")
    control.post("inbound", identity="+15551230000", text="stop")
    bodies = receiver.wait_for(lambda b: any("opt_out_notification" in x for x in b))
    note = parse_callback(
        json.dumps(next(x for x in bodies if "opt_out_notification" in x))
    )
    assert isinstance(note, ConsentNotification)
    assert note.kind == "OPT_OUT"
    client.send_batch(batch(1))
    bodies = receiver.wait_for(lambda b: len(receipts(b, "FAILED")) == 1)
    reason = receipts(bodies, "FAILED")[0]["message_delivery_report"]["reason"]["code"]
    assert reason == "RECIPIENT_NOT_OPTED_IN"


def test_unknown_contact_recipients_are_reported_in_a_processing_report(
    client, receiver, control
):
    control.knobs(processing_mode="CONVERSATION")
    client.send_batch(
        SendBatchRequest(
            message=AppMessage.text("x"),
            recipients=[
                Recipient(identities=[ChannelIdentity("SMS", "+15551230001")]),
                Recipient(contact_id="01NOSUCHCONTACT00000000000"),
            ],
        )
    )
    bodies = receiver.wait_for(lambda b: any("batch_processing_report" in x for x in b))
    report = parse_callback(
        json.dumps(next(x for x in bodies if "batch_processing_report" in x))
    )
    assert isinstance(report, BatchProcessingReport)
    assert report.failures[0].message_index == 1
    assert report.failures[0].reason.code == "CONTACT_NOT_FOUND"


def test_reset_forgets_everything(client, control):
    client.send_batch(batch(1))
    control.knobs(failure_ratio=0.5)
    control.post("reset")
    state = control.state()
    assert state["batches"] == []
    assert state["counters"] == {}
    assert control.knobs()["failure_ratio"] == 0


def test_messages_drain_and_callbacks_flow_at_the_configured_rates(
    client, receiver, control
):
    control.knobs(drain_rate=20, callback_rate=40)
    client.send_batch(batch(6))
    receiver.wait_for(lambda b: len(receipts(b, "DELIVERED")) == 6)
    queued = [
        t
        for t, (_, body) in zip(receiver.times, receiver.requests, strict=True)
        if b'"QUEUED_ON_CHANNEL"' in body
    ]
    # 6 messages at 20 a second: the last leaves 0.25 s after the first.
    assert queued[-1] - queued[0] >= 0.2
    # 14 callbacks (2 status updates, 12 receipts) at 40 a second.
    assert receiver.times[-1] - receiver.times[0] >= 13 / 40 - 0.05


def test_a_cancelled_batch_reports_scheduled_then_cancelled(client, receiver):
    later = datetime.now(UTC) + timedelta(hours=1)
    sent = client.send_batch(batch(1, send_after=later))
    client.cancel_batch(sent.batch_id)
    bodies = receiver.wait_for(
        lambda b: sum("batch_status_update" in x for x in b) == 2
    )
    statuses = {x["batch_status_update"]["status"] for x in bodies}
    assert statuses == {"SCHEDULED", "CANCELLED"}
