"""Every callback kind the wire contract lists is parsed; unknown ones kept raw."""

import json

import pytest

from sinch.callbacks import (
    BatchProcessingReport,
    BatchStatusUpdate,
    ConsentNotification,
    ContactNotification,
    DeliveryReport,
    InboundMessage,
    UnknownCallback,
    parse_callback,
)

ENVELOPE = {
    "app_id": "01HXAPP0000000000000000000",
    "project_id": "c36f3d3d-1513-2edd-ae42-11995557ff61",
    "accepted_time": "2025-09-01T09:00:05.311Z",
    "event_time": "2025-09-01T09:00:05.120123456Z",
}


def _body(key, item, **extra) -> bytes:
    return json.dumps({**ENVELOPE, key: item, **extra}).encode()


def test_delivery_report_reads_metadata_string_and_batch_id():
    report = parse_callback(
        _body(
            "message_delivery_report",
            {
                "message_id": "01J6Z8R0000000000000000001",
                "conversation_id": "",
                "status": "FAILED",
                "channel_identity": {
                    "channel": "SMS",
                    "identity": "15551230001",
                    "app_id": "",
                },
                "contact_id": "",
                "reason": {
                    "code": "RECIPIENT_NOT_REACHABLE",
                    "description": "unreachable",
                    "sub_code": "UNSPECIFIED_SUB_CODE",
                },
                "metadata": '{"campaign_id":"spring","_batch_id":"01J6Z8Q3"}',
                "processing_mode": "DISPATCH",
            },
            message_metadata="",
        )
    )
    assert isinstance(report, DeliveryReport)
    assert report.kind == "MESSAGE_DELIVERY"
    assert report.status == "FAILED"
    assert report.batch_id == "01J6Z8Q3"
    assert report.metadata == {"campaign_id": "spring", "_batch_id": "01J6Z8Q3"}
    assert report.reason.code == "RECIPIENT_NOT_REACHABLE"
    assert report.channel_identity.e164 == "+15551230001"
    assert report.envelope.app_id == ENVELOPE["app_id"]
    assert report.envelope.event_time.microsecond == 120123
    assert report.dedupe_key == "MESSAGE_DELIVERY:01J6Z8R0000000000000000001:FAILED:SMS"


def test_delivery_report_with_unreadable_metadata_keeps_going():
    report = parse_callback(
        _body("message_delivery_report", {"message_id": "m", "metadata": "not json"})
    )
    assert report.metadata == {}
    assert report.batch_id == ""
    assert report.reason is None


def test_batch_status_update_keeps_any_status_string():
    for status in ("PROCESSED", "COMPLETED", "SOMETHING_NEW"):
        update = parse_callback(
            _body(
                "batch_status_update",
                {"batch_id": "b1", "status": status, "meta_data": {"c": "1"}},
            )
        )
        assert isinstance(update, BatchStatusUpdate)
        assert (update.batch_id, update.status, update.metadata) == (
            "b1",
            status,
            {"c": "1"},
        )
        assert update.dedupe_key == f"BATCH_STATUS_UPDATE:b1:{status}"


def test_batch_processing_report_in_both_guessed_shapes():
    single = parse_callback(
        _body(
            "batch_processing_report",
            {
                "batch_id": "b1",
                "message_index": 7,
                "reason": {"code": "CONTACT_NOT_FOUND"},
            },
        )
    )
    assert isinstance(single, BatchProcessingReport)
    assert single.failures[0].message_index == 7
    assert single.failures[0].reason.code == "CONTACT_NOT_FOUND"
    listed = parse_callback(
        _body(
            "batch_report_notification",
            {
                "batch_id": "b2",
                "failed_messages": [{"message_index": 1}, {"message_index": 2}],
            },
        )
    )
    assert isinstance(listed, BatchProcessingReport)
    assert [f.message_index for f in listed.failures] == [1, 2]


def test_inbound_stop_carries_the_conversation_metadata_and_batch():
    inbound = parse_callback(
        _body(
            "message",
            {
                "id": "01J6Z9A0000000000000000000",
                "direction": "TO_APP",
                "contact_message": {"text_message": {"text": "STOP"}},
                "channel_identity": {"channel": "SMS", "identity": "15551230001"},
                "sender_id": "15550001111",
            },
            message_metadata='{"campaign_id":"spring","_batch_id":"01J6Z8Q3"}',
        )
    )
    assert isinstance(inbound, InboundMessage)
    assert inbound.kind == "MESSAGE_INBOUND"
    assert inbound.text == "STOP"
    assert inbound.batch_id == "01J6Z8Q3"
    assert inbound.channel_identity.e164 == "+15551230001"
    assert inbound.sender_id == "15550001111"
    media = parse_callback(
        _body(
            "message", {"id": "m2", "contact_message": {"media_message": {"url": "u"}}}
        )
    )
    assert media.text == ""
    assert media.contact_message == {"media_message": {"url": "u"}}


@pytest.mark.parametrize(
    ("key", "kind"),
    [("opt_out_notification", "OPT_OUT"), ("opt_in_notification", "OPT_IN")],
)
def test_opt_in_and_opt_out_notifications(key, kind):
    note = parse_callback(
        _body(
            key,
            {
                "request_id": "r1",
                "contact_id": "",
                "channel": "SMS",
                "identity": "15551230001",
                "status": f"{kind}_SUCCEEDED",
            },
        )
    )
    assert isinstance(note, ConsentNotification)
    assert note.kind == kind
    assert note.channel_identity.e164 == "+15551230001"
    assert note.status == f"{kind}_SUCCEEDED"


@pytest.mark.parametrize("kind", ["CREATE", "DELETE", "MERGE", "UPDATE"])
def test_contact_notifications(kind):
    note = parse_callback(
        _body(
            f"contact_{kind.lower()}_notification",
            {"contact": {"id": "c1", "display_name": "J"}},
        )
    )
    assert isinstance(note, ContactNotification)
    assert note.kind == f"CONTACT_{kind}"
    assert note.contact_id == "c1"


def test_unknown_kinds_are_kept_raw_and_never_raise():
    raw = {**ENVELOPE, "smart_conversation_notification": {"x": 1}, "extra": [1, 2]}
    unknown = parse_callback(json.dumps(raw).encode())
    assert isinstance(unknown, UnknownCallback)
    assert unknown.kind == "UNKNOWN"
    assert unknown.raw == raw
    assert unknown.dedupe_key == parse_callback(raw).dedupe_key
    assert parse_callback(b"{}").kind == "UNKNOWN"
    with pytest.raises(ValueError, match="JSON object"):
        parse_callback(b"[1, 2]")
    with pytest.raises(ValueError, match="Expecting value"):
        parse_callback(b"not json")
