"""Contract: every plausible variant of the shapes Sinch has not confirmed is
read, and the simulator produces each of them on a knob (sinch.wire names
them, sinch.variants reads them)."""

import json
from datetime import UTC, datetime, timedelta

import pytest

from sinch import wire
from sinch.callbacks import (
    BatchProcessingReport,
    BatchStatusUpdate,
    UnknownCallback,
    parse_callback,
)
from sinch.errors import SinchProtocolError
from sinch.payloads import (
    AppMessage,
    BatchStatus,
    ChannelIdentity,
    ContactCreate,
    Recipient,
    SendBatchRequest,
)
from sinch.variants import batch_status_may_replace
from tests.sinch.conftest import batch

ONE = {
    "batch_id": "01B",
    "status": "PROCESSED",
    "meta_data": {"k": "v"},
    "send_after": "2025-09-01T09:00:00Z",
}
TWO = {**ONE, "batch_id": "01C"}

# --- the by-metadata list ---------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "ids"),
    [
        ([ONE, TWO], ["01B", "01C"]),  # a bare array (the .NET fork)
        ([], []),
        (ONE, ["01B"]),  # one batch object (the API page)
        ({}, []),  # the object shape with nothing found
        ({"batches": [ONE, TWO]}, ["01B", "01C"]),
        ({"anything": [ONE]}, ["01B"]),  # a holder under any key
        ({"items": [ONE], "next_page_token": ""}, ["01B"]),
        ({"batch": ONE}, ["01B"]),  # one batch object under a key
        ({"data": [ONE], "errors": []}, ["01B"]),
        ({"next_page_token": ""}, []),
    ],
)
def test_the_list_by_metadata_is_read_in_every_plausible_shape(body, ids):
    assert [b.batch_id for b in BatchStatus.list_from_wire(body)] == ids


@pytest.mark.parametrize(
    "body", ["PROCESSED", 3, None, {"a": [ONE], "b": [TWO]}, {"a": [1], "b": [2]}]
)
def test_a_list_by_metadata_no_shape_fits_is_a_protocol_error(body):
    with pytest.raises(SinchProtocolError, match="unreadable batch list"):
        BatchStatus.list_from_wire(body)


@pytest.mark.parametrize("shape", ["list", "object"])
def test_the_client_reads_the_simulators_list_in_either_shape(client, control, shape):
    control.knobs(metadata_list_shape=shape)
    first = client.send_batch(batch(1, batch_metadata={"campaign_id": "c-1"}))
    second = client.send_batch(batch(1, batch_metadata={"campaign_id": "c-1"}))
    client.send_batch(batch(1, batch_metadata={"campaign_id": "c-2"}))
    found = client.batches_by_metadata("campaign_id", "c-2")
    assert len(found) == 1
    assert found[0].metadata == {"campaign_id": "c-2"}
    both = client.batches_by_metadata("campaign_id", "c-1")
    assert {b.batch_id for b in both} == {first.batch_id, second.batch_id}
    assert client.batches_by_metadata("campaign_id", "none") == []


def test_the_object_shape_is_what_the_api_page_shows(simulator, control):
    """One batch: its fields at the top level; none: {}; several: a holder."""
    import requests

    from tests.sinch.conftest import make_client

    client = make_client(simulator)
    control.knobs(metadata_list_shape="object")
    sent = client.send_batch(batch(1, batch_metadata={"campaign_id": "c-9"}))
    token = client._tokens.token()  # the raw body, as Sinch would send it

    def raw(value):
        response = requests.get(
            f"{simulator.url}/v1/projects/{client.project_id}/messages",
            params={"metadataKey": "campaign_id", "metadataValue": value},
            headers={"Authorization": f"Bearer {token}"},
            timeout=5,
        )
        assert response.status_code == 200
        return response.json()

    assert raw("c-9")["batch_id"] == sent.batch_id
    assert raw("none") == {}
    client.send_batch(batch(1, batch_metadata={"campaign_id": "c-9"}))
    assert len(raw("c-9")["batches"]) == 2


# --- batch callback keys ----------------------------------------------------------


def _body(key: str, item: dict) -> str:
    return json.dumps({"app_id": "A", "project_id": "P", key: item})


@pytest.mark.parametrize("key", wire.BATCH_STATUS_UPDATE_KEYS)
def test_every_status_update_key_variant_is_read_as_a_status_update(key):
    update = parse_callback(_body(key, {"batch_id": "01B", "status": "completed"}))
    assert isinstance(update, BatchStatusUpdate)
    assert (update.batch_id, update.status) == ("01B", "COMPLETED")


@pytest.mark.parametrize("key", wire.BATCH_PROCESSING_REPORT_KEYS)
def test_every_processing_report_key_variant_is_read_as_a_report(key):
    report = parse_callback(_body(key, {"batch_id": "01B", "message_index": 3}))
    assert isinstance(report, BatchProcessingReport)
    assert [f.message_index for f in report.failures] == [3]


