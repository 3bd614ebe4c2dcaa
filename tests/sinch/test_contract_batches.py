"""Contract: the real client against the simulator over HTTP, every endpoint."""

import time
from datetime import UTC, datetime, timedelta

import pytest

from sinch.errors import SinchAuthError, SinchNotFoundError, SinchValidationError
from sinch.payloads import (
    AppMessage,
    ChannelIdentity,
    ConsentRecord,
    ContactCreate,
    Recipient,
    SendBatchRequest,
)
from tests.sinch.conftest import batch, make_client, recipients


def send_raw(client, **fields):
    """Send a body the typed payloads would not build (through the client)."""
    body = {"app_id": client.app_id, **batch().to_wire(), **fields}
    return client._call(
        "POST", "/messages", body, repeatable=False, operation="send batch"
    )


def violations(caught) -> dict[str, str]:
    return {v.field: v.description for v in caught.value.field_violations}


def test_send_then_read_status_by_id_and_by_metadata(client, control):
    sent = client.send_batch(batch(batch_metadata={"campaign_id": "c-1", "seq": "1"}))
    client.send_batch(batch(batch_metadata={"campaign_id": "c-2"}))
    assert len(sent.batch_id) == 26
    control.wait_for_batch(sent.batch_id, "PROCESSED")
    status = client.get_batch(sent.batch_id)
    assert status.status == "PROCESSED"
    assert status.metadata == {"campaign_id": "c-1", "seq": "1"}
    found = client.batches_by_metadata("campaign_id", "c-1")
    assert [b.batch_id for b in found] == [sent.batch_id]
    assert client.batches_by_metadata("campaign_id", "nope") == []


def test_unknown_batch_is_not_found(client):
    with pytest.raises(SinchNotFoundError):
        client.get_batch("01NOSUCHBATCH0000000000000")


def test_a_thousand_recipients_are_accepted_and_one_more_refused(client):
    assert client.send_batch(batch(1000)).batch_id
    with pytest.raises(SinchValidationError) as caught:
        client.send_batch(batch(1001))
    assert "recipient_and_params" in violations(caught)
    with pytest.raises(SinchValidationError) as caught:
        client.send_batch(batch(0))
    assert "recipient_and_params" in violations(caught)


def test_missing_app_id_is_refused(simulator):
    client = make_client(simulator, app_id="")
    with pytest.raises(SinchValidationError) as caught:
        client.send_batch(batch())
    assert violations(caught) == {"app_id": "app_id is required"}


@pytest.mark.parametrize(
    "message",
    [
        {},
        {"text_message": {"text": "a"}, "media_message": {"url": "https://x/y.jpg"}},
        {"fax_message": {"text": "a"}},
    ],
    ids=["none", "two", "unknown"],
)
def test_a_message_needs_exactly_one_message_type(client, message):
    with pytest.raises(SinchValidationError) as caught:
        send_raw(client, message=message)
    assert "message" in violations(caught)


def test_message_content_is_checked_per_type(client):
    with pytest.raises(SinchValidationError) as caught:
        client.send_batch(
            SendBatchRequest(
                message=AppMessage("media_message", {}), recipients=recipients(1)
            )
        )
    assert "message.media_message.url" in violations(caught)


@pytest.mark.parametrize(
    "field",
    ["batch_metadata", "message_metadata", "conversation_metadata"],
)
def test_the_reserved_batch_id_key_is_refused_in_any_metadata(client, field):
    with pytest.raises(SinchValidationError) as caught:
        client.send_batch(batch(**{field: {"_batch_id": "mine"}}))
    assert f"{field}._batch_id" in violations(caught)
    bad = Recipient(
        identities=[ChannelIdentity("SMS", "+15551230001")],
        message_metadata={"_batch_id": "mine"},
    )
    with pytest.raises(SinchValidationError) as caught:
        client.send_batch(
            SendBatchRequest(message=AppMessage.text("x"), recipients=[bad])
        )
    assert "recipient_and_params[0].message_metadata._batch_id" in violations(caught)


