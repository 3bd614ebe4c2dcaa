"""WhatsApp template parameter keys and languages, by Sinch's documented rules
(sinch.channel_templates): the one grammar the template form, the pre-send
check and the simulator share."""

import pytest

from sinch.channel_templates import (
    TemplateKeyError,
    check_whatsapp_key,
    free_form_on_whatsapp,
    normalise_language,
    renders_on,
)
from sinch.payloads import AppMessage


@pytest.mark.parametrize(
    "key",
    [
        "body[1]text",
        "body[3]text",
        "header[1]text",
        "header[1]image.link",
        "header[1]video.link",
        "header[1]document.link",
        "header[1]document.filename",
        "header[1]image.provider.name",
        "button[0]url[1]text",
        "button[2]quick_reply[1]payload",
        "button[0]copy_code[1]coupon_code",
        "header[1]location.latitude",
        "carousel[0]header[1]image.link",
        "carousel[9]body[1]text",
        "carousel[1]button[0]quick_reply[1]payload",
    ],
)
def test_sinch_documented_component_keys_are_accepted(key):
    check_whatsapp_key(key)


@pytest.mark.parametrize(
    ("key", "right_form"),
    [
        ("1", "use body[1]text for the body's first parameter"),
        ("2", "use body[2]text for the body's second parameter"),
        ("{{1}}", "use body[1]text"),
        ("body.1", "use body[1]text"),
        ("body_2", "use body[2]text"),
        ("body[1]", "use body[1]text"),
        ("body", "use body[1]text"),
        ("header[1]image", "use header[1]image.link"),
        ("header[1]txt", "use header[1]text"),
        ("button[0]payload", "use button[0]quick_reply[1]payload"),
        ("button[1]text", "use button[1]url[1]text"),
        ("body[0]text", "counted from 1: use body[1]text"),
        ("button[0]zip[1]text", 'unknown button type "zip"'),
        ("button[12]url[1]text", "at most 10"),
        ("carousel[10]body[1]text", "at most 10 cards"),
        ("first_name", "e.g. body[1]text for the body's first parameter"),
    ],
)
def test_a_key_sinch_would_not_recognise_is_refused_with_the_right_form(
    key, right_form
):
    with pytest.raises(TemplateKeyError) as info:
        check_whatsapp_key(key)
    assert right_form in str(info.value)
    assert f'"{key}"' in str(info.value)


@pytest.mark.parametrize(
    ("typed", "stored"),
    [
        ("en", "en"),
        ("en_US", "en_US"),
        ("en-us", "en_US"),
        ("EN-US", "en_US"),
        ("pt-br", "pt_BR"),
        ("pt_br", "pt_BR"),
        ("sr-latn", "sr_Latn"),
        ("es-419", "es_419"),
        (" fr ", "fr"),
    ],
)
def test_a_language_is_normalised_to_the_underscore_form(typed, stored):
    assert normalise_language(typed) == stored


@pytest.mark.parametrize("nonsense", ["english", "en_USA", "e", "", "en-", "12"])
def test_a_language_that_is_no_code_is_refused_with_examples(nonsense):
    with pytest.raises(ValueError, match=r"not a language code.*en_US"):
        normalise_language(nonsense)


def test_only_a_whatsapp_template_escapes_the_window_and_renders_only_there():
    whatsapp = AppMessage.channel_template("WHATSAPP", "offer").to_wire()
    kakao = AppMessage.channel_template("KAKAOTALK", "offer").to_wire()
    text = AppMessage.text("Hi").to_wire()
    assert not free_form_on_whatsapp(whatsapp)
    assert free_form_on_whatsapp(kakao)
    assert free_form_on_whatsapp(text)
    assert free_form_on_whatsapp({"list_message": {"title": "t", "sections": []}})
    assert renders_on(whatsapp, "WHATSAPP")
    assert not renders_on(whatsapp, "SMS")
    assert renders_on(text, "SMS")
    omni = {"template_message": {"omni_template": {"template_id": "x"}}}
    assert renders_on(omni, "SMS")
    assert free_form_on_whatsapp(omni)