@pytest.mark.parametrize(
    "key", ["batch_status_updated", "batch_delivery_summary", "batch_whatever"]
)
def test_an_unknown_batch_key_is_kept_as_unknown_never_as_a_report(key):
    """Even with a batch_id and a message_index, an unknown key is not
    guessed to be a processing report (it would fail someone)."""
    event = parse_callback(_body(key, {"batch_id": "01B", "message_index": 0}))
    assert isinstance(event, UnknownCallback)
    assert event.kind == wire.UNKNOWN_BATCH_CALLBACK_KIND


@pytest.mark.parametrize("name", wire.BATCH_METADATA_FIELDS)
def test_a_status_update_carries_its_metadata_under_any_name(name):
    for meta in ({"campaign_batch": "k1"}, '{"campaign_batch": "k1"}'):
        update = parse_callback(
            _body("batch_status_update", {"batch_id": "01B", name: meta})
        )
        assert update.metadata == {"campaign_batch": "k1"}


@pytest.mark.parametrize(
    ("entry", "index", "identity"),
    [
        ({"message_index": 2}, 2, None),
        ({"index": "4"}, 4, None),
        ({"recipient_index": 0}, 0, None),
        (
            {
                "message_index": 1,
                "channel_identity": {"channel": "SMS", "identity": "1555"},
            },
            1,
            ("SMS", "1555"),
        ),
        (
            {
                "message_index": 1,
                "recipient": {
                    "identified_by": {
                        "channel_identities": [{"channel": "RCS", "identity": "+1555"}]
                    }
                },
            },
            1,
            ("RCS", "+1555"),
        ),
        ({"message_index": 5, "identity": "+1555"}, 5, ("", "+1555")),
    ],
)
def test_a_processing_report_entry_in_every_guessed_shape(entry, index, identity):
    for item in (
        {"batch_id": "01B", **entry},
        {"batch_id": "01B", "failures": [entry]},
    ):
        report = parse_callback(_body("batch_processing_report", item))
        (failure,) = report.failures
        assert failure.message_index == index
        got = failure.channel_identity
        assert (tuple(got[:2]) if got else None) == identity


# --- the simulator's styles and keys ----------------------------------------------


def statuses(bodies, key="batch_status_update"):
    return [b[key]["status"] for b in bodies if key in b]


def test_the_rest_style_sends_the_rest_enum_with_metadata(client, receiver, control):
    later = datetime.now(UTC) + timedelta(seconds=90)
    control.knobs(time_factor=200)
    client.send_batch(batch(1, send_after=later, batch_metadata={"c": "1"}))
    bodies = receiver.wait_for(lambda b: len(statuses(b)) == 3)
    # Delivered by parallel workers: in any order.
    assert sorted(statuses(bodies)) == ["PROCESSED", "READY", "SCHEDULED"]
    updates = [b["batch_status_update"] for b in bodies if "batch_status_update" in b]
    assert all(u["meta_data"] == {"c": "1"} for u in updates)


def test_the_event_style_sends_only_how_the_batch_ended(client, receiver, control):
    later = datetime.now(UTC) + timedelta(seconds=90)
    control.knobs(time_factor=200, batch_status_style="event")
    sent = client.send_batch(batch(3, send_after=later, batch_metadata={"c": "1"}))
    bodies = receiver.wait_for(lambda b: statuses(b) == ["COMPLETED"])
    (item,) = [b["batch_status_update"] for b in bodies if "batch_status_update" in b]
    assert item["batch_id"] == sent.batch_id
    assert (item["total_messages"], item["failed_messages"]) == (3, 0)
    assert "meta_data" not in item
    update = parse_callback(
        json.dumps(next(b for b in bodies if "batch_status_update" in b))
    )
    assert (update.status, update.metadata) == ("COMPLETED", {})
    # The REST read still says PROCESSED.
    assert client.get_batch(sent.batch_id).status == "PROCESSED"


def _with_missing_contacts(client, missing: int, found: int = 0):
    people = [Recipient(contact_id=f"01NOSUCH{n:018d}") for n in range(missing)]
    people += [
        Recipient(identities=[ChannelIdentity("SMS", f"+1555123{n:04d}")])
        for n in range(found)
    ]
    return client.send_batch(
        SendBatchRequest(message=AppMessage.text("x"), recipients=people)
    )


