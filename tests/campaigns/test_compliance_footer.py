"""The compliance footer of marketing SMS (issue 13.6): "Acme Shoes: Reply STOP
to opt out" at the end of the text, in the contact's language, counted in the
segments and the cost, shown in the preview, the pre-send check and the
template editor. Sending it (test send, a launched batch) is in
test_compliance_footer_sending.py.
"""

import csv
from decimal import Decimal

import pytest
from django.core.exceptions import ImproperlyConfigured, ValidationError
from django.urls import reverse

from campaigns.authoring import preview
from campaigns.authoring.presend import run_presend_check
from campaigns.authoring.rendering import MessagePlan, freeze_message
from campaigns.checks import check_compliance_footer
from campaigns.compliance.footer import NO_OPT_OUT_WARNING, footer_settings
from campaigns.models import MessageTemplate
from contacts.models import ConsentState

IN = ConsentState.OPTED_IN
ENGLISH = "\nAcme Shoes: Reply STOP to opt out"
GERMAN = "\nAcme Shoes: Antworte STOP zum Abmelden"
FRENCH = "\nAcme Shoes: Répondez STOP pour vous désabonner"


@pytest.fixture
def footer_on(settings):
    settings.COMPLIANCE_FOOTER_ORGANISATION = "Acme Shoes"
    settings.COMPLIANCE_FOOTER_OPT_OUT = "Reply STOP to opt out"
    settings.COMPLIANCE_FOOTER_BY_LANGUAGE = (
        "de=Antworte STOP zum Abmelden;fr=Répondez STOP pour vous désabonner"
    )
    return settings


@pytest.fixture
def customers(make_list, make_contact):
    """One opted-in customer per language case."""
    customers = make_list("Customers")
    people = {
        "no_language": make_contact("+14155550101", consent=IN, lists=[customers]),
        "de": make_contact(
            "+14155550102", consent=IN, lists=[customers], language="de"
        ),
        "de_AT": make_contact(
            "+14155550103", consent=IN, lists=[customers], language="de-AT"
        ),
        "fr": make_contact(
            "+14155550104", consent=IN, lists=[customers], language="fr"
        ),
        "it": make_contact(
            "+14155550105", consent=IN, lists=[customers], language="it"
        ),
    }
    return customers, people


@pytest.fixture
def sale(make_template, make_campaign, customers):
    """A marketing SMS campaign of "Hi ${first_name}, spring sale!"."""
    template = make_template("Spring", "Hi ${first_name}, spring sale!")
    return make_campaign(template, [customers[0]], "Spring")


def texts_by_person(campaign, people) -> dict[str, str]:
    plan = MessagePlan.for_campaign(campaign)
    return {
        key: plan.text(plan.values_for(contact)[0]) for key, contact in people.items()
    }


# --- where the footer goes ---


def test_a_marketing_sms_ends_with_the_footer_in_the_contacts_language(
    footer_on, sale, customers
):
    _, people = customers
    texts = texts_by_person(sale, people)

    assert texts == {
        "no_language": f"Hi {people['no_language'].first_name}, spring sale!" + ENGLISH,
        "de": f"Hi {people['de'].first_name}, spring sale!" + GERMAN,
        # de-AT has no text of its own: the German one.
        "de_AT": f"Hi {people['de_AT'].first_name}, spring sale!" + GERMAN,
        "fr": f"Hi {people['fr'].first_name}, spring sale!" + FRENCH,
        # Italian is not configured: the default.
        "it": f"Hi {people['it'].first_name}, spring sale!" + ENGLISH,
    }


def test_the_message_sinch_gets_holds_the_footer_as_each_recipients_parameter(
    footer_on, sale, customers
):
    _, people = customers
    plan = MessagePlan.for_campaign(sale)

    assert plan.message == {
        "text_message": {"text": "Hi ${first_name}, spring sale!${cm_footer}"}
    }
    values, missing = plan.values_for(people["de_AT"])
    assert not missing
    assert values["cm_footer"] == GERMAN


def test_a_transactional_campaign_gets_no_footer(footer_on, sale, customers):
    sale.purpose = "TRANSACTIONAL"
    sale.save()
    _, people = customers

    texts = texts_by_person(sale, people)
    assert all(text.endswith("spring sale!") for text in texts.values()), texts
    assert "cm_footer" not in str(MessagePlan.for_campaign(sale).message)


