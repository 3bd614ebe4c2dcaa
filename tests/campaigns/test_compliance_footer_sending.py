"""The compliance footer reaches the phones (issue 13.6): a test send and a
launched campaign, through the real client, to a real simulator; what each
person gets is read back from the simulator's own state.
"""

import time

import pytest
from django.urls import reverse

from campaigns.authoring import presend
from campaigns.dispatch import launching, test_send
from campaigns.models import Recipient
from contacts.models import ConsentState

IN = ConsentState.OPTED_IN
SALE = "Hi {}, spring sale!"
ENGLISH = "\nAcme Shoes: Reply STOP to opt out"
GERMAN = "\nAcme Shoes: Antworte STOP zum Abmelden"
FRENCH = "\nAcme Shoes: Répondez STOP pour vous désabonner"
# Who, their number and language, and the text their phone shows.
PEOPLE = {
    "Anna": ("+14155550301", "de-AT", SALE.format("Anna") + GERMAN),
    "Bruno": ("+14155550302", "fr", SALE.format("Bruno") + FRENCH),
    "Chiara": ("+14155550303", "it", SALE.format("Chiara") + ENGLISH),
    "Dan": ("+14155550304", "", SALE.format("Dan") + ENGLISH),
}


@pytest.fixture(autouse=True)
def footer_on(settings):
    settings.COMPLIANCE_FOOTER_ORGANISATION = "Acme Shoes"
    settings.COMPLIANCE_FOOTER_OPT_OUT = "Reply STOP to opt out"
    settings.COMPLIANCE_FOOTER_BY_LANGUAGE = (
        "de=Antworte STOP zum Abmelden;fr=Répondez STOP pour vous désabonner"
    )


@pytest.fixture
def people(make_list, make_contact):
    group = make_list("Customers and seed", seed=True)
    for name, (phone, language, _) in PEOPLE.items():
        make_contact(
            phone, consent=IN, lists=[group], first_name=name, language=language
        )
    return group


@pytest.fixture
def campaign(make_template, make_campaign, people):
    template = make_template("Spring", "Hi ${first_name}, spring sale!")
    return make_campaign(template, [people], "Spring", seed_list=people)


def texts_at_sinch(control, count: int) -> dict[str, str]:
    """identity -> the SMS text the simulator delivered (waits for `count`)."""
    deadline = time.monotonic() + 5
    while len(found := control.state()["messages"]) < count:
        assert time.monotonic() < deadline, f"only {len(found)} messages"
        time.sleep(0.02)
    return {m["identity"]: m["rendered"]["text_message"]["text"] for m in found}


def expected_texts() -> dict[str, str]:
    return {phone: text for phone, _, text in PEOPLE.values()}


def test_a_test_send_delivers_the_footer_in_each_persons_language(
    sinch, control, campaign, marketer
):
    result = test_send.send_test(campaign, marketer)

    assert result.ok, result.message
    assert {m.identity: m.text for m in result.plan.sendable} == expected_texts()
    assert texts_at_sinch(control, len(PEOPLE)) == expected_texts()


def test_a_launched_campaign_delivers_the_footer_in_each_persons_language(
    sinch, control, campaign, sender, client, django_capture_on_commit_callbacks
):
    presend.run_presend_check(campaign)
    campaign.refresh_from_db()
    client.force_login(sender)
    launch_page = client.get(
        reverse("admin:campaigns_campaign_launch", args=[campaign.pk])
    ).content.decode()
    assert "Footer added: “Acme Shoes: Reply STOP to opt out” (2 recipients)" in (
        launch_page
    )
    with django_capture_on_commit_callbacks(execute=True):
        launching.launch(campaign, sender)

    assert texts_at_sinch(control, len(PEOPLE)) == expected_texts()
    # The footer is frozen with each recipient's values (configuration text,
    # the same for everyone of a language: no personal data).
    anna = Recipient.objects.get(campaign=campaign, identity="+14155550301")
    assert anna.parameters == {"first_name": "Anna", "cm_footer": GERMAN}

    dashboard = client.get(
        reverse("admin:campaigns_campaign_dashboard", args=[campaign.pk])
    ).content.decode()
    assert "Compliance footer added on SMS: “Acme Shoes: Reply STOP to opt out”" in (
        dashboard
    )
