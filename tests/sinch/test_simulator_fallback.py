"""The simulator falls back the way Sinch documents it, with no knob: only to
the channels of the priority order that the recipient has an identity on,
in that order; with no channel left to try, the message fails with
NO_CHANNELS_LEFT."""

from sinch.payloads import (
    AppMessage,
    ChannelIdentity,
    ConsentRecord,
    Recipient,
    SendBatchRequest,
)
from sinch.simulator import outcomes
from tests.sinch.test_contract_callbacks import receipts


def send(client, order, *identities):
    client.send_batch(
        SendBatchRequest(
            message=AppMessage.text("x"),
            recipients=[
                Recipient(identities=[ChannelIdentity(*i) for i in identities])
            ],
            channel_priority_order=order,
        )
    )


def trail(bodies) -> list[tuple[str, str, str]]:
    """(status, channel, reason) of each receipt, sorted: the callback workers
    may deliver them in any order."""
    return sorted(
        (
            r["message_delivery_report"]["status"],
            r["message_delivery_report"]["channel_identity"]["channel"],
            (r["message_delivery_report"].get("reason") or {}).get("code", ""),
        )
        for r in receipts(bodies)
    )


def test_a_channel_of_the_order_without_an_identity_is_skipped(client, receiver):
    send(client, ["WHATSAPP", "SMS"], ("SMS", "+15551230001"))
    bodies = receiver.wait_for(lambda b: len(receipts(b, "DELIVERED")) == 1)
    assert trail(bodies) == [("DELIVERED", "SMS", ""), ("QUEUED_ON_CHANNEL", "SMS", "")]


def test_identities_are_tried_in_the_order_not_as_listed(client, receiver, control):
    # The WhatsApp number opted out at Sinch: the message falls back to SMS.
    control.knobs(consent_management="primary")
    client.insert_consents([ConsentRecord("+15551230009")])
    send(
        client,
        ["WHATSAPP", "SMS"],
        ("SMS", "+15551230001"),
        ("WHATSAPP", "+15551230009"),
    )
    bodies = receiver.wait_for(lambda b: len(receipts(b, "DELIVERED")) == 1)
    assert trail(bodies) == [
        ("DELIVERED", "SMS", ""),
        ("QUEUED_ON_CHANNEL", "SMS", ""),
        ("SWITCHING_CHANNEL", "WHATSAPP", "RECIPIENT_NOT_OPTED_IN"),
    ]


def test_with_no_identity_on_any_channel_of_the_order_it_fails_no_channels_left(
    client, receiver
):
    send(client, ["WHATSAPP", "SMS"], ("VIBERBM", "+15551230001"))
    bodies = receiver.wait_for(lambda b: len(receipts(b, "FAILED")) == 1)
    assert trail(bodies) == [("FAILED", "VIBERBM", "NO_CHANNELS_LEFT")]


def test_without_an_order_every_identity_is_tried_as_listed():
    pairs = [("SMS", "+1"), ("WHATSAPP", "+2")]
    assert outcomes.order_identities(pairs, []) == pairs
    assert outcomes.order_identities(pairs, ["WHATSAPP", "RCS", "SMS"]) == [
        ("WHATSAPP", "+2"),
        ("SMS", "+1"),
    ]
    assert outcomes.order_identities(pairs, ["RCS"]) == []