def test_no_footer_when_the_setting_is_empty(settings, sale, customers):
    settings.COMPLIANCE_FOOTER_OPT_OUT = ""
    _, people = customers

    texts = texts_by_person(sale, people)
    assert all(text.endswith("spring sale!") for text in texts.values()), texts
    assert MessagePlan.for_campaign(sale).message == {
        "text_message": {"text": "Hi ${first_name}, spring sale!"}
    }


def test_the_footer_is_not_added_twice_when_the_template_ends_with_it(
    footer_on, make_template, make_campaign, customers
):
    template = make_template(
        "Spring ends with it", "Hi ${first_name}!\nAcme Shoes: Reply STOP to opt out."
    )
    campaign = make_campaign(template, [customers[0]], "Ends with it")
    _, people = customers

    texts = texts_by_person(campaign, people)
    assert texts["it"].count("Reply STOP to opt out") == 1
    assert texts["it"].endswith("Reply STOP to opt out.")
    # A German reader still gets the German footer: it is not the same text.
    assert texts["de"].endswith(GERMAN)


def test_only_text_messages_get_the_footer(footer_on, make_template, make_campaign):
    template = make_template(
        "Card", kind=MessageTemplate.Kind.CARD, title="Spring", description="Sale"
    )
    campaign = make_campaign(template, [], "Card on SMS")

    assert MessagePlan.for_campaign(campaign).footer is None


def test_a_campaign_with_an_sms_fallback_gets_the_footer_only_when_sms_is_a_channel(
    footer_on, make_template, make_campaign
):
    template = make_template("RCS spring", "Spring sale!")
    rcs_only = make_campaign(template, [], "RCS only", channel="RCS")
    with_sms = make_campaign(
        template,
        [],
        "RCS then SMS",
        channel="RCS",
        channel_priority_order=["RCS", "SMS"],
    )

    assert MessagePlan.for_campaign(rcs_only).footer is None
    # The Batch API has no SMS-only text: the one text carries the footer.
    assert MessagePlan.for_campaign(with_sms).message == {
        "text_message": {"text": "Spring sale!${cm_footer}"}
    }


def test_the_footer_is_frozen_with_the_message_at_launch(footer_on, sale, customers):
    freeze_message(sale)
    footer_on.COMPLIANCE_FOOTER_ORGANISATION = "Other Name"
    footer_on.COMPLIANCE_FOOTER_OPT_OUT = ""
    footer_on.COMPLIANCE_FOOTER_BY_LANGUAGE = ""
    _, people = customers

    texts = texts_by_person(sale, people)
    assert texts["de"].endswith(GERMAN)
    assert texts["it"].endswith(ENGLISH)


# --- preview and pre-send check ---


def test_the_preview_shows_the_footer_and_where_it_comes_from(
    footer_on, sale, customers, client, marketer
):
    _, people = customers
    [shown] = preview.preview_contacts(sale, [people["de_AT"]])

    assert shown.fields == [
        ("text_message.text", f"Hi {people['de_AT'].first_name}, spring sale!{GERMAN}")
    ]
    footer = shown.parameters[-1]
    assert footer.name == "cm_footer"
    assert footer.value == GERMAN
    assert "language de" in footer.origin

    client.force_login(marketer)
    url = reverse("admin:campaigns_campaign_preview", args=[sale.pk])
    page = client.get(url, {"contact": "+14155550103"}).content.decode()
    assert "Antworte STOP zum Abmelden" in page


def test_the_presend_check_renders_each_recipient_with_their_footer(
    footer_on, sale, customers
):
    _, people = customers
    result = run_presend_check(sale)

    with open(result.csv_path, encoding="utf-8") as handle:
        rows = {int(r["contact_id"]): r for r in csv.DictReader(handle)}
    assert rows[people["fr"].pk]["rendered_text"].endswith(FRENCH)
    assert rows[people["de_AT"].pk]["rendered_text"].endswith(GERMAN)
    assert rows[people["it"].pk]["rendered_text"].endswith(ENGLISH)
    note = result.summary["footer"]["note"]
    assert note.startswith("Footer added: ")
    assert "“Acme Shoes: Antworte STOP zum Abmelden” (2 recipients)" in note
    assert "“Acme Shoes: Reply STOP to opt out” (2 recipients)" in note
    assert "it adds no segment" in note
    assert not result.summary["footer"]["warning"]


def long_text(length: int, char: str = "x") -> str:
    return (char * length)[:length]


