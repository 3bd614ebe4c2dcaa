"""The campaign's message definition: fast texts, frozen snapshots, attributes."""

import random

import pytest
from django.urls import reverse

from campaigns.authoring import presend
from campaigns.authoring.rendering import MessagePlan, freeze_message
from campaigns.authoring.sms import sms_strings
from campaigns.models import TemplateParameter
from contacts.models import ConsentState
from sinch.placeholders import render

IN = ConsentState.OPTED_IN

KINDS = [
    {"kind": "TEXT", "text": "Hi ${first_name}, ${offer}! ${first_name} again"},
    {"kind": "MEDIA", "media_url": "https://img.example/${code}.png"},
    {
        "kind": "CARD",
        "title": "${first_name}",
        "description": "Code ${code}; $5 off",
        "media_url": "https://img.example/x.png",
        "choices": "Yes ${first_name}\nNo",
    },
    {"kind": "CHOICE", "text": "Pick, ${first_name}", "choices": "A\n${code}"},
    {
        "kind": "CHANNEL_TEMPLATE",
        "template_id": "welcome_${code}",
        "template_language": "en",
        "template_parameters": {
            "body[1]text": "${first_name}",
            "body[2]text": "${offer}",
        },
    },
    {
        "kind": "LOCATION",
        "title": "${first_name}'s store",
        "label": "${offer}",
        "latitude": 52.5,
        "longitude": 13.4,
    },
    {
        "kind": "CONTACT_INFO",
        "contact_name": "${first_name}",
        "contact_phones": "+493012345678 | WORK",
        "contact_emails": "${code}@shop.example",
    },
    {
        "kind": "OMNI_TEMPLATE",
        "template_id": "t",
        "template_version": "1",
        "template_parameters": {"name": "${first_name}", "offer": "${offer}"},
    },
    {
        "kind": "CHOICE",
        "text": "Pick",
        "choices": "Yes | postback: ${code}\nShop | https://s.example/${code}\n"
        "Call | tel:+493012345678",
    },
]
TRICKY = ["Ann", "<b>bold</b>", "${code}", "$", "{x}", "", "Zoë ★", "a\nb", "${"]


@pytest.mark.parametrize("fields", KINDS, ids=[k["kind"] for k in KINDS])
def test_the_fast_text_is_exactly_the_rendered_message_texts(make_template, fields):
    template = make_template(fields["kind"], **fields)
    plan = MessagePlan.from_template(template)
    rng = random.Random(fields["kind"])
    for _ in range(200):
        values = {
            name: rng.choice(TRICKY)
            for name in template.placeholders
            if rng.random() < 0.8  # some missing: left as written
        }
        expected = "\n".join(sms_strings(render(plan.message, values)))
        assert plan.text(values) == expected


@pytest.fixture
def frozen(make_template, make_campaign, make_contact, make_list):
    template = make_template(
        "Sale",
        "Hi ${first_name}, ${offer} for ${tier}",
        parameters={
            "offer": {"source": TemplateParameter.Source.CAMPAIGN},
            "tier": {"default": "members"},
        },
    )
    customers = make_list("Customers")
    make_contact(consent=IN, lists=[customers], first_name="Ann")
    campaign = make_campaign(
        template, [customers], "Sale", campaign_values={"offer": "20% off"}
    )
    freeze_message(campaign)
    return campaign


def test_a_launched_campaign_keeps_its_message_when_the_template_changes(frozen):
    template = frozen.template
    template.text = "Completely different: ${other}"
    template.save()
    TemplateParameter.objects.filter(template=template).update(default="changed")
    frozen.refresh_from_db()
    plan = MessagePlan.for_campaign(frozen)
    assert plan.message == {
        "text_message": {"text": "Hi ${first_name}, ${offer} for ${tier}"}
    }
    assert plan.text({"first_name": "Ann", "offer": "20% off", "tier": "members"}) == (
        "Hi Ann, 20% off for members"
    )
    result = presend.run_presend_check(frozen)
    with open(result.csv_path, encoding="utf-8") as handle:
        assert "Hi Ann, 20% off for members" in handle.read()


def test_the_preview_of_a_frozen_campaign_shows_the_frozen_message(
    frozen, client, marketer
):
    frozen.template.text = "Something else"
    frozen.template.save()
    client.force_login(marketer)
    page = client.get(
        reverse("admin:campaigns_campaign_preview", args=[frozen.pk])
    ).content.decode()
    assert "Hi Ann, 20% off for members" in page
    assert "Something else" not in page


def test_the_snapshot_round_trips(frozen):
    plan = MessagePlan.for_campaign(frozen)
    again = MessagePlan.from_snapshot(plan.snapshot())
    assert again.snapshot() == plan.snapshot() == frozen.message_snapshot
    assert [s.default for s in again.sources] == ["", "", "members"]


@pytest.mark.parametrize(
    ("attributes", "expected"),
    [
        ({"tier": "gold"}, "gold"),
        ({}, None),
        ({"note": 'my tier is "tier"'}, None),  # the key inside a value
        ({"tier": ""}, None),
        ({"tier": 3}, "3"),
        ({"tiers": "x"}, None),
    ],
)
def test_attribute_values_are_read_exactly(
    make_template, make_campaign, make_contact, make_list, attributes, expected
):
    template = make_template("T", "You are ${tier}")
    customers = make_list("C")
    make_contact(consent=IN, lists=[customers], attributes=attributes)
    campaign = make_campaign(template, [customers], "C")
    result = presend.run_presend_check(campaign)
    if expected is None:
        assert result.blocking == 1
    else:
        with open(result.csv_path, encoding="utf-8") as handle:
            assert f"You are {expected}" in handle.read()


def test_a_non_ascii_attribute_name_is_found(
    make_template, make_campaign, make_contact, make_list
):
    template = make_template(
        "T", "Grüße ${gruss}", parameters={"gruss": {"attribute": "grüße"}}
    )
    customers = make_list("C")
    make_contact(consent=IN, lists=[customers], attributes={"grüße": "Hallo"})
    campaign = make_campaign(template, [customers], "C")
    result = presend.run_presend_check(campaign)
    assert result.ok == 1


def test_the_template_page_says_which_campaigns_keep_a_frozen_copy(
    frozen, client, marketer, make_campaign
):
    make_campaign(frozen.template, name="Autumn draft")
    client.force_login(marketer)
    page = client.get(
        reverse("admin:campaigns_messagetemplate_change", args=[frozen.template.pk])
    ).content.decode()
    assert "Draft campaigns, which get your changes: Autumn draft." in page
    assert "keep the message as it was at launch: Sale." in page


def test_a_frozen_campaign_can_launch_after_its_template_changed(frozen):
    presend.run_presend_check(frozen)
    frozen.refresh_from_db()
    frozen.template.text = "Changed after the check"
    frozen.template.save()
    assert presend.campaign_can_launch(frozen) == (True, [])
