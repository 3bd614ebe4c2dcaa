"""Channel properties: the registry is Sinch's own key list, and the simulator
refuses what Sinch would (the real client against it over HTTP)."""

import pytest

from sinch import channel_properties as registry
from sinch import wire
from sinch.errors import SinchValidationError
from sinch.simulator.validation import CHANNELS
from tests.sinch.conftest import batch

# Sinch's ChannelPropertyKey enum, transcribed from the official Node SDK
# (github.com/sinch/sinch-sdk-node, commit affb35e5, file
# packages/conversation/src/models/v1/send-message-request/
# send-message-request.ts, type ChannelPropertyKey). The Python, Java and
# .NET SDKs type channel_properties as a plain map of strings.
SDK_CHANNEL_PROPERTY_KEYS = {
    "MESSENGER_MESSAGING_TYPE",
    "MESSENGER_MESSAGE_TAG",
    "MESSENGER_NOTIFICATION_TYPE",
    "VIBER_SENDER_NAME",
    "VIBER_SENDER_AVATAR",
    "SMS_FLASH_MESSAGE",
    "MMS_SENDER",
    "TELEGRAM_DISABLE_LINK_PREVIEW",
    "SMS_SENDER",
    "INSTAGRAM_MESSAGE_TAG",
    "MMS_STRICT_VALIDATION",
    "KAKAOTALK_AUTHENTICATION",
    "LINE_VIDEO_TRACKING_ID",
    "SMS_MAX_NUMBER_OF_MESSAGE_PARTS",
}
# Documented on the Conversation API's WhatsApp channel-properties page.
DOCUMENTED_ELSEWHERE = {"WHATSAPP_PREVIEW_URL"}


def test_the_registry_is_sinchs_enum_plus_whatsapp_preview_url():
    assert set(registry.PROPERTIES) == SDK_CHANNEL_PROPERTY_KEYS | DOCUMENTED_ELSEWHERE
    assert wire.CHANNEL_PROPERTY_KEYS == registry.KEYS


def test_the_keys_the_old_list_made_up_are_gone():
    for key in ("WHATSAPP_DISABLE_LINK_PREVIEW", "KAKAO_TALK_SENDER_KEY"):
        assert key not in registry.KEYS
    for key in ("TELEGRAM_DISABLE_LINK_PREVIEW", "KAKAOTALK_AUTHENTICATION"):
        assert key in registry.KEYS


def test_every_property_says_its_channel_type_label_and_help():
    for key, prop in registry.PROPERTIES.items():
        assert prop.key == key
        assert prop.channel in CHANNELS | {"VIBER"}, key
        assert key.startswith(prop.channel + "_"), key
        assert prop.kind in {"boolean", "integer", "choice", "text", "url"}
        assert prop.label, key
        assert prop.help.endswith("."), key
        assert (prop.kind == "choice") == bool(prop.choices), key
        assert prop.max_length <= registry.MAX_VALUE_LEN


def violations(caught) -> dict[str, str]:
    return {v.field: v.description for v in caught.value.field_violations}


def test_sinch_refuses_a_key_its_enum_does_not_have(client):
    properties = {"SMS_SENDER": "MyShop", "WHATSAPP_DISABLE_LINK_PREVIEW": "true"}
    with pytest.raises(SinchValidationError) as caught:
        client.send_batch(batch(channel_properties=properties))
    assert caught.value.status == 400
    assert violations(caught) == {
        "channel_properties.WHATSAPP_DISABLE_LINK_PREVIEW": (
            "WHATSAPP_DISABLE_LINK_PREVIEW is not a channel property Sinch knows"
        )
    }


@pytest.mark.parametrize(
    ("key", "value", "words"),
    [
        ("SMS_FLASH_MESSAGE", "yes", 'must be "true" or "false"'),
        ("SMS_MAX_NUMBER_OF_MESSAGE_PARTS", "three", "whole number"),
        ("MESSENGER_NOTIFICATION_TYPE", "LOUD", "REGULAR, SILENT_PUSH, NO_PUSH"),
        ("INSTAGRAM_MESSAGE_TAG", "ACCOUNT_UPDATE", "HUMAN_AGENT"),
        ("VIBER_SENDER_NAME", "x" * 29, "at most 28"),
        ("VIBER_SENDER_AVATAR", "avatar.png", "web address"),
        ("SMS_SENDER", "x" * 1025, "at most 1024"),
    ],
)
def test_sinch_refuses_a_value_of_the_wrong_documented_type(client, key, value, words):
    with pytest.raises(SinchValidationError) as caught:
        client.send_batch(batch(channel_properties={key: value}))
    found = violations(caught)
    assert list(found) == [f"channel_properties.{key}"]
    assert words in found[f"channel_properties.{key}"]


def test_sinch_takes_every_documented_key_and_the_products_guesses_stay_out(client):
    properties = {
        "SMS_SENDER": "MyShop",
        "SMS_MAX_NUMBER_OF_MESSAGE_PARTS": "3",
        "SMS_FLASH_MESSAGE": "false",
        "MMS_SENDER": "+15550001111",
        "MMS_STRICT_VALIDATION": "true",
        "WHATSAPP_PREVIEW_URL": "false",
        "MESSENGER_MESSAGING_TYPE": "MESSAGE_TAG",
        "MESSENGER_NOTIFICATION_TYPE": "SILENT_PUSH",
        "INSTAGRAM_MESSAGE_TAG": "HUMAN_AGENT",
        "TELEGRAM_DISABLE_LINK_PREVIEW": "TRUE",  # Sinch's own example
        "KAKAOTALK_AUTHENTICATION": "anything",
        "VIBER_SENDER_NAME": "Shop",
        "VIBER_SENDER_AVATAR": "https://example.com/a.png",
        # UNCONFIRMED limits the product applies but Sinch does not state:
        "MESSENGER_MESSAGE_TAG": "SOME_NEW_META_TAG",
        "LINE_VIDEO_TRACKING_ID": "v" * 200,
    }
    assert set(properties) == registry.KEYS
    assert client.send_batch(batch(channel_properties=properties)).batch_id
    assert registry.problems(properties) == {
        "MESSENGER_MESSAGE_TAG": (
            "must be one of CONFIRMED_EVENT_UPDATE, POST_PURCHASE_UPDATE, "
            "ACCOUNT_UPDATE, HUMAN_AGENT"
        ),
        "LINE_VIDEO_TRACKING_ID": "is 200 characters long; at most 100",
    }
