"""The SDK contract check is strict: what Sinch would not accept is refused.

The official SDK's models accept unknown keys and open enums; tests/sdk/
validator.py hardens them. Each case below takes a body our own payload code
builds (sinch.payloads, so the well-formed one is what the product sends),
breaks it the way a developer could, and must be refused, naming the place.
"""

import copy
import json
from datetime import UTC, datetime

import pytest

from sinch.payloads import AppMessage, ChannelIdentity, Recipient, SendBatchRequest
from tests.sdk.contract import SDK_DIR, pinned_version


def good_batch() -> dict:
    request = SendBatchRequest(
        message=AppMessage.card(
            title="Spring sale", media_url="https://x.test/a.jpg", choices=["Yes"]
        ),
        recipients=[
            Recipient(
                (ChannelIdentity("SMS", "+14155550100"),),
                parameters={"first_name": "Ann"},
                message_metadata={"cm_recipient": "1"},
            ),
            Recipient(contact_id="01CONTACT"),
        ],
        batch_metadata={"cm_batch": "c1-b1"},
        message_metadata={"cm_campaign": "1"},
        conversation_metadata={"cm_campaign": "1"},
        send_after=datetime(2030, 1, 2, 9, 0, tzinfo=UTC),
        ttl_s=86400,
        channel_priority_order=("SMS", "RCS"),
        channel_properties={"SMS_SENDER": "MyShop"},
        processing_strategy="DISPATCH_ONLY",
        callback_url="https://hooks.test/sinch",
        correlation_id="spring",
    )
    return json.loads(request.to_json(app_id="01APP"))


def broken(change) -> dict:
    body = copy.deepcopy(good_batch())
    change(body)
    return body


def test_the_sdk_runs_in_its_own_process_in_the_pinned_version(sinch_sdk):
    assert sinch_sdk.version == pinned_version()
    # The send request and everything it can hold, hardened.
    assert sinch_sdk.models > 50
    assert (SDK_DIR / "sinch" / "domains" / "conversation").is_dir()


def test_what_the_product_sends_is_accepted(sinch_sdk):
    assert sinch_sdk.batch_refusals(good_batch()) == []


def _card(body):
    return body["message"]["card_message"]


