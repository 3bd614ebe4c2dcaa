"""A marketer builds carousel, list, location, contact-info and omni-template
messages, and choices with links, calls, calendar entries and postback data,
in the admin without JSON; each becomes the Sinch message Sinch documents,
with its placeholders found, previewed and counted for SMS."""

import pytest
from django.urls import reverse

from campaigns.authoring.preview import preview_contact
from campaigns.authoring.rendering import MessagePlan
from campaigns.authoring.sms import analyse
from campaigns.models import MessageTemplate
from contacts.models import ConsentState

ADD = reverse("admin:campaigns_messagetemplate_add")
IN = ConsentState.OPTED_IN


def _form(**fields):
    """The add form as the page posts it: every field, every inline."""
    data = {
        "name": "Spring",
        "kind": "TEXT",
        "text": "",
        "title": "",
        "description": "",
        "media_url": "",
        "choices": "",
        "latitude": "",
        "longitude": "",
        "label": "",
        "contact_name": "",
        "contact_phones": "",
        "contact_emails": "",
        "contact_company": "",
        "template_channel": "WHATSAPP",
        "template_id": "",
        "template_version": "",
        "template_language": "",
        "template_parameters": "{}",
        "parameters-TOTAL_FORMS": 0,
        "parameters-INITIAL_FORMS": 0,
    }
    for prefix in ("cards", "list_items", "overrides"):
        data[f"{prefix}-TOTAL_FORMS"] = 0
        data[f"{prefix}-INITIAL_FORMS"] = 0
    data.update(fields)
    return data


def _rows(prefix, rows):
    data = {f"{prefix}-TOTAL_FORMS": len(rows)}
    for index, row in enumerate(rows):
        data.update({f"{prefix}-{index}-{k}": v for k, v in row.items()})
    return data


def _create(client, marketer, **fields) -> MessageTemplate:
    client.force_login(marketer)
    response = client.post(ADD, _form(**fields))
    assert response.status_code == 302, _errors(response)
    return MessageTemplate.objects.get(name=fields.get("name", "Spring"))


def _errors(response) -> dict:
    """The form's and the inlines' errors, by where they are shown."""
    found = dict(response.context["adminform"].form.errors)
    for inline in response.context["inline_admin_formsets"]:
        formset = inline.formset
        if formset.non_form_errors():
            found[formset.prefix] = list(formset.non_form_errors())
        for index, errors in enumerate(formset.errors):
            for field, messages in errors.items():
                found[f"{formset.prefix}-{index}-{field}"] = list(messages)
    return found


def _refused(client, marketer, **fields) -> dict:
    client.force_login(marketer)
    response = client.post(ADD, _form(**{"name": "Bad", **fields}))
    assert response.status_code == 200, "the bad form was saved"
    assert not MessageTemplate.objects.filter(name="Bad").exists()
    return _errors(response)


CAROUSEL = {
    "kind": "CAROUSEL",
    "choices": "All offers | https://shop.example/offers?tier=${tier}",
    **_rows(
        "cards",
        [
            {
                "title": "Jackets for ${first_name}",
                "description": "-20% until Sunday",
                "media_url": "https://img.example/jacket.png",
                "choices": "Buy | https://shop.example/jacket\n"
                "Remind me | postback: remind-jacket",
            },
            {
                "title": "Shoes",
                "description": "",
                "media_url": "",
                "choices": "Call the shop | tel:+49 30 1234567",
            },
        ],
    ),
}


