"""Every message kind the product builds is accepted by the simulator over
HTTP through our own client, and a malformed one is refused with 400 naming
the field, as Sinch's models require."""

from datetime import UTC, datetime

import pytest

from sinch.errors import SinchValidationError
from sinch.payloads import (
    AppMessage,
    CalendarEvent,
    Card,
    Choice,
    ContactEmail,
    ContactPhone,
    ListItem,
    ListSection,
    SendBatchRequest,
    omni_template_reference,
    omni_text,
)
from tests.sinch.conftest import recipients

START = datetime(2027, 1, 10, 17, tzinfo=UTC)
ACTIONS = [
    Choice("Yes", postback_data="yes-${first_name}"),
    Choice("Shop", url="https://shop.example/${first_name}"),
    Choice("Call", phone_number="+493012345678"),
    Choice(
        "Save the date",
        calendar=CalendarEvent(
            START,
            START.replace(hour=19),
            "Launch",
            "https://shop.example/launch",
            description="Drinks",
        ),
    ),
]

GOOD = {
    "choice with actions": AppMessage.choice("Pick", ACTIONS),
    "card with actions": AppMessage.card(title="Sale", choices=ACTIONS),
    "carousel": AppMessage.carousel(
        [
            Card("Jackets ${first_name}", "-20%", "https://img.example/j.png", ACTIONS),
            Card(description="Shoes"),
        ],
        [Choice("All offers", url="https://shop.example")],
    ),
    "location": AppMessage.location(
        title="Store", latitude=52.52, longitude=13.41, label="Alexanderplatz"
    ),
    "list": AppMessage.list(
        title="Flavours",
        description="Pick one",
        media_url="https://img.example/ice.png",
        sections=[
            ListSection("Fruit", [ListItem("Mango", "sweet", "mango")]),
            ListSection("", [ListItem("Vanilla")]),
        ],
    ),
    "contact info": AppMessage.contact_info(
        full_name="Care ${first_name}",
        phone_numbers=[ContactPhone("+493012345678", "WORK")],
        email_addresses=[ContactEmail("care@shop.example")],
        company="Shop GmbH",
        urls=["https://shop.example"],
    ),
    "omni template": AppMessage.omni_template(
        "01HXTEMPLATE", "latest", language_code="en_US", parameters={"n": "${x}"}
    ),
    "text with overrides": AppMessage.text("Hi").with_overrides(
        explicit_channel_message={"SMS": "Hi by SMS"},
        explicit_channel_omni_message={
            "WHATSAPP": omni_template_reference("spring", "2", language_code="en_US"),
            "KAKAOTALK": omni_text("Hi ${first_name}"),
        },
        channel_specific_message={
            "WHATSAPP": {
                "message_type": "FLOWS",
                "message": {"flow_id": "1", "flow_cta": "Book now"},
            }
        },
    ),
}


@pytest.mark.parametrize("name", list(GOOD))
def test_each_new_kind_is_accepted(client, name):
    response = client.send_batch(
        SendBatchRequest(message=GOOD[name], recipients=recipients(2))
    )
    assert response.batch_id


def violations(caught) -> dict[str, str]:
    return {v.field: v.description for v in caught.value.field_violations}


def _refused(client, message: dict) -> dict[str, str]:
    kind = next(k for k in message if k.endswith("_message"))
    extras = {k: v for k, v in message.items() if k != kind}
    with pytest.raises(SinchValidationError) as caught:
        client.send_batch(
            SendBatchRequest(
                message=AppMessage(kind, message[kind], extras),
                recipients=recipients(1),
            )
        )
    return violations(caught)


BAD = {
    "a choice of two kinds": (
        {
            "choice_message": {
                "choices": [
                    {"text_message": {"text": "a"}, "url_message": {"title": "b"}}
                ]
            }
        },
        "message.choice_message.choices[0]",
    ),
    "a link without url": (
        {"card_message": {"choices": [{"url_message": {"title": "Shop"}}]}},
        "message.card_message.choices[0].url_message.url",
    ),
    "a calendar entry without its fallback page": (
        {
            "choice_message": {
                "choices": [
                    {
                        "calendar_message": {
                            "title": "t",
                            "event_start": "2027-01-10T17:00:00Z",
                            "event_end": "2027-01-10T19:00:00Z",
                            "event_title": "e",
                        }
                    }
                ]
            }
        },
        "message.choice_message.choices[0].calendar_message.fallback_url",
    ),
    "a carousel with eleven cards": (
        {"carousel_message": {"cards": [{"title": str(i)} for i in range(11)]}},
        "message.carousel_message.cards",
    ),
    "a carousel with four choices below": (
        {
            "carousel_message": {
                "cards": [{"title": "a"}],
                "choices": [{"text_message": {"text": str(i)}} for i in range(4)],
            }
        },
        "message.carousel_message.choices",
    ),
    "a location without coordinates": (
        {"location_message": {"title": "Store"}},
        "message.location_message.coordinates",
    ),
    "a latitude out of range": (
        {
            "location_message": {
                "title": "Store",
                "coordinates": {"latitude": 91, "longitude": 0},
            }
        },
        "message.location_message.coordinates.latitude",
    ),
    "a list item without title": (
        {
            "list_message": {
                "title": "Menu",
                "sections": [{"items": [{"choice": {"description": "x"}}]}],
            }
        },
        "message.list_message.sections[0].items[0]",
    ),
    "a list of eleven items": (
        {
            "list_message": {
                "title": "Menu",
                "sections": [
                    {"items": [{"choice": {"title": str(i)}} for i in range(11)]}
                ],
            }
        },
        "message.list_message.sections",
    ),
    "a contact without a phone number": (
        {"contact_info_message": {"name": {"full_name": "Care"}}},
        "message.contact_info_message.phone_numbers",
    ),
    "an omni template without version": (
        {"template_message": {"omni_template": {"template_id": "t"}}},
        "message.template_message.omni_template.version",
    ),
    "an override on an unknown channel": (
        {"text_message": {"text": "Hi"}, "explicit_channel_message": {"FAX": "x"}},
        "message.explicit_channel_message.FAX",
    ),
    "an omni override of two kinds": (
        {
            "text_message": {"text": "Hi"},
            "explicit_channel_omni_message": {
                "WHATSAPP": {
                    "text_message": {"text": "a"},
                    "media_message": {"url": "u"},
                }
            },
        },
        "message.explicit_channel_omni_message.WHATSAPP",
    ),
    "a channel-specific message without its type": (
        {
            "text_message": {"text": "Hi"},
            "channel_specific_message": {"WHATSAPP": {"message": {}}},
        },
        "message.channel_specific_message.WHATSAPP.message_type",
    ),
}


@pytest.mark.parametrize("name", list(BAD))
def test_a_malformed_message_is_refused_naming_the_field(client, name):
    message, field = BAD[name]
    assert field in _refused(client, message)


def test_the_builders_refuse_what_sinch_would_refuse():
    with pytest.raises(ValueError, match="1 to 10 cards"):
        AppMessage.carousel([])
    with pytest.raises(ValueError, match="at most 3 choices"):
        AppMessage.carousel([Card("a")], ["1", "2", "3", "4"])
    with pytest.raises(ValueError, match="1 to 10 list items"):
        AppMessage.list(title="t", sections=[ListSection("s", [])])
    with pytest.raises(ValueError, match="at least one phone number"):
        AppMessage.contact_info(full_name="x", phone_numbers=[])
    with pytest.raises(ValueError, match="unknown message keys"):
        AppMessage("text_message", {"text": "x"}, {"agnet": {}})
