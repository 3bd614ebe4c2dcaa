"""Request bodies are built, and response bodies read, as the wire contract says."""

import json
from datetime import UTC, datetime

import pytest

from sinch.errors import SinchProtocolError
from sinch.payloads import (
    AppMessage,
    BatchStatus,
    ChannelIdentity,
    ConsentRecord,
    ContactCreate,
    Recipient,
    SendBatchRequest,
    SendBatchResponse,
    encoded_parameters,
)


def _request(**extra) -> SendBatchRequest:
    return SendBatchRequest(
        message=AppMessage.text('Hi ${first_name} "quoted" \u00e9\n'),
        recipients=[
            Recipient(
                identities=[ChannelIdentity("SMS", "+15551230001")],
                parameters={"first_name": "Jane", "code": 4711},
                message_metadata={"contact_ref": "c-1"},
            ),
            Recipient(contact_id="01HXCONTACT00000000000000A"),
            Recipient(
                identities=[
                    ChannelIdentity("WHATSAPP", "+15551230002"),
                    ChannelIdentity("MESSENGER", "psid-1", app_id="app-x"),
                ],
                conversation_metadata={"k": "v"},
            ),
        ],
        **extra,
    )


def test_send_request_has_the_documented_shape():
    request = _request(
        app_id="01HXAPP",
        batch_metadata={"campaign_id": "spring"},
        message_metadata={"campaign_id": "spring"},
        send_after=datetime(2025, 9, 1, 9, 0, tzinfo=UTC),
        ttl_s=86400,
        channel_priority_order=["SMS"],
        channel_properties={"SMS_SENDER": "+15550001111"},
        processing_strategy="DISPATCH_ONLY",
        callback_url="https://example.com/hook",
        correlation_id="corr-1",
    )
    data = request.to_wire()
    assert data["app_id"] == "01HXAPP"
    assert data["message"] == {
        "text_message": {"text": 'Hi ${first_name} "quoted" \u00e9\n'}
    }
    assert data["recipient_and_params"][0] == {
        "recipient": {
            "identified_by": {
                "channel_identities": [{"channel": "SMS", "identity": "+15551230001"}]
            }
        },
        "parameters": {"first_name": "Jane", "code": "4711"},
        "message_metadata": {"contact_ref": "c-1"},
    }
    assert data["recipient_and_params"][1] == {
        "recipient": {"contact_id": "01HXCONTACT00000000000000A"}
    }
    assert data["send_after"] == "2025-09-01T09:00:00Z"
    assert data["ttl"] == "86400s"
    assert data["batch_metadata"] == {"campaign_id": "spring"}
    assert data["channel_priority_order"] == ["SMS"]
    assert data["processing_strategy"] == "DISPATCH_ONLY"
    assert data["callback_url"] == "https://example.com/hook"
    assert data["correlation_id"] == "corr-1"


def test_fast_json_body_equals_the_dict_form():
    request = _request(batch_metadata={"b": "1"})
    body = request.to_json(app_id="01DEFAULT")
    assert json.loads(body) == {"app_id": "01DEFAULT", **request.to_wire()}
    plain = SendBatchRequest(
        message=AppMessage.text("x"),
        recipients=[
            Recipient(
                identities=[ChannelIdentity("SMS", f"+1555123000{n}")],
                parameters={"name": f'"N\u00e9{n}\n'},
                message_metadata={"ref": str(n)},
            )
            for n in range(3)
        ],
    )
    assert json.loads(plain.to_json()) == plain.to_wire()
    # Fallback identities go in the order given.
    fallback = SendBatchRequest(
        message=AppMessage.text("x"),
        channel_priority_order=["WHATSAPP", "SMS", "VIBERBM"],
        recipients=[
            Recipient(
                identities=[
                    ChannelIdentity("WHATSAPP", "+15551230001"),
                    ChannelIdentity("SMS", "+15551230002"),
                    ChannelIdentity("VIBERBM", "+15551230003", app_id="01OTHER"),
                ],
                parameters={"name": "N"},
                message_metadata={"ref": "1"},
            )
        ],
    )
    data = json.loads(fallback.to_json())
    assert data == fallback.to_wire()
    identities = data["recipient_and_params"][0]["recipient"]["identified_by"]
    assert [c["channel"] for c in identities["channel_identities"]] == [
        "WHATSAPP",
        "SMS",
        "VIBERBM",
    ]
    with_app = _request(app_id="01OWN")
    assert json.loads(with_app.to_json(app_id="01DEFAULT"))["app_id"] == "01OWN"


def test_optional_fields_are_left_out_and_naive_times_refused():
    data = _request().to_wire()
    assert set(data) == {"message", "recipient_and_params"}
    with pytest.raises(ValueError, match="aware"):
        _request(send_after=datetime(2025, 9, 1, 9, 0)).to_wire()
    with pytest.raises(ValueError, match="unknown message kind"):
        AppMessage("fax_message", {})