def test_a_marketer_builds_a_carousel_with_cards_as_rows(client, marketer):
    template = _create(client, marketer, **CAROUSEL)
    assert template.placeholders == ["tier", "first_name"]
    assert set(template.parameters.values_list("name", flat=True)) == {
        "tier",
        "first_name",
    }
    assert template.sinch_message() == {
        "carousel_message": {
            "cards": [
                {
                    "title": "Jackets for ${first_name}",
                    "description": "-20% until Sunday",
                    "media_message": {"url": "https://img.example/jacket.png"},
                    "choices": [
                        {
                            "url_message": {
                                "title": "Buy",
                                "url": "https://shop.example/jacket",
                            }
                        },
                        {
                            "text_message": {"text": "Remind me"},
                            "postback_data": "remind-jacket",
                        },
                    ],
                },
                {
                    "title": "Shoes",
                    "choices": [
                        {
                            "call_message": {
                                "title": "Call the shop",
                                "phone_number": "+49301234567",
                            }
                        }
                    ],
                },
            ],
            "choices": [
                {
                    "url_message": {
                        "title": "All offers",
                        "url": "https://shop.example/offers?tier=${tier}",
                    }
                }
            ],
        }
    }
    change = reverse("admin:campaigns_messagetemplate_change", args=[template.pk])
    page = client.get(change).content.decode()
    assert "&quot;carousel_message&quot;" in page
    assert 'name="cards-0-title"' in page


def test_a_carousel_without_cards_or_with_too_many_is_refused(client, marketer):
    errors = _refused(client, marketer, kind="CAROUSEL")
    assert errors["cards"] == ["A carousel needs at least one card."]
    eleven = _rows("cards", [{"title": f"Card {i}"} for i in range(11)])
    errors = _refused(client, marketer, kind="CAROUSEL", **eleven)
    assert errors["cards"] == ["A carousel has at most 10 cards (11 given)."]
    four = "\n".join(f"Option {i}" for i in range(4))
    errors = _refused(
        client,
        marketer,
        kind="CAROUSEL",
        choices=four,
        **_rows("cards", [{"title": "A"}]),
    )
    assert errors["choices"] == ["At most 3 choices (4 given)."]


def test_a_card_without_content_and_a_bad_choice_line_are_shown_on_the_card(
    client, marketer
):
    rows = _rows(
        "cards",
        [{"title": "", "description": "", "choices": "Buy | htp://typo"}],
    )
    errors = _refused(client, marketer, kind="CAROUSEL", **rows)
    assert errors["cards-0-title"] == [
        "A card needs a title, a description or an image."
    ]
    assert errors["cards-0-choices"] == [
        "Line 1: “htp://typo” is not a link (https://...), a call (tel:+...), "
        "a calendar entry (calendar: ...) or postback data (postback: ...)."
    ]


LIST = {
    "kind": "LIST",
    "title": "Pick your flavour, ${first_name}",
    "description": "Ice cream of the week",
    **_rows(
        "list_items",
        [
            {"section": "Fruit", "title": "Strawberry", "postback_data": "straw"},
            {"section": "Fruit", "title": "Mango", "description": "${mango_note}"},
            {"section": "Classics", "title": "Vanilla"},
        ],
    ),
}


def test_a_marketer_builds_a_list_whose_rows_form_sections(client, marketer):
    template = _create(client, marketer, **LIST)
    assert template.placeholders == ["first_name", "mango_note"]
    assert template.sinch_message() == {
        "list_message": {
            "title": "Pick your flavour, ${first_name}",
            "description": "Ice cream of the week",
            "sections": [
                {
                    "title": "Fruit",
                    "items": [
                        {"choice": {"title": "Strawberry", "postback_data": "straw"}},
                        {
                            "choice": {
                                "title": "Mango",
                                "description": "${mango_note}",
                            }
                        },
                    ],
                },
                {"title": "Classics", "items": [{"choice": {"title": "Vanilla"}}]},
            ],
        }
    }


def test_a_list_needs_a_title_and_one_to_ten_items(client, marketer):
    errors = _refused(client, marketer, kind="LIST", title="")
    assert errors["title"] == ["Required for a list message."]
    assert errors["list_items"] == ["A list needs at least one item."]
    eleven = _rows("list_items", [{"title": f"Item {i}"} for i in range(11)])
    errors = _refused(client, marketer, kind="LIST", title="Menu", **eleven)
    assert errors["list_items"] == ["A list has at most 10 items in all (11 given)."]


