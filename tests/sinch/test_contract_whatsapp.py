"""Contract: WhatsApp's rules as the simulator plays them, over HTTP with our
client. A message other than a WhatsApp template reaches only people who
wrote within the window (`--whatsapp-window-h`); a WhatsApp template with
bare parameter keys or no language is refused."""

import pytest

from sinch.errors import SinchValidationError
from sinch.payloads import AppMessage, ChannelIdentity, Recipient, SendBatchRequest
from tests.sinch.test_contract_callbacks import receipts

WRITER = "+15551230001"  # wrote to us on WhatsApp
SILENT = "+15551230002"  # never wrote


def _send(client, message, *pairs, order=()):
    return client.send_batch(
        SendBatchRequest(
            message=message,
            recipients=[
                Recipient(identities=[ChannelIdentity(c, i) for c, i in identities])
                for identities in pairs
            ],
            channel_priority_order=list(order),
        )
    )


def _final(bodies) -> dict[str, tuple[str, str]]:
    """identity (digits) -> (status, reason code) of its last receipt."""
    final = {}
    for body in receipts(bodies):
        report = body["message_delivery_report"]
        final[report["channel_identity"]["identity"]] = (
            report["status"],
            (report.get("reason") or {}).get("code", ""),
        )
    return final


def _settled(n):
    return lambda b: len(receipts(b, "DELIVERED")) + len(receipts(b, "FAILED")) >= n


def test_a_text_on_whatsapp_reaches_only_who_wrote_within_the_window(
    client, receiver, control
):
    control.post("inbound", channel="WHATSAPP", identity=WRITER, text="hi")
    _send(
        client,
        AppMessage.text("Your order shipped"),
        [("WHATSAPP", WRITER)],
        [("WHATSAPP", SILENT)],
    )
    final = _final(receiver.wait_for(_settled(2)))
    assert final[WRITER[1:]] == ("DELIVERED", "")
    assert final[SILENT[1:]] == ("FAILED", "OUTSIDE_ALLOWED_SENDING_WINDOW")


def test_a_whatsapp_template_is_delivered_outside_the_window(client, receiver):
    template = AppMessage.channel_template(
        "WHATSAPP",
        "order_shipped",
        language_code="en_US",
        parameters={"body[1]text": "Jane"},
    )
    _send(client, template, [("WHATSAPP", SILENT)])
    final = _final(receiver.wait_for(_settled(1)))
    assert final == {SILENT[1:]: ("DELIVERED", "")}


def test_outside_the_window_the_next_channel_in_the_fallback_order_is_tried(
    client, receiver
):
    _send(
        client,
        AppMessage.text("Your order shipped"),
        [("WHATSAPP", SILENT), ("SMS", SILENT)],
        order=["WHATSAPP", "SMS"],
    )
    bodies = receiver.wait_for(lambda b: len(receipts(b, "DELIVERED")) == 1)
    trail = [
        (
            r["message_delivery_report"]["status"],
            r["message_delivery_report"]["channel_identity"]["channel"],
            (r["message_delivery_report"].get("reason") or {}).get("code", ""),
        )
        for r in receipts(bodies)
    ]
    assert trail == [
        ("SWITCHING_CHANNEL", "WHATSAPP", "OUTSIDE_ALLOWED_SENDING_WINDOW"),
        ("QUEUED_ON_CHANNEL", "SMS", ""),
        ("DELIVERED", "SMS", ""),
    ]


def test_the_window_closes_after_its_hours_and_is_set_at_run_time(
    client, receiver, control
):
    control.post("inbound", channel="WHATSAPP", identity=WRITER, text="hi")
    control.knobs(whatsapp_window_h=2)
    control.post("advance", seconds=3 * 3600)
    _send(client, AppMessage.text("Late"), [("WHATSAPP", WRITER)])
    final = _final(receiver.wait_for(_settled(1)))
    assert final == {WRITER[1:]: ("FAILED", "OUTSIDE_ALLOWED_SENDING_WINDOW")}

    control.knobs(whatsapp_window_h=4)
    receiver.requests.clear()
    _send(client, AppMessage.text("In time"), [("WHATSAPP", WRITER)])
    final = _final(receiver.wait_for(_settled(1)))
    assert final == {WRITER[1:]: ("DELIVERED", "")}


def test_an_sms_message_knows_no_window(client, receiver):
    _send(client, AppMessage.text("Hi"), [("SMS", SILENT)])
    assert _final(receiver.wait_for(_settled(1))) == {SILENT[1:]: ("DELIVERED", "")}


@pytest.mark.parametrize(
    ("parameters", "language", "field", "says"),
    [
        ({"1": "Jane"}, "en_US", "parameters", "use body[1]text"),
        ({"button[0]payload": "x"}, "en_US", "parameters", "quick_reply[1]payload"),
        ({"body[1]text": "Jane"}, "", "language_code", "required"),
    ],
)
def test_a_whatsapp_template_sinch_would_not_recognise_is_refused(
    client, parameters, language, field, says
):
    template = AppMessage.channel_template(
        "WHATSAPP", "offer", language_code=language, parameters=parameters
    )
    with pytest.raises(SinchValidationError) as caught:
        _send(client, template, [("WHATSAPP", WRITER)])
    assert caught.value.status == 400
    found = {v.field: v.description for v in caught.value.field_violations}
    where = f"message.template_message.channel_template.WHATSAPP.{field}"
    assert says in found[where]


def test_a_kakaotalk_template_keeps_its_own_parameter_names(client, receiver):
    template = AppMessage.channel_template(
        "KAKAOTALK", "notice", parameters={"name": "Jane"}
    )
    assert _send(client, template, [("KAKAOTALK", "+15551230003")]).batch_id