@pytest.mark.parametrize(
    ("body", "single_limit"),
    [(long_text(140), 160), (long_text(50, "ł"), 70)],
    ids=["GSM-7", "UCS-2"],
)
def test_the_footer_adds_a_segment_when_it_tips_the_message_over_one_sms(
    footer_on, make_template, make_campaign, make_list, make_contact, body,
    single_limit,
):  # fmt: skip
    assert len(body) + len(ENGLISH) > single_limit >= len(body)
    people = make_list("Three people")
    for n in range(3):
        make_contact(f"+1415555020{n}", consent=IN, lists=[people])
    campaign = make_campaign(make_template("Long", body), [people], "Long")

    with_footer = run_presend_check(campaign)
    assert dict(with_footer.segments) == {2: 3}
    assert with_footer.summary["histogram"] == ["3 recipients need 2 segments"]
    assert "+1 segment for 3 recipients" in with_footer.summary["footer"]["note"]

    footer_on.COMPLIANCE_FOOTER_OPT_OUT = ""
    footer_on.COMPLIANCE_FOOTER_ORGANISATION = ""
    footer_on.COMPLIANCE_FOOTER_BY_LANGUAGE = ""
    without = run_presend_check(campaign)
    assert dict(without.segments) == {1: 3}


def test_the_cost_estimate_counts_the_footers_segments(
    footer_on, make_template, make_campaign, make_list, make_contact
):
    footer_on.SMS_PRICES = {"default": 0.01}
    people = make_list("Two people")
    for n in range(2):
        make_contact(f"+1415555030{n}", consent=IN, lists=[people])
    campaign = make_campaign(make_template("Long", long_text(150)), [people], "Cost")

    assert Decimal(run_presend_check(campaign).summary["cost_total"]) == Decimal("0.04")
    footer_on.COMPLIANCE_FOOTER_OPT_OUT = ""
    footer_on.COMPLIANCE_FOOTER_ORGANISATION = ""
    footer_on.COMPLIANCE_FOOTER_BY_LANGUAGE = ""
    assert Decimal(run_presend_check(campaign).summary["cost_total"]) == Decimal("0.02")


def test_the_presend_check_warns_about_a_marketing_sms_with_no_way_to_opt_out(
    settings, sale
):
    settings.COMPLIANCE_FOOTER_OPT_OUT = ""
    footer = run_presend_check(sale).summary["footer"]

    assert footer["note"] == (
        "No compliance footer: the compliance footer is off "
        "(COMPLIANCE_FOOTER_OPT_OUT is empty)."
    )
    assert footer["warning"].startswith(
        "This marketing SMS has no opt-out wording and no compliance footer"
    )
    assert footer["warning"].endswith("marketing SMS must tell people how to opt out.")


def test_no_presend_warning_when_the_text_tells_people_how_to_opt_out(
    settings, make_template, make_campaign
):
    settings.COMPLIANCE_FOOTER_OPT_OUT = ""
    template = make_template("Own wording", "Spring sale! Text STOP to unsubscribe")
    campaign = make_campaign(template, [], "Own wording")

    assert run_presend_check(campaign).summary["footer"]["warning"] == ""


def test_the_presend_check_of_a_transactional_sms_says_why_there_is_no_footer(
    footer_on, sale
):
    sale.purpose = "TRANSACTIONAL"
    sale.save()

    assert run_presend_check(sale).summary["footer"] == {
        "note": "No compliance footer: transactional campaigns get no compliance "
        "footer.",
        "warning": "",
    }


# --- the template editor ---

ADD = reverse("admin:campaigns_messagetemplate_add")


def template_form(text: str) -> dict:
    return {
        "name": "Welcome",
        "kind": "TEXT",
        "text": text,
        "title": "",
        "description": "",
        "media_url": "",
        "choices": "",
        "template_channel": "WHATSAPP",
        "template_id": "",
        "template_language": "",
        "template_parameters": "{}",
        "parameters-TOTAL_FORMS": 0,
        "parameters-INITIAL_FORMS": 0,
    }


def warnings_after_saving(client, text: str) -> list[str]:
    response = client.post(ADD, template_form(text), follow=True)
    assert response.status_code == 200
    assert MessageTemplate.objects.filter(name="Welcome").exists()
    return [str(m) for m in response.context["messages"] if m.level_tag == "warning"]