CASES = {
    "a misspelt field": (
        lambda b: _card(b).update(titel=_card(b).pop("title")),
        "message.card_message.titel: Extra inputs are not permitted",
    ),
    "a media URL one level too high": (
        lambda b: _card(b).update(media_url=_card(b).pop("media_message")["url"]),
        "message.card_message.media_url: Extra inputs are not permitted",
    ),
    "a choice as a bare text": (
        lambda b: _card(b).update(choices=["Yes"]),
        "message.card_message.choices.0",
    ),
    "a choice with an unknown key": (
        lambda b: _card(b)["choices"][0].update(label="Yes"),
        "label: Extra inputs are not permitted",
    ),
    "two kinds in one message": (
        lambda b: b["message"].update(text_message={"text": "Hi"}),
        "a message holds exactly one of",
    ),
    "a message with no kind": (
        lambda b: b.update(message={}),
        "this one holds none",
    ),
    "an unknown channel in an identity": (
        lambda b: b["recipient_and_params"][0]["recipient"]["identified_by"][
            "channel_identities"
        ][0].update(channel="WHATSAP"),
        "channel_identities.0.channel: Input should be 'WHATSAPP'",
    ),
    "an identity not inside identified_by": (
        lambda b: b["recipient_and_params"][0].update(
            recipient={"channel": "SMS", "identity": "+14155550100"}
        ),
        "recipient.channel: Extra inputs are not permitted",
    ),
    "an unknown channel in the priority order": (
        lambda b: b.update(channel_priority_order=["SMS", "EMAIL"]),
        "channel_priority_order.1: Input should be",
    ),
    "a misspelt request field": (
        lambda b: b.update(channel_priority=b.pop("channel_priority_order")),
        "channel_priority: Extra inputs are not permitted",
    ),
    "a Python name instead of the wire name": (
        lambda b: b.update(event_destination_target=b.pop("callback_url")),
        "event_destination_target: Extra inputs are not permitted",
    ),
    "an unknown processing strategy": (
        lambda b: b.update(processing_strategy="DISPATCH"),
        "processing_strategy: Input should be 'DEFAULT' or 'DISPATCH_ONLY'",
    ),
    "a channel property that is not a string": (
        lambda b: b.update(channel_properties={"SMS_MAX_NUMBER_OF_MESSAGE_PARTS": 3}),
        "channel_properties.SMS_MAX_NUMBER_OF_MESSAGE_PARTS: Input should be a valid",
    ),
    "a ttl without its unit": (
        lambda b: b.update(ttl="86400"),
        "ttl: sent '86400', the SDK would send '86400s'",
    ),
    "a channel template for an unknown channel": (
        lambda b: b.update(
            message={
                "template_message": {
                    "channel_template": {"WHATSAP": {"template_id": "spring"}}
                }
            }
        ),
        "channel_template.WHATSAP.[key]: Input should be 'WHATSAPP'",
    ),
    "template parameters beside the template instead of in it": (
        lambda b: b.update(
            message={
                "template_message": {
                    "channel_template": {"WHATSAPP": {"template_id": "spring"}},
                    "parameters": {"body[1]text": "Ann"},
                }
            }
        ),
        "template_message.parameters: Extra inputs are not permitted",
    ),
    "a WhatsApp template without a language": (
        lambda b: b.update(
            message={
                "template_message": {
                    "channel_template": {"WHATSAPP": {"template_id": "spring"}}
                }
            }
        ),
        "a WhatsApp channel template needs its language_code",
    ),
    "a WhatsApp template language with a dash": (
        lambda b: b.update(
            message={
                "template_message": {
                    "channel_template": {
                        "WHATSAPP": {"template_id": "spring", "language_code": "en-US"}
                    }
                }
            }
        ),
        "in the underscore form (en_US), not 'en-US'",
    ),
    "a template message without a template": (
        lambda b: b.update(message={"template_message": {}}),
        "needs channel_template or omni_template",
    ),
    # Batch-only parts: no SDK model, checked against the wire notes.
    "an unknown key in a recipient entry": (
        lambda b: b["recipient_and_params"][0].update(
            params=b["recipient_and_params"][0].pop("parameters")
        ),
        "recipient_and_params.0: unknown keys ['params']",
    ),
    "a parameter value that is not a string": (
        lambda b: b["recipient_and_params"][0]["parameters"].update(age=42),
        "recipient_and_params.0.parameters: not an object of strings",
    ),
    "batch metadata that is not an object of strings": (
        lambda b: b.update(batch_metadata="c1-b1"),
        "batch_metadata: not an object of strings",
    ),
    "a send time without its zone": (
        lambda b: b.update(send_after="2030-01-02T09:00:00"),
        "send_after: not an RFC 3339 UTC time",
    ),
    "no recipients": (
        lambda b: b.update(recipient_and_params=[]),
        "recipient_and_params: 1 to 1000 entries needed",
    ),
}


@pytest.mark.parametrize(("change", "refusal"), CASES.values(), ids=CASES.keys())
def test_a_body_sinch_would_not_accept_is_refused(sinch_sdk, change, refusal):
    problems = sinch_sdk.batch_refusals(broken(change))
    assert any(refusal in problem for problem in problems), problems


def test_metadata_objects_become_the_strings_the_conversation_api_takes(sinch_sdk):
    from tests.sdk.contract import batch_requests

    first, second = batch_requests(good_batch())
    assert json.loads(first["message_metadata"]) == {
        "cm_campaign": "1",
        "cm_recipient": "1",
    }
    assert second["message_metadata"] == '{"cm_campaign": "1"}'
    assert second["recipient"] == {"contact_id": "01CONTACT"}
    assert "send_after" not in first
    assert "batch_metadata" not in first