def test_unknown_channels_are_refused(client):
    bad = Recipient(identities=[ChannelIdentity("CARRIER_PIGEON", "+15551230001")])
    with pytest.raises(SinchValidationError) as caught:
        client.send_batch(
            SendBatchRequest(message=AppMessage.text("x"), recipients=[bad])
        )
    assert any("channel" in field for field in violations(caught))
    with pytest.raises(SinchValidationError) as caught:
        client.send_batch(batch(channel_priority_order=["SMS", "FAX"]))
    assert "channel_priority_order[1]" in violations(caught)


@pytest.mark.parametrize("ttl", ["10", "10m", "-5s", "1.5s", "2s"])
def test_malformed_or_too_short_ttl_is_refused(client, ttl):
    with pytest.raises(SinchValidationError) as caught:
        send_raw(client, ttl=ttl)
    assert "ttl" in violations(caught)
    assert client.send_batch(batch(ttl_s=86400)).batch_id


def test_send_after_beyond_seven_days_is_refused(client):
    now = datetime.now(UTC)
    with pytest.raises(SinchValidationError) as caught:
        client.send_batch(batch(send_after=now + timedelta(days=7, minutes=10)))
    assert "send_after" in violations(caught)
    assert client.send_batch(
        batch(send_after=now + timedelta(days=6, hours=23))
    ).batch_id


def test_send_after_is_rounded_up_to_five_minutes_and_echoed(client):
    asked = datetime.now(UTC).replace(second=0, microsecond=0) + timedelta(
        minutes=12, seconds=7
    )
    sent = client.send_batch(batch(send_after=asked))
    assert sent.send_after > asked
    assert sent.send_after.minute % 5 == 0
    assert sent.send_after.second == 0
    assert sent.send_after - asked < timedelta(minutes=5)
    assert client.get_batch(sent.batch_id).send_after == sent.send_after
    assert client.get_batch(sent.batch_id).status == "SCHEDULED"


