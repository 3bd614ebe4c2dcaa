"""Placeholders are extracted from every text field of every kind and checked."""

import pytest
from django.core.exceptions import ValidationError

from campaigns.models import MessageTemplate
from campaigns.placeholders import PlaceholderError, extract

pytestmark = pytest.mark.django_db


def _template(**fields) -> MessageTemplate:
    fields.setdefault("name", "T")
    return MessageTemplate(**fields)


@pytest.mark.parametrize(
    ("fields", "expected"),
    [
        (
            {"kind": "TEXT", "text": "Hi ${first_name}, code ${code} ${code}"},
            ["first_name", "code"],
        ),
        ({"kind": "MEDIA", "media_url": "https://x.test/${file}.jpg"}, ["file"]),
        (
            {
                "kind": "CARD",
                "title": "Sale ${a}",
                "description": "For ${b}",
                "media_url": "https://x.test/${c}",
                "choices": "Yes ${d}\nNo",
            },
            ["a", "b", "c", "d"],
        ),
        ({"kind": "CHOICE", "text": "Pick ${e}", "choices": "${f}\nother"}, ["e", "f"]),
        (
            {
                "kind": "CHANNEL_TEMPLATE",
                "template_id": "promo_${g}",
                "template_language": "${h}",
                "template_parameters": {
                    "body[1]text": "${first_name}",
                    "body[2]text": "x ${i}",
                },
            },
            ["g", "h", "first_name", "i"],
        ),
    ],
)
def test_placeholders_are_extracted_from_every_text_field_of_each_kind(
    fields, expected
):
    template = _template(**fields)
    template.full_clean()
    assert template.placeholders == expected
    template.save()
    template.refresh_from_db()
    assert template.placeholders == expected


def test_fields_the_kind_does_not_use_are_ignored():
    template = _template(kind="TEXT", text="Hi", title="${unused}")
    template.full_clean()
    assert template.placeholders == []


@pytest.mark.parametrize(
    ("text", "position", "words"),
    [
        ("Hi ${name", 4, "not closed"),
        ("Hi $name!", 4, "needs braces"),
        ("Hi ${na me}", 8, "not allowed"),
        ("Hi ${}", 4, "empty placeholder"),
        ("Hi ${na*me}", 8, "'*' is not allowed"),
        ("${a} and ${b", 10, "not closed"),
    ],
)
def test_malformed_placeholders_are_refused_with_their_position(text, position, words):
    with pytest.raises(PlaceholderError) as info:
        extract(text)
    assert info.value.position == position
    assert words in str(info.value)
    assert f"character {position}" in str(info.value)


def test_plain_dollar_amounts_are_not_placeholders():
    assert extract("Only $5 today, ${first_name}! $ and $$") == ["first_name"]


@pytest.mark.parametrize(
    ("fields", "field"),
    [
        ({"kind": "TEXT", "text": "Hi ${name"}, "text"),
        ({"kind": "CARD", "title": "ok", "description": "Hi $name"}, "description"),
        ({"kind": "CHOICE", "choices": "Yes\n${}"}, "choices"),
        ({"kind": "MEDIA", "media_url": "https://x/${a b}"}, "media_url"),
        (
            {
                "kind": "CHANNEL_TEMPLATE",
                "template_id": "promo",
                "template_language": "en",
                "template_parameters": {"body[1]text": "${x"},
            },
            "template_parameters",
        ),
    ],
)
def test_a_malformed_placeholder_is_an_error_on_its_own_field(fields, field):
    template = _template(**fields)
    with pytest.raises(ValidationError) as info:
        template.full_clean()
    errors = info.value.message_dict
    assert list(errors) == [field]
    assert "malformed placeholder" in errors[field][0]
    assert "at character" in errors[field][0]


def test_saving_a_malformed_template_is_refused_even_without_clean():
    with pytest.raises(ValidationError):
        _template(kind="TEXT", text="Hi ${x").save()
    assert not MessageTemplate.objects.exists()


@pytest.mark.parametrize("name", ["_batch_id", "_anything"])
def test_reserved_names_are_refused(name):
    template = _template(kind="TEXT", text=f"Id ${{{name}}}")
    with pytest.raises(ValidationError) as info:
        template.full_clean()
    assert "reserved" in info.value.message_dict["text"][0]


def test_each_kind_requires_its_fields_and_at_most_ten_choices():
    with pytest.raises(ValidationError) as info:
        _template(
            kind="CHOICE", choices="\n".join(str(i) for i in range(11))
        ).full_clean()
    assert "At most 10 choices" in info.value.message_dict["choices"][0]
    with pytest.raises(ValidationError) as info:
        _template(kind="CHANNEL_TEMPLATE").full_clean()
    assert "template_id" in info.value.message_dict
    with pytest.raises(ValidationError) as info:
        _template(kind="CARD").full_clean()
    assert "title" in info.value.message_dict