def test_a_location_is_a_point_with_a_title(client, marketer):
    template = _create(
        client,
        marketer,
        kind="LOCATION",
        title="Our store, ${first_name}",
        label="Alexanderplatz 1",
        latitude="52.5219",
        longitude="13.4132",
    )
    assert template.placeholders == ["first_name"]
    assert template.sinch_message() == {
        "location_message": {
            "coordinates": {"latitude": 52.5219, "longitude": 13.4132},
            "title": "Our store, ${first_name}",
            "label": "Alexanderplatz 1",
        }
    }
    errors = _refused(client, marketer, kind="LOCATION", title="X", latitude="95")
    assert errors["latitude"] == ["Required for a location: a number from -90 to 90."]
    assert errors["longitude"] == [
        "Required for a location: a number from -180 to 180."
    ]


def test_a_contact_card_has_a_name_and_numbers_one_per_line(client, marketer):
    template = _create(
        client,
        marketer,
        kind="CONTACT_INFO",
        contact_name="${shop_name} customer care",
        contact_phones="+49 30 1234567 | work\n+4915112345678",
        contact_emails="care@shop.example | WORK",
        contact_company="Shop GmbH",
    )
    assert template.placeholders == ["shop_name"]
    assert template.sinch_message() == {
        "contact_info_message": {
            "name": {"full_name": "${shop_name} customer care"},
            "phone_numbers": [
                {"phone_number": "+49301234567", "type": "WORK"},
                {"phone_number": "+4915112345678"},
            ],
            "email_addresses": [{"email_address": "care@shop.example", "type": "WORK"}],
            "organization": {"company": "Shop GmbH"},
        }
    }
    errors = _refused(
        client,
        marketer,
        kind="CONTACT_INFO",
        contact_name="Care",
        contact_phones="+49 30\n030 1234567",
        contact_emails="care-at-shop",
    )
    assert errors["contact_phones"] == [
        "Line 1: “+49 30” is not a phone number in international form, "
        "e.g. +493012345678 | WORK.",
        "Line 2: “030 1234567” is not a phone number in international form, "
        "e.g. +493012345678 | WORK.",
    ]
    assert errors["contact_emails"] == [
        "Line 1: “care-at-shop” is not an email address, e.g. info@shop.example | WORK."
    ]


def test_an_omni_template_names_its_id_version_language_and_parameters(
    client, marketer
):
    template = _create(
        client,
        marketer,
        kind="OMNI_TEMPLATE",
        template_id="01HXTEMPLATE",
        template_version="3",
        template_language="en-US",
        template_parameters='{"name": "${first_name}"}',
    )
    assert template.placeholders == ["first_name"]
    assert template.sinch_message() == {
        "template_message": {
            "omni_template": {
                "template_id": "01HXTEMPLATE",
                "version": "3",
                "language_code": "en-US",
                "parameters": {"name": "${first_name}"},
            }
        }
    }
    errors = _refused(client, marketer, kind="OMNI_TEMPLATE", template_id="x")
    assert errors["template_version"] == ["Required for an omni template message."]


CHOICES = (
    "Yes | postback: yes-${code}\n"
    "Visit the shop | https://shop.example/${code}\n"
    "Call us | tel:+493012345678\n"
    "Save the date | calendar: 2027-01-10 18:00-20:00 Launch party"
    " | https://shop.example/launch\n"
    "Map | url: ${map_link}"
)


def test_choices_with_links_calls_calendar_entries_and_postback_data(
    client, marketer, settings
):
    settings.TIME_ZONE = "Europe/Berlin"
    template = _create(
        client, marketer, kind="CHOICE", text="Hi ${first_name}", choices=CHOICES
    )
    assert template.placeholders == ["first_name", "code", "map_link"]
    assert template.sinch_message() == {
        "choice_message": {
            "text_message": {"text": "Hi ${first_name}"},
            "choices": [
                {"text_message": {"text": "Yes"}, "postback_data": "yes-${code}"},
                {
                    "url_message": {
                        "title": "Visit the shop",
                        "url": "https://shop.example/${code}",
                    }
                },
                {
                    "call_message": {
                        "title": "Call us",
                        "phone_number": "+493012345678",
                    }
                },
                {
                    "calendar_message": {
                        "title": "Save the date",
                        "event_start": "2027-01-10T17:00:00Z",
                        "event_end": "2027-01-10T19:00:00Z",
                        "event_title": "Launch party",
                        "fallback_url": "https://shop.example/launch",
                    }
                },
                {"url_message": {"title": "Map", "url": "${map_link}"}},
            ],
        }
    }


