"""A channel template as Sinch takes it: WhatsApp parameters in component form,
a language in the underscore form, and only channels that have templates."""

import pytest
from django.core.exceptions import ValidationError
from django.urls import reverse

from campaigns.models import MessageTemplate

ADD = reverse("admin:campaigns_messagetemplate_add")


def _whatsapp(**fields) -> MessageTemplate:
    values = {
        "name": "Shipped",
        "kind": MessageTemplate.Kind.CHANNEL_TEMPLATE,
        "template_channel": "WHATSAPP",
        "template_id": "order_shipped",
        "template_language": "en_US",
        "template_parameters": {"body[1]text": "${first_name}"},
        **fields,
    }
    return MessageTemplate(**values)


def _errors(template) -> dict[str, list[str]]:
    with pytest.raises(ValidationError) as info:
        template.full_clean()
    return info.value.message_dict


def test_a_bare_parameter_key_is_refused_with_the_right_form(db):
    errors = _errors(_whatsapp(template_parameters={"1": "${first_name}"}))
    assert list(errors) == ["template_parameters"]
    assert (
        "use body[1]text for the body's first parameter"
        in errors["template_parameters"][0]
    )


def test_each_wrong_key_gets_its_own_message(db):
    errors = _errors(
        _whatsapp(
            template_parameters={
                "body[1]text": "${first_name}",
                "2": "${offer}",
                "header[1]image": "https://img.test/a.png",
            }
        )
    )["template_parameters"]
    assert len(errors) == 2
    assert "use body[2]text" in errors[0]
    assert "use header[1]image.link" in errors[1]


def test_component_keys_are_saved_and_sent_as_written(db):
    template = _whatsapp(
        template_parameters={
            "header[1]image.link": "https://img.test/${code}.png",
            "body[1]text": "${first_name}",
            "button[0]url[1]text": "${code}",
        }
    )
    template.full_clean()
    template.save()
    sent = template.sinch_message()["template_message"]["channel_template"]
    assert sent["WHATSAPP"]["parameters"] == template.template_parameters
    assert template.placeholders == ["code", "first_name"]


def test_a_whatsapp_template_needs_a_language(db):
    errors = _errors(_whatsapp(template_language=""))
    assert "Required for a WhatsApp template" in errors["template_language"][0]


@pytest.mark.parametrize(("typed", "stored"), [("en-us", "en_US"), ("pt-br", "pt_BR")])
def test_the_language_is_stored_in_the_underscore_form(db, typed, stored):
    template = _whatsapp(template_language=typed)
    template.full_clean()
    template.save()
    template.refresh_from_db()
    assert template.template_language == stored
    sent = template.sinch_message()["template_message"]["channel_template"]
    assert sent["WHATSAPP"]["language_code"] == stored


def test_a_language_that_is_no_code_is_refused(db):
    errors = _errors(_whatsapp(template_language="English"))
    assert "not a language code" in errors["template_language"][0]


def test_kakaotalk_and_wechat_keep_their_own_parameter_names(db):
    for channel in ("KAKAOTALK", "WECHAT"):
        template = _whatsapp(
            name=channel,
            template_channel=channel,
            template_language="",
            template_parameters={"name": "${first_name}"},
        )
        template.full_clean()


def test_only_channels_with_templates_are_offered(client, marketer):
    client.force_login(marketer)
    form = client.get(ADD).context["adminform"].form
    assert [value for value, _ in form.fields["template_channel"].choices] == [
        "WHATSAPP",
        "KAKAOTALK",
        "WECHAT",
    ]
    help_text = form.fields["template_parameters"].help_text
    assert "body[1]text = ${first_name} (the body's first parameter)" in help_text
    assert '{"1":' not in help_text


def test_a_template_stored_for_another_channel_gets_a_clear_error(db, client, marketer):
    template = _whatsapp()
    template.save()
    MessageTemplate.objects.filter(pk=template.pk).update(template_channel="SMS")
    template.refresh_from_db()
    errors = _errors(template)
    assert errors == {
        "template_channel": [
            "SMS has no channel-specific templates at Sinch; only WhatsApp, "
            "KakaoTalk, WeChat do. For other channels write the message itself "
            "(a text, media, card or choice message)."
        ]
    }
    # A text template that kept the old channel in its unused field is fine.
    MessageTemplate.objects.filter(pk=template.pk).update(kind="TEXT", text="Hi")
    template.refresh_from_db()
    template.full_clean()
    client.force_login(marketer)
    change = reverse("admin:campaigns_messagetemplate_change", args=[template.pk])
    assert client.get(change).status_code == 200


def test_the_admin_form_shows_the_right_key_form_and_keeps_the_input(client, marketer):
    client.force_login(marketer)
    response = client.post(
        ADD,
        {
            "name": "Shipped",
            "kind": "CHANNEL_TEMPLATE",
            "template_channel": "WHATSAPP",
            "template_id": "order_shipped",
            "template_language": "en-us",
            "template_parameters": '{"1": "${first_name}"}',
            "parameters-TOTAL_FORMS": 0,
            "parameters-INITIAL_FORMS": 0,
        },
    )
    assert response.status_code == 200
    form = response.context["adminform"].form
    assert "use body[1]text" in form.errors["template_parameters"][0]
    assert '"1": "${first_name}"' in response.content.decode().replace("&quot;", '"')
    assert not MessageTemplate.objects.exists()


def test_parameters_are_written_one_per_line_and_stored_as_json(client, marketer):
    client.force_login(marketer)
    data = {
        "name": "Shipped",
        "kind": "CHANNEL_TEMPLATE",
        "template_channel": "WHATSAPP",
        "template_id": "order_shipped",
        "template_language": "en",
        "template_parameters": "1 = ${first_name}\nheader[1]image.link = https://x.test/a?s=1",
        "parameters-TOTAL_FORMS": 0,
        "parameters-INITIAL_FORMS": 0,
    }
    response = client.post(ADD, data)
    errors = response.context["adminform"].form.errors["template_parameters"]
    assert errors == [
        '"1" is a bare key, which WhatsApp does not recognise: use body[1]text '
        "for the body's first parameter (header[1]text or header[1]image.link for "
        "the header, button[0]url[1]text or button[0]quick_reply[1]payload for a "
        "button)."
    ]
    data["template_parameters"] = data["template_parameters"].replace(
        "1 =", "body[1]text ="
    )
    assert client.post(ADD, data).status_code == 302
    template = MessageTemplate.objects.get()
    assert template.template_parameters == {
        "body[1]text": "${first_name}",
        "header[1]image.link": "https://x.test/a?s=1",
    }
    change = reverse("admin:campaigns_messagetemplate_change", args=[template.pk])
    shown = client.get(change).context["adminform"].form["template_parameters"]
    assert "body[1]text = ${first_name}\nheader[1]image.link" in str(shown)


def test_a_line_without_an_equals_sign_is_refused_with_its_number(client, marketer):
    client.force_login(marketer)
    response = client.post(
        ADD,
        {
            "name": "Shipped",
            "kind": "CHANNEL_TEMPLATE",
            "template_channel": "WHATSAPP",
            "template_id": "order_shipped",
            "template_language": "en",
            "template_parameters": "body[1]text = ${first_name}\nheader[1]text",
            "parameters-TOTAL_FORMS": 0,
            "parameters-INITIAL_FORMS": 0,
        },
    )
    errors = response.context["adminform"].form.errors["template_parameters"]
    assert errors == [
        "Line 2 ('header[1]text'): write key = value, e.g. body[1]text = ${first_name}."
    ]