def test_contacts_and_consents_bodies():
    contact = ContactCreate(
        identities=[ChannelIdentity("SMS", "+15551230001")],
        display_name="Jane",
        external_id="crm-42",
        channel_priority=["SMS"],
    )
    assert contact.to_wire() == {
        "channel_identities": [{"channel": "SMS", "identity": "+15551230001"}],
        "language": "EN_US",
        "display_name": "Jane",
        "external_id": "crm-42",
        "channel_priority": ["SMS"],
    }
    assert ConsentRecord("+15551230001").to_wire() == {
        "identification": "+15551230001",
        "consent_type": "OPT_OUT_ALL",
    }


def test_responses_are_read_into_dataclasses():
    sent = SendBatchResponse.from_wire(
        {"batch_id": "01J6", "send_after": "2025-09-01T09:05:00Z"}
    )
    assert sent.send_after == datetime(2025, 9, 1, 9, 5, tzinfo=UTC)
    status = BatchStatus.from_wire(
        {
            "batch_id": "01J6",
            "meta_data": {"campaign_id": "spring"},
            "status": "SCHEDULED",
            "send_after": "2025-09-01T09:05:00.123456789Z",
        }
    )
    assert status.metadata == {"campaign_id": "spring"}
    assert status.send_after.microsecond == 123456


def test_a_batch_list_is_read_bare_or_wrapped_and_garbage_is_refused():
    item = {"batch_id": "b1", "status": "PROCESSED"}
    assert [b.batch_id for b in BatchStatus.list_from_wire([item])] == ["b1"]
    assert [b.batch_id for b in BatchStatus.list_from_wire({"batches": [item]})] == [
        "b1"
    ]
    assert BatchStatus.list_from_wire({}) == []
    with pytest.raises(SinchProtocolError):
        BatchStatus.list_from_wire("nope")
    with pytest.raises(SinchProtocolError):
        SendBatchResponse.from_wire({"send_after": "2025-09-01T09:05:00Z"})
    with pytest.raises(SinchProtocolError):
        SendBatchResponse.from_wire({"batch_id": "x", "send_after": "tomorrow"})


def test_callback_identities_get_their_plus_back_for_phone_channels():
    assert ChannelIdentity("SMS", "15551230001").e164 == "+15551230001"
    assert ChannelIdentity("SMS", "+15551230001").e164 == "+15551230001"
    assert ChannelIdentity("MESSENGER", "12345").e164 == "12345"


@pytest.mark.parametrize(
    "stored",
    [
        '{"first_name": "Ann", "offer": "20% off"}',  # as the freeze writes them
        '{"offer":"20% off","first_name":"Ann"}',  # compact
        '{"quote": "say \\"hi\\"", "colon": "x: 1"}',  # look-alikes in values
        '{"name": "Zo\\u00e9", "emoji": "\U0001f600"}',
    ],
)
def test_parameters_kept_as_json_text_are_sent_as_they_are(stored):
    encoded = encoded_parameters(stored)
    assert encoded == stored
    request = SendBatchRequest(
        message=AppMessage.text("x"),
        recipients=[
            Recipient(
                identities=[ChannelIdentity("SMS", "+15551230001")],
                parameters=encoded,
                message_metadata={"ref": "1"},
            )
        ],
    )
    body = request.to_json()
    assert stored.encode() in body
    sent = json.loads(body)["recipient_and_params"][0]["parameters"]
    assert sent == json.loads(stored)
    assert json.loads(body) == request.to_wire()
    assert (
        json.loads(request.recipients[0].to_json())
        == request.to_wire()["recipient_and_params"][0]
    )


@pytest.mark.parametrize(
    "stored",
    [
        '{"points": 3}',
        '{"vip": true}',
        '{"middle_name": null}',
        '{"tags": ["a"]}',
        '{"address": {"city": "Paris"}}',
        '{"a": "x", "n" : -1}',
        "[]",
        '{"quote": "a \\"b\\": c"}',  # may be: decoded to be sure
    ],
)
def test_parameters_with_a_value_that_is_not_a_string_are_decoded_first(stored):
    # Sinch takes a map of strings: such text is never sent as it is.
    assert encoded_parameters(stored) is None


def test_empty_parameters_kept_as_json_text_are_left_out():
    request = SendBatchRequest(
        message=AppMessage.text("x"),
        recipients=[
            Recipient(
                identities=[ChannelIdentity("SMS", "+15551230001")],
                parameters=encoded_parameters("{}"),
            )
        ],
    )
    assert "parameters" not in json.loads(request.to_json())["recipient_and_params"][0]
    assert "parameters" not in request.to_wire()["recipient_and_params"][0]