def test_every_bad_choice_line_is_named_with_what_was_expected(client, marketer):
    bad = (
        "| https://x.example\n"
        "Call | tel:12345\n"
        "Party | calendar: 2027-13-10 18:00-20:00 X | https://x.example\n"
        "Party | calendar: 2027-01-10 20:00-18:00 X | https://x.example\n"
        "Party | calendar: 2027-01-10 18:00-20:00 X\n"
        "Yes | postback:"
    )
    errors = _refused(client, marketer, kind="CHOICE", text="Pick", choices=bad)
    assert errors["choices"] == [
        "Line 1: “| https://x.example” has no label before the “|”.",
        "Line 2: “tel:12345” is not a phone number in international form, "
        "e.g. tel:+493012345678.",
        "Line 3: “2027-13-10 18:00-20:00 X” holds a day or time that does not exist.",
        "Line 4: the calendar entry ends before it starts.",
        "Line 5: a calendar entry ends with the page opened where calendars are "
        "not supported, e.g. “| https://shop.example/launch”.",
        "Line 6: “postback:” needs the data to send back.",
    ]
    eleven = "\n".join(f"Option {i}" for i in range(11))
    errors = _refused(client, marketer, kind="CHOICE", text="Pick", choices=eleven)
    assert errors["choices"] == ["At most 10 choices (11 given)."]


def test_a_channel_override_replaces_the_message_on_one_channel(client, marketer):
    overrides = _rows(
        "overrides",
        [
            {
                "channel": "WHATSAPP",
                "form": "TEMPLATE",
                "omni_template_id": "spring_${tier}",
                "omni_version": "latest",
                "omni_language": "en_US",
            },
            {"channel": "SMS", "form": "PAYLOAD", "payload": "Sale! ${first_name}"},
        ],
    )
    template = _create(client, marketer, kind="TEXT", text="Hi", **overrides)
    assert template.placeholders == ["tier", "first_name"]
    assert template.sinch_message() == {
        "text_message": {"text": "Hi"},
        "explicit_channel_message": {"SMS": "Sale! ${first_name}"},
        "explicit_channel_omni_message": {
            "WHATSAPP": {
                "template_reference": {
                    "template_id": "spring_${tier}",
                    "version": "latest",
                    "language_code": "en_US",
                }
            }
        },
    }
    bad = _rows(
        "overrides",
        [
            {"channel": "SMS", "form": "TEXT", "text": "Hi"},
            {"channel": "WHATSAPP", "form": "TEMPLATE", "omni_template_id": "x"},
        ],
    )
    errors = _refused(client, marketer, kind="TEXT", text="Hi", **bad)
    assert errors["overrides-0-channel"] == [
        "Sinch replaces the message by another kind only on WHATSAPP, KAKAOTALK, "
        "WECHAT; for this channel give the channel's own payload."
    ]
    assert errors["overrides-1-omni_version"] == [
        "Required for “Omni template instead”."
    ]


def test_an_old_form_without_the_new_inlines_still_saves(client, marketer):
    data = _form(kind="TEXT", text="Hi ${first_name}")
    for prefix in ("cards", "list_items", "overrides"):
        del data[f"{prefix}-TOTAL_FORMS"], data[f"{prefix}-INITIAL_FORMS"]
    client.force_login(marketer)
    assert client.post(ADD, data).status_code == 302
    assert MessageTemplate.objects.get().placeholders == ["first_name"]


@pytest.fixture
def ann(make_contact):
    return make_contact(
        consent=IN, first_name="Ann", attributes={"tier": "gold", "code": "X1"}
    )