def test_send_after_within_a_minute_means_now(client, control):
    soon = datetime.now(UTC) + timedelta(seconds=30)
    sent = client.send_batch(batch(send_after=soon))
    assert sent.send_after == soon.replace(microsecond=soon.microsecond // 1000 * 1000)
    control.wait_for_batch(sent.batch_id, "PROCESSED")
    immediate = client.send_batch(batch())
    assert abs(immediate.send_after - datetime.now(UTC)) < timedelta(seconds=5)


def test_scheduled_batch_becomes_ready_then_processed_when_time_comes(client, control):
    sent = client.send_batch(
        batch(send_after=datetime.now(UTC) + timedelta(minutes=30))
    )
    assert client.get_batch(sent.batch_id).status == "SCHEDULED"
    control.knobs(processing_delay_s=60)
    control.post("advance", seconds=36 * 60)
    control.wait_for_batch(sent.batch_id, "READY")
    control.post("advance", seconds=61)
    control.wait_for_batch(sent.batch_id, "PROCESSED")


def test_time_acceleration_lets_scheduled_batches_run_in_real_seconds(client, control):
    control.knobs(time_factor=1200)  # 20 simulated minutes per real second
    sent = client.send_batch(
        batch(send_after=datetime.now(UTC) + timedelta(minutes=10))
    )
    assert client.get_batch(sent.batch_id).status == "SCHEDULED"
    control.wait_for_batch(sent.batch_id, "PROCESSED", timeout=5)


def test_cancel_stops_a_scheduled_batch_and_nothing_else(client, control):
    later = client.send_batch(batch(send_after=datetime.now(UTC) + timedelta(hours=2)))
    now = client.send_batch(batch())
    client.cancel_batch(later.batch_id)
    client.cancel_batch(now.batch_id)
    client.cancel_batch("01NOSUCHBATCH0000000000000")  # 200 all the same
    # Asynchronous, like Sinch: still SCHEDULED until the cancel takes effect.
    assert client.get_batch(later.batch_id).status == "SCHEDULED"
    control.wait_for_batch(later.batch_id, "CANCELLED")
    assert client.get_batch(later.batch_id).status == "CANCELLED"
    control.wait_for_batch(now.batch_id, "PROCESSED")
    client.cancel_batch(now.batch_id)
    assert client.get_batch(now.batch_id).status == "PROCESSED"


def test_a_cancel_takes_effect_only_after_the_cancel_delay(client, control):
    control.knobs(cancel_delay_s=600)
    later = client.send_batch(batch(send_after=datetime.now(UTC) + timedelta(hours=2)))
    client.cancel_batch(later.batch_id)
    control.post("advance", seconds=300)
    assert client.get_batch(later.batch_id).status == "SCHEDULED"
    control.post("advance", seconds=301)
    control.wait_for_batch(later.batch_id, "CANCELLED")


def test_a_cancel_that_silently_fails_leaves_the_batch_scheduled(client, control):
    control.knobs(cancel_failure_ratio=1, cancel_delay_s=0)
    later = client.send_batch(batch(send_after=datetime.now(UTC) + timedelta(hours=2)))
    client.cancel_batch(later.batch_id)  # answered 200 all the same
    control.post("advance", seconds=60)
    time.sleep(0.2)
    assert client.get_batch(later.batch_id).status == "SCHEDULED"
    control.knobs(cancel_failure_ratio=0)
    client.cancel_batch(later.batch_id)
    control.wait_for_batch(later.batch_id, "CANCELLED")


def test_cancel_comes_too_late_once_the_time_has_passed(client, control):
    sent = client.send_batch(
        batch(send_after=datetime.now(UTC) + timedelta(minutes=10))
    )
    control.knobs(processing_delay_s=3600)
    control.post("advance", seconds=20 * 60)
    control.wait_for_batch(sent.batch_id, "READY")
    client.cancel_batch(sent.batch_id)
    assert client.get_batch(sent.batch_id).status == "READY"


def test_contacts_are_created_and_deleted_with_callbacks(client, receiver):
    client.create_contacts(
        [
            ContactCreate(
                identities=[ChannelIdentity("SMS", "+15551230001")], display_name="Jane"
            ),
            ContactCreate(identities=[ChannelIdentity("SMS", "+15551230002")]),
        ]
    )
    bodies = receiver.wait_for(
        lambda b: sum("contact_create_notification" in x for x in b) == 2
    )
    created = {
        x["contact_create_notification"]["contact"]["display_name"]: x[
            "contact_create_notification"
        ]["contact"]
        for x in bodies
    }
    assert set(created) == {"Jane", "Unknown"}  # Sinch's default name
    jane = created["Jane"]
    assert jane["channel_identities"][0]["identity"] == "+15551230001"
    client.delete_contacts([jane["id"], "01NOSUCHCONTACT00000000000"])
    bodies = receiver.wait_for(
        lambda b: any("contact_delete_notification" in x for x in b)
    )
    deleted = [
        x["contact_delete_notification"]
        for x in bodies
        if "contact_delete_notification" in x
    ]
    assert [d["contact"]["id"] for d in deleted] == [jane["id"]]
    with pytest.raises(SinchValidationError):
        client.create_contacts([])
    with pytest.raises(SinchValidationError):
        client.create_contacts([ContactCreate(identities=[], language="")])


def test_consent_records_are_inserted_and_acknowledged_with_a_batch_id(client, control):
    answer = client.insert_consents(
        [
            ConsentRecord("+15551230001"),
            ConsentRecord("+15551230002", "OPT_OUT_MARKETING"),
        ]
    )
    assert len(answer.batch_id) == 26
    assert control.state()["opt_outs"] == {
        "15551230001": ["OPT_OUT_ALL"],
        "15551230002": ["OPT_OUT_MARKETING"],
    }
    with pytest.raises(SinchValidationError):
        client.insert_consents([ConsentRecord("+15551230001", "OPT_IN")])


def test_a_project_the_key_does_not_own_is_refused(simulator):
    client = make_client(simulator, project_id="someone-elses-project")
    with pytest.raises(SinchAuthError) as caught:
        client.get_batch("b1")
    assert caught.value.status == 403
    assert caught.value.body.status == "PERMISSION_DENIED"