def test_the_editor_warns_about_an_sms_with_no_opt_out_and_no_footer(
    settings, client, marketer
):
    settings.COMPLIANCE_FOOTER_OPT_OUT = ""
    client.force_login(marketer)

    assert warnings_after_saving(client, "Hi ${first_name}, spring sale!") == [
        NO_OPT_OUT_WARNING
    ]
    template = MessageTemplate.objects.get(name="Welcome")
    page = client.get(
        reverse("admin:campaigns_messagetemplate_change", args=[template.pk])
    )
    assert "marketing SMS must tell people how to opt out" in page.content.decode()


@pytest.mark.parametrize(
    "text",
    [
        "Spring sale! Reply STOP to end",
        "Spring sale! To opt-out, visit shop.example",
        "Spring sale! Unsubscribe at shop.example/u",
    ],
)
def test_the_editor_does_not_warn_when_the_text_has_opt_out_wording(
    settings, client, marketer, text
):
    settings.COMPLIANCE_FOOTER_OPT_OUT = ""
    client.force_login(marketer)
    assert warnings_after_saving(client, text) == []


def test_a_card_on_sms_gets_no_footer_and_a_warning_unless_it_says_how_to_opt_out(
    footer_on, make_template, make_campaign
):
    footer_on.COMPLIANCE_FOOTER_BY_LANGUAGE = "de=Antworte HALT zum Abmelden"
    card = make_template(
        "Card", kind=MessageTemplate.Kind.CARD, title="Frühling", description="Sale"
    )
    footer = run_presend_check(make_campaign(card, [], "Card")).summary["footer"]
    assert footer["note"] == (
        "No compliance footer: only text messages get the compliance footer; "
        "this is a card."
    )
    assert "no opt-out wording" in footer["warning"]

    # A configured opt-out text counts as the card's own wording.
    card.description = "Antworte HALT zum Abmelden"
    card.save()
    footer = run_presend_check(make_campaign(card, [], "Card 2")).summary["footer"]
    assert footer["warning"] == ""


def test_the_editor_does_not_warn_when_a_footer_is_configured(
    footer_on, client, marketer
):
    client.force_login(marketer)
    assert warnings_after_saving(client, "Hi ${first_name}, spring sale!") == []


def test_a_template_cannot_use_the_footers_parameter_name(make_template):
    template = MessageTemplate(name="Sneaky", text="Hi ${cm_footer}")
    with pytest.raises(ValidationError) as raised:
        template.full_clean()

    [message] = raised.value.message_dict["text"]
    assert '"cm_footer" is reserved for the compliance footer' in message
    assert "choose another name" in message


# --- settings ---


@pytest.mark.parametrize(
    ("by_language", "error"),
    [
        ("de", "“de” is not language=text"),
        ("german=Antworte STOP", "“german” is not a BCP 47 language tag"),
        ("de=", "the text for “de” is empty"),
        ("de=Antworte STOP;DE=Stopp", "“de” is given twice"),
        ("de=Antworte ${x}", "must not hold a ${...} placeholder"),
    ],
)
def test_a_malformed_language_setting_is_refused_with_what_is_wrong(
    settings, by_language, error
):
    settings.COMPLIANCE_FOOTER_OPT_OUT = "Reply STOP to opt out"
    settings.COMPLIANCE_FOOTER_BY_LANGUAGE = by_language

    with pytest.raises(ImproperlyConfigured, match="COMPLIANCE_FOOTER_BY_LANGUAGE"):
        footer_settings()
    [problem] = check_compliance_footer()
    assert problem.id == "campaigns.E001"
    assert error in problem.msg


def test_language_texts_without_a_default_text_are_refused(settings):
    settings.COMPLIANCE_FOOTER_OPT_OUT = ""
    settings.COMPLIANCE_FOOTER_BY_LANGUAGE = "de=Antworte STOP zum Abmelden"

    [problem] = check_compliance_footer()
    assert "COMPLIANCE_FOOTER_OPT_OUT is empty" in problem.msg


def test_well_formed_settings_pass_the_check(footer_on):
    assert check_compliance_footer() == []
    conf = footer_settings()
    assert conf.by_language == {
        "de": "Antworte STOP zum Abmelden",
        "fr": "Répondez STOP pour vous désabonner",
    }


def test_an_approval_covers_the_footer_that_would_be_sent(footer_on, sale):
    from campaigns.compliance.fingerprint import fingerprint

    approved = fingerprint(sale)
    footer_on.COMPLIANCE_FOOTER_ORGANISATION = "Other Name"
    assert fingerprint(sale) != approved