@pytest.mark.parametrize(
    ("missing", "found", "outcome"), [(2, 1, "PARTIAL"), (2, 0, "FAILED")]
)
def test_the_event_style_says_partial_or_failed(
    client, receiver, control, missing, found, outcome
):
    control.knobs(batch_status_style="event", processing_mode="CONVERSATION")
    _with_missing_contacts(client, missing, found)
    key = "batch_processing_report_notification"
    bodies = receiver.wait_for(
        lambda b: bool(statuses(b)) and sum(key in x for x in b) == missing
    )
    assert statuses(bodies) == [outcome]
    reports = [b for b in bodies if key in b]
    assert len(reports) == missing
    parsed = parse_callback(json.dumps(reports[0]))
    assert isinstance(parsed, BatchProcessingReport)


@pytest.mark.parametrize("key", wire.BATCH_STATUS_UPDATE_KEYS)
def test_the_simulator_sends_status_updates_under_any_key_variant(
    client, receiver, control, key
):
    control.knobs(batch_status_key=key)
    client.send_batch(batch(1))
    bodies = receiver.wait_for(lambda b: "PROCESSED" in statuses(b, key))
    update = next(b for b in bodies if key in b)
    assert isinstance(parse_callback(json.dumps(update)), BatchStatusUpdate)


@pytest.mark.parametrize("key", wire.BATCH_PROCESSING_REPORT_KEYS)
def test_the_simulator_sends_processing_reports_under_any_key_variant(
    client, receiver, control, key
):
    control.knobs(processing_report_key=key, processing_mode="CONVERSATION")
    _with_missing_contacts(client, 1)
    bodies = receiver.wait_for(lambda b: any(key in x for x in b))
    report = parse_callback(json.dumps(next(x for x in bodies if key in x)))
    assert isinstance(report, BatchProcessingReport)
    assert report.failures[0].message_index == 0


@pytest.mark.parametrize("base", [0, 1])
def test_processing_reports_name_the_contacts_identity_from_either_base(
    client, receiver, control, base
):
    """A contact Sinch knows, sent in DISPATCH mode (no contact lookup): the
    report names the contact's identity; its index starts at the knob's base."""
    control.knobs(report_index_base=base, batch_status_style="event")
    client.create_contacts([ContactCreate([ChannelIdentity("SMS", "+15550001111")])])
    contact_id = receiver.wait_for(
        lambda b: any("contact_create_notification" in x for x in b)
    )[0]["contact_create_notification"]["contact"]["id"]
    client.send_batch(
        SendBatchRequest(
            message=AppMessage.text("x"),
            recipients=[
                Recipient(identities=[ChannelIdentity("SMS", "+15551230001")]),
                Recipient(contact_id=contact_id),
            ],
        )
    )
    key = "batch_processing_report_notification"
    bodies = receiver.wait_for(lambda b: any(key in x for x in b))
    (failure,) = parse_callback(
        json.dumps(next(x for x in bodies if key in x))
    ).failures
    assert failure.message_index == 1 + base
    assert (failure.channel_identity.channel, failure.channel_identity.e164) == (
        "SMS",
        "+15550001111",
    )


def test_the_shape_knobs_refuse_unknown_values(control):
    import requests

    for name, value in (
        ("metadata_list_shape", "dict"),
        ("batch_status_style", "webhook"),
        ("batch_status_key", "batch_x"),
        ("report_index_base", 2),
    ):
        response = requests.post(control.url + "knobs", json={name: value}, timeout=5)
        assert response.status_code == 400, name


# --- the status precedence ----------------------------------------------------------


@pytest.mark.parametrize(
    ("current", "new", "moves"),
    [
        ("", "SCHEDULED", True),
        ("SCHEDULED", "READY", True),
        ("READY", "PROCESSED", True),
        ("PROCESSED", "COMPLETED", True),  # the event docs' outcome refines it
        ("SCHEDULED", "COMPLETED", True),
        ("SCHEDULED", "CANCELLED", True),
        ("READY", "SCHEDULED", False),  # never backwards
        ("PROCESSED", "READY", False),
        ("PROCESSED", "SCHEDULED", False),
        ("COMPLETED", "SCHEDULED", False),
        ("COMPLETED", "READY", False),
        ("COMPLETED", "PROCESSED", False),
        ("PARTIAL", "COMPLETED", False),  # the first outcome stays
        ("FAILED", "PARTIAL", False),
        ("PROCESSED", "CANCELLED", False),  # it went: never relabelled cancelled
        ("COMPLETED", "CANCELLED", False),
        ("CANCELLED", "PROCESSED", False),  # a confirmed cancel is never undone
        ("CANCELLED", "COMPLETED", False),
        ("PROCESSED", "SOMETHING_NEW", False),  # unknown never replaces known
        ("", "SOMETHING_NEW", True),
        ("SOMETHING_NEW", "READY", True),
        ("PROCESSED", "PROCESSED", False),
    ],
)
def test_a_batch_status_never_moves_backwards(current, new, moves):
    assert batch_status_may_replace(current, new) is moves
