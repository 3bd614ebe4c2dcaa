"""A template's text has a length limit that Sinch delivers on every channel:
a longer text is a clear error on its field, in the admin and in the model."""

import pytest
from django.core.exceptions import ValidationError

from campaigns.models import MessageTemplate
from campaigns.models.template_parts import ChannelOverride
from campaigns.text_limits import MAX_TEXT_CHARS
from tests.campaigns.test_template_admin import ADD, _form


def test_the_limit_is_sinchs_whatsapp_text_limit():
    assert MAX_TEXT_CHARS == 4096


def test_a_text_over_the_limit_is_an_error_on_its_field(client, marketer):
    client.force_login(marketer)
    response = client.post(ADD, _form(text="x" * 1_000_000))

    assert response.status_code == 200
    errors = response.context["adminform"].form.errors
    assert list(errors) == ["text"]
    assert "1,000,000 characters" in errors["text"][0]
    assert "at most 4,096" in errors["text"][0]
    assert not MessageTemplate.objects.exists()


def test_a_text_at_the_limit_is_saved(client, marketer):
    client.force_login(marketer)
    response = client.post(ADD, _form(text="Hi ${first_name} " + "x" * 4079))
    assert response.status_code == 302
    assert len(MessageTemplate.objects.get().text) == MAX_TEXT_CHARS


@pytest.mark.parametrize(
    ("fields", "field"),
    [
        ({"kind": "CHOICE", "text": "y" * 4097, "choices": "Yes"}, "text"),
        ({"kind": "CARD", "title": "T", "description": "d" * 4097}, "description"),
        (
            {
                "kind": "OMNI_TEMPLATE",
                "template_id": "t",
                "template_version": "1",
                "template_parameters": {"body": "p" * 4097},
            },
            "template_parameters",
        ),
    ],
)
def test_every_message_text_of_a_template_is_limited(db, fields, field):
    template = MessageTemplate(name="Long", **fields)
    with pytest.raises(ValidationError) as caught:
        template.full_clean()
    assert "at most 4,096" in " ".join(caught.value.message_dict[field])


def test_a_channel_override_text_is_limited_too(db):
    template = MessageTemplate.objects.create(name="T", kind="TEXT", text="Hi")
    override = ChannelOverride(template=template, channel="SMS", text="z" * 4097)
    with pytest.raises(ValidationError) as caught:
        override.full_clean()
    assert "at most 4,096" in caught.value.message_dict["text"][0]
