"""The product reads every guessed shape of Sinch's batch callbacks the same:
a batch status never moves backwards, an unknown batch callback is kept and
shown (never applied), and a processing report fails only the person it
names (campaigns.tracking.batch_statuses, deliveries, report_positions)."""

import re

import pytest
from django.utils import timezone

from campaigns.models import Batch, Recipient, WebhookEvent
from campaigns.tracking import health, report_positions
from sinch import wire
from sinch.simulator import events
from tests.campaigns import test_receipts
from tests.campaigns.test_receipts import (
    ACCOUNT,
    T0,
    batch_status,
    process,
    state,
    statuses,
    store,
)

# The receipt tests' campaign: one batch at Sinch, three people in it.
campaign = test_receipts.campaign
people = test_receipts.people
R, State = Recipient.Status, WebhookEvent.State


def remote(campaign) -> str:
    return Batch.objects.get(campaign=campaign).remote_status


def shapes_check():
    return next(c for c in health.checks() if c.key == "callback_shapes")


# --- batch status precedence ---------------------------------------------------------


@pytest.mark.parametrize(
    ("sequence", "final"),
    [
        (["COMPLETED", "SCHEDULED", "READY", "PROCESSED"], "COMPLETED"),
        (["PROCESSED", "READY", "SCHEDULED"], "PROCESSED"),
        (["PROCESSED", "PARTIAL"], "PARTIAL"),
        (["PARTIAL", "PROCESSED", "COMPLETED"], "PARTIAL"),
        (["FAILED", "READY"], "FAILED"),
        (["SCHEDULED", "CANCELLED", "PROCESSED"], "CANCELLED"),
    ],
)
def test_a_late_status_never_moves_a_batch_backwards(campaign, sequence, final):
    batch = Batch.objects.get(campaign=campaign)
    Batch.objects.filter(pk=batch.pk).update(remote_status="")
    for status in sequence:  # one at a time, as they arrive
        batch_status(batch, status)
        process()
    assert remote(campaign) == final


@pytest.mark.parametrize("order", [("COMPLETED", "READY"), ("READY", "COMPLETED")])
def test_statuses_in_one_chunk_end_final_whatever_their_order(campaign, order):
    batch = Batch.objects.get(campaign=campaign)
    for status in order:
        batch_status(batch, status)
    process()
    assert remote(campaign) == "COMPLETED"


def test_a_cancelled_after_processed_leaves_the_batch_and_its_people_alone(
    campaign, people
):
    """Sinch cancels only a batch waiting for its send time: a CANCELLED for
    one it processed is contradictory, and its recipients, who may have got
    the message, are not relabelled cancelled."""
    batch = Batch.objects.get(campaign=campaign)
    batch_status(batch, "PROCESSED")
    batch_status(batch, "CANCELLED")
    process()
    assert remote(campaign) == "PROCESSED"
    assert statuses(campaign) == [R.SUBMITTED] * 3
    assert Batch.objects.get(pk=batch.pk).status == Batch.Status.ACCEPTED


@pytest.mark.parametrize("key", wire.BATCH_STATUS_UPDATE_KEYS)
def test_an_event_style_update_under_any_key_is_found_by_its_batch_id(campaign, key):
    batch = Batch.objects.get(campaign=campaign)
    payload = events.envelope(
        ACCOUNT,
        T0.timestamp(),
        key,
        {
            "batch_id": batch.sinch_batch_id,
            "status": "PARTIAL",
            "total_messages": 3,
            "successful_messages": 2,
            "failed_messages": 1,
        },
    )
    event = store(payload)
    process()
    assert state(event)[0] == State.PROCESSED
    assert remote(campaign) == "PARTIAL"


# --- unknown batch callbacks ----------------------------------------------------------


def test_an_unknown_batch_callback_is_kept_and_shown_never_applied(campaign, people):
    batch = Batch.objects.get(campaign=campaign)
    payload = events.envelope(
        ACCOUNT,
        T0.timestamp(),
        "batch_delivery_summary",
        {"batch_id": batch.sinch_batch_id, "message_index": 0, "status": "FAILED"},
    )
    event = store(payload)
    assert shapes_check().level == health.OK
    process()
    got, error = state(event)
    assert got == State.UNKNOWN
    assert "batch_delivery_summary" in error
    assert statuses(campaign) == [R.SUBMITTED] * 3  # nobody failed
    assert remote(campaign) == ""
    shown = shapes_check()
    assert shown.level == health.WARN
    assert shown.value.startswith("1 of an unknown kind")
    assert shown.rows[0]["pk"] == event.pk


# --- processing reports: the index checked against the identity ----------------------