def test_the_preview_shows_each_text_of_a_carousel_rendered(
    client, marketer, ann, make_campaign, make_list
):
    template = _create(client, marketer, **CAROUSEL)
    campaign = make_campaign(template, [make_list("L")], "C")
    preview = preview_contact(campaign, ann)
    fields = dict(preview.fields)
    assert fields["carousel_message.cards[0].title"] == "Jackets for Ann"
    assert (
        fields["carousel_message.choices[0].url_message.url"]
        == "https://shop.example/offers?tier=gold"
    )
    assert not preview.missing


SMS_CASES = {
    "carousel": (
        CAROUSEL,
        "Jackets for Ann\n-20% until Sunday\nhttps://img.example/jacket.png\n"
        "Buy\nhttps://shop.example/jacket\nRemind me\nShoes\nCall the shop\n"
        "+49301234567\nAll offers\nhttps://shop.example/offers?tier=gold",
    ),
    "list": (
        {**LIST, "description": ""},
        "Pick your flavour, Ann\nFruit\nStrawberry\nMango\nnew!\nClassics\nVanilla",
    ),
    "location": (
        {
            "kind": "LOCATION",
            "title": "Store",
            "label": "Alexanderplatz 1",
            "latitude": "52.5",
            "longitude": "13.4",
        },
        "Store\nAlexanderplatz 1\nhttps://maps.google.com/?q=52.5,13.4",
    ),
    "contact info": (
        {
            "kind": "CONTACT_INFO",
            "contact_name": "Care",
            "contact_phones": "+49301234567",
        },
        "Care\n+49301234567",
    ),
    "omni template": (
        {
            "kind": "OMNI_TEMPLATE",
            "template_id": "t",
            "template_version": "1",
            "template_parameters": '{"name": "${first_name}"}',
        },
        "Ann",
    ),
    "choice with actions": (
        {
            "kind": "CHOICE",
            "text": "Pick",
            "choices": CHOICES.replace("${map_link}", "https://m.example"),
        },
        "Pick\nYes\nVisit the shop\nhttps://shop.example/X1\nCall us\n+493012345678"
        "\nSave the date\nhttps://shop.example/launch\nMap\nhttps://m.example",
    ),
}


@pytest.mark.parametrize("case", list(SMS_CASES))
def test_the_sms_estimate_counts_what_an_sms_recipient_reads(
    client, marketer, ann, case
):
    fields, expected = SMS_CASES[case]
    template = _create(client, marketer, **fields)
    plan = MessagePlan.from_template(template)
    values = {"first_name": "Ann", "tier": "gold", "code": "X1", "mango_note": "new!"}
    text = plan.text(values)
    assert text == expected
    assert analyse(text).segments == (1 if len(expected) <= 160 else 2)


def test_a_carousel_campaign_reaches_sinch_rendered_per_recipient(
    client,
    marketer,
    sender,
    sinch,
    control,
    make_audience,
    make_campaign,
    django_capture_on_commit_callbacks,
):
    import time

    from campaigns.dispatch import launching

    template = _create(
        client,
        marketer,
        **{**CAROUSEL, "choices": ""},
        **_rows(
            "overrides",
            [{"channel": "SMS", "form": "PAYLOAD", "payload": "Hi ${first_name}"}],
        ),
    )
    template.parameters.filter(name="tier").update(default="all")
    names = {"+14155550000": "Ann", "+14155550001": "Bo"}
    customers = make_audience("Customers", names)
    campaign = make_campaign(template, [customers], "Carousel", checked=True)
    with django_capture_on_commit_callbacks(execute=True):
        launching.launch(campaign, sender)
    deadline = time.monotonic() + 5
    while len(messages := control.state()["messages"]) < 2:
        assert time.monotonic() < deadline, messages
        time.sleep(0.02)
    rendered = {m["identity"].lstrip("+"): m["rendered"] for m in messages}
    assert len(rendered) == 2
    for identity, message in rendered.items():
        name = names["+" + identity]
        assert message["carousel_message"]["cards"][0]["title"] == (
            f"Jackets for {name}"
        )
        assert message["explicit_channel_message"] == {"SMS": f"Hi {name}"}
