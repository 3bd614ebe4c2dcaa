"""Parameter rows follow the placeholders; rendering fills them per contact."""

import json
from datetime import UTC, datetime

import pytest

from campaigns.authoring.rendering import render_for_contact
from campaigns.models import MessageTemplate, TemplateParameter
from sinch.payloads import AppMessage, ChannelIdentity, Recipient, SendBatchRequest
from sinch.simulator.validation import Accepted, check_send

pytestmark = pytest.mark.django_db
Source = TemplateParameter.Source


def _text(text: str, name: str = "Welcome") -> MessageTemplate:
    template = MessageTemplate(name=name, kind="TEXT", text=text)
    template.full_clean()
    template.save()
    return template


def _sources(template):
    return {
        p.name: (p.source, p.contact_field, p.attribute)
        for p in template.parameters.all()
    }


def test_parameter_rows_are_added_with_a_sensible_source_and_removed_on_save():
    template = _text("Hi ${first_name}, your ${tier} code")
    assert _sources(template) == {
        "first_name": (Source.CONTACT_FIELD, "first_name", ""),
        "tier": (Source.ATTRIBUTE, "", "tier"),
    }
    tier = template.parameters.get(name="tier")
    tier.default = "silver"
    tier.save()

    template.text = "Your ${tier} code ${code}"
    template.save()
    assert set(_sources(template)) == {"tier", "code"}
    assert template.parameters.get(name="tier").default == "silver"


def test_rendering_uses_contact_fields_attributes_campaign_values_and_defaults(
    make_contact,
):
    template = _text("${first_name} ${last_name} ${tier} ${offer} ${city}")
    template.parameters.filter(name="offer").update(source=Source.CAMPAIGN)
    template.parameters.filter(name="city").update(default="your town")
    contact = make_contact(
        first_name="Ana", last_name="Lima", attributes={"tier": 3, "city": ""}
    )

    result = render_for_contact(template, contact, campaign_values={"offer": "-20%"})

    assert result.missing == []
    assert result.parameters == {
        "first_name": "Ana",
        "last_name": "Lima",
        "tier": "3",
        "offer": "-20%",
        "city": "your town",
    }
    assert result.message == {"text_message": {"text": template.text}}
    assert result.rendered == {"text_message": {"text": "Ana Lima 3 -20% your town"}}


def test_placeholders_without_value_or_default_are_reported_missing(make_contact):
    template = _text("${first_name} ${tier} ${offer}")
    template.parameters.filter(name="offer").update(source=Source.CAMPAIGN)
    contact = make_contact(first_name="", attributes={})

    result = render_for_contact(template, contact)

    assert result.missing == ["first_name", "tier", "offer"]
    assert not result.ok
    assert result.rendered == {"text_message": {"text": template.text}}


def test_values_holding_placeholders_or_html_are_inserted_literally(make_contact):
    template = _text("Hi ${first_name} ${tier}")
    contact = make_contact(
        first_name="${tier}", attributes={"tier": "<b>gold</b> ${first_name}"}
    )

    result = render_for_contact(template, contact)

    assert result.rendered["text_message"]["text"] == (
        "Hi ${tier} <b>gold</b> ${first_name}"
    )


@pytest.mark.parametrize(
    ("fields", "kind"),
    [
        ({"kind": "TEXT", "text": "Hi ${first_name}"}, "text_message"),
        (
            {"kind": "MEDIA", "media_url": "https://x.test/${first_name}.png"},
            "media_message",
        ),
        (
            {
                "kind": "CARD",
                "title": "Sale ${first_name}",
                "description": "d",
                "media_url": "https://x.test/a.png",
                "choices": "Yes\nNo",
            },
            "card_message",
        ),
        (
            {"kind": "CHOICE", "text": "Pick", "choices": "A\nB ${first_name}"},
            "choice_message",
        ),
        (
            {
                "kind": "CHANNEL_TEMPLATE",
                "template_id": "promo",
                "template_language": "en_US",
                "template_parameters": {"body[1]text": "${first_name}"},
            },
            "template_message",
        ),
    ],
)
def test_the_built_message_is_accepted_by_the_batch_api(make_contact, fields, kind):
    template = MessageTemplate(name="T", **fields)
    template.full_clean()
    template.save()
    result = render_for_contact(template, make_contact(first_name="Ana"))
    assert list(result.message) == [kind]

    request = SendBatchRequest(
        message=AppMessage(kind, result.message[kind]),
        recipients=[
            Recipient(
                identities=[ChannelIdentity("SMS", "+14155550100")],
                parameters=result.parameters,
            )
        ],
    )
    body = request.to_json(app_id="app-1")
    assert json.loads(body)["message"] == result.message
    verdict = check_send(body, "app-1", datetime.now(UTC))
    assert isinstance(verdict, Accepted), getattr(verdict, "details", verdict)


def test_card_and_choice_messages_have_the_documented_shape():
    assert AppMessage.choice("Pick", ["Yes"]).to_wire() == {
        "choice_message": {
            "text_message": {"text": "Pick"},
            "choices": [{"text_message": {"text": "Yes"}}],
        }
    }
    assert AppMessage.card(title="Sale", media_url="u").to_wire() == {
        "card_message": {"title": "Sale", "media_message": {"url": "u"}}
    }
    assert AppMessage.channel_template(
        "WHATSAPP", "promo", language_code="en_US", parameters={"body[1]text": "${a}"}
    ).to_wire() == {
        "template_message": {
            "channel_template": {
                "WHATSAPP": {
                    "template_id": "promo",
                    "language_code": "en_US",
                    "parameters": {"body[1]text": "${a}"},
                }
            }
        }
    }
    with pytest.raises(ValueError, match="at most 10"):
        AppMessage.choice("", [str(i) for i in range(11)])