def report(campaign, index, identity=None, *, channel="SMS", key=None, style="rest"):
    batch = Batch.objects.get(campaign=campaign)
    payload = events.processing_report(
        ACCOUNT,
        batch.sinch_batch_id,
        index,
        "RECIPIENT_INVALID_CHANNEL_IDENTITY",
        T0.timestamp(),
        style=style,
        key=key or "",
        identity=(channel, identity) if identity else None,
    )
    return store(payload)


def test_a_report_naming_the_person_at_its_0_based_index_fails_them(campaign, people):
    event = report(campaign, 1, people[1].identity)
    process()
    assert state(event)[0] == State.PROCESSED
    assert statuses(campaign) == [R.SUBMITTED, R.FAILED, R.SUBMITTED]


def test_a_1_based_report_fails_the_person_it_names_not_the_next_one(campaign, people):
    """Index 2 naming the person at position 1: Sinch counted from 1."""
    event = report(campaign, 2, people[1].identity.lstrip("+"), style="event")
    process()
    assert state(event)[0] == State.PROCESSED
    assert statuses(campaign) == [R.SUBMITTED, R.FAILED, R.SUBMITTED]


@pytest.mark.parametrize(
    ("index", "who"),
    [(1, "+14155559876"), (2, "person 0")],  # a stranger; someone 2 places off
)
def test_a_report_naming_someone_else_is_kept_and_shown_never_applied(
    campaign, people, index, who
):
    identity = people[0].identity if who == "person 0" else who
    event = report(campaign, index, identity)
    process()
    got, error = state(event)
    assert got == State.MISMATCH
    assert "not applied" in error
    assert identity.lstrip("+") not in error  # the stored reason holds no number
    assert statuses(campaign) == [R.SUBMITTED] * 3
    shown = shapes_check()
    assert shown.level == health.WARN
    assert "1 naming someone else" in shown.value


def test_a_report_without_an_identity_trusts_the_wire_guess(campaign, people):
    assert wire.PROCESSING_REPORT_INDEX_BASE == 0
    report(campaign, 2)
    process()
    assert statuses(campaign) == [R.SUBMITTED, R.SUBMITTED, R.FAILED]


def test_a_person_reached_on_another_identity_is_recognised(
    campaign, people, monkeypatch
):
    """The identities a recipient is known by come from one function: a
    fallback identity added there is matched like the first one."""
    known = report_positions.recipient_identities

    def with_fallback(rows):
        found = known(rows)
        found[people[2].pk].add(("WHATSAPP", "+447700900123"))
        return found

    monkeypatch.setattr(report_positions, "recipient_identities", with_fallback)
    event = report(campaign, 2, "447700900123", channel="WHATSAPP")
    process()
    assert state(event)[0] == State.PROCESSED
    assert statuses(campaign) == [R.SUBMITTED, R.SUBMITTED, R.FAILED]


@pytest.mark.parametrize("key", wire.BATCH_PROCESSING_REPORT_KEYS)
def test_a_report_under_any_key_variant_is_applied(campaign, people, key):
    report(campaign, 0, people[0].identity, key=key, style="event")
    process()
    assert statuses(campaign) == [R.FAILED, R.SUBMITTED, R.SUBMITTED]


def test_the_health_page_lists_callbacks_not_understood(client, superuser, campaign):
    batch = Batch.objects.get(campaign=campaign)
    store(
        events.envelope(
            ACCOUNT, timezone.now().timestamp(), "batch_x", {"batch_id": "b"}
        )
    )
    report(campaign, 1, "+14155559876")
    process()
    assert batch.pk
    client.force_login(superuser)
    html = client.get("/admin/health/").content.decode()
    row = re.search(r'<tr id="check-callback_shapes" class="check level-(\w+)">', html)
    assert row
    assert row.group(1) == "warn"
    assert "1 of an unknown kind, 1 naming someone else" in html
    assert "add the key to sinch/wire.py" in html


def test_kept_callbacks_are_processed_again_once_their_key_is_known(
    campaign, monkeypatch
):
    from io import StringIO

    from django.core.management import call_command

    batch = Batch.objects.get(campaign=campaign)
    event = store(
        events.envelope(
            ACCOUNT,
            T0.timestamp(),
            "batch_state_changed",
            {"batch_id": batch.sinch_batch_id, "status": "COMPLETED"},
        )
    )
    process()
    assert state(event)[0] == State.UNKNOWN
    keys = (*wire.BATCH_STATUS_UPDATE_KEYS, "batch_state_changed")
    monkeypatch.setattr(wire, "BATCH_STATUS_UPDATE_KEYS", keys)  # the code learns it
    out = StringIO()
    call_command("reprocess_callbacks", "--state", "UNKNOWN", stdout=out)
    assert "1 callbacks processed again: 1 processed" in out.getvalue()
    assert state(event) == (State.PROCESSED, "")
    assert remote(campaign) == "COMPLETED"
    out = StringIO()
    call_command("reprocess_callbacks", stdout=out)
    assert "No kept callback" in out.getvalue()
