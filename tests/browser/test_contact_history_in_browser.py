"""A compliance admin reads a contact's history and edits their attributes in
a real browser (issue 14, points 4 and 6).

Ada was in 30 campaigns, replied to the last one and then sent STOP (signed
callbacks through our webhook, processed as in production: the STOP opts her
out). Her page shows one timeline, newest first: the opt-out, the replies, the
campaigns with their statuses; page 2 holds the older campaigns. Then the
admin edits her attributes with the key/value editor (adds a number, retypes
a value, removes a row; a duplicate key is refused and nothing typed is lost)
and picks her time zone from the searchable list. A marketer edits a draft
campaign's values and fallback zone the same way.

Screenshots (1366x768) go to /tmp/screens/contact-page/.
"""

import json
import re
import secrets
from datetime import timedelta
from pathlib import Path

import pytest
from django.utils import timezone
from playwright.sync_api import expect

from campaigns.models import (
    Batch,
    Campaign,
    InboundMessage,
    Recipient,
    TemplateParameter,
)
from campaigns.tracking import inbox, receipts
from contacts.models import ConsentEvent
from contacts.services.consent import Evidence, record_consent
from sinch import signatures
from sinch.simulator import events
from tests.sinch.conftest import ACCOUNT, WEBHOOK_SECRET

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

PHONE = "+14155550188"
SCREENS = Path("/tmp/screens/contact-page")
VIEWPORT = {"width": 1366, "height": 768}


def shoot(page, name: str, *, full: bool = False) -> None:
    SCREENS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENS / f"{name}.png"), full_page=full)


def signed_reply(client, text: str, batch_id: str) -> None:
    """A reply as Sinch sends it: signed, POSTed to our webhook."""
    body = events.dumps(
        events.inbound(
            ACCOUNT,
            message_id=f"01REPLY{secrets.token_hex(8)}",
            channel="SMS",
            identity=PHONE,
            text=text,
            sender_id="",
            conversation_metadata=json.dumps({"_batch_id": batch_id}),
            mode="DISPATCH",
            now=timezone.now().timestamp(),
        )
    )
    response = client.generic(
        "POST",
        "/webhooks/sinch",
        body,
        content_type="application/json",
        headers=signatures.sign(body, WEBHOOK_SECRET),
    )
    assert response.status_code == 200


@pytest.fixture
def ada(make_contact, make_template, client, monkeypatch):
    """Ada, opted in, in 30 sent campaigns (one a day), who replied to the
    last one and then sent STOP."""
    monkeypatch.setattr(inbox, "queue_processor", lambda: None)
    person = make_contact(
        PHONE,
        first_name="Ada",
        last_name="Lovelace",
        attributes={"tier": "gold", "visits": 12, "vip": True, "old_code": "X1"},
    )
    now = timezone.now()
    record_consent(
        identity=person.identities.get(),
        kind="OPT_IN",
        purpose="MARKETING",
        source="FORM",
        evidence=Evidence(wording="Yes, send me the newsletter"),
        occurred_at=now - timedelta(days=40),
    )
    template = make_template("Newsletter", "Hi ${first_name}!")
    for day in range(30, 0, -1):
        campaign = Campaign.objects.create(
            name=f"Newsletter day {31 - day:02d}",
            template=template,
            status=Campaign.Status.COMPLETED,
        )
        batch = Batch.objects.create(
            campaign=campaign,
            sequence=1,
            size=1,
            metadata_key=f"ada-{day}",
            sinch_batch_id=f"01ADABATCH{day:04d}",
            status=Batch.Status.ACCEPTED,
            submitted_at=now - timedelta(days=day),
        )
        Recipient.objects.create(
            campaign=campaign,
            batch=batch,
            index=0,
            contact=person,
            identity=PHONE,
            status=Recipient.Status.FAILED if day == 7 else Recipient.Status.DELIVERED,
            reason="Handset unreachable" if day == 7 else "",
        )
    signed_reply(client, "Lovely, thank you!", "01ADABATCH0001")
    signed_reply(client, "STOP", "01ADABATCH0001")
    receipts.process_pending()
    assert InboundMessage.objects.filter(contact=person).count() == 2
    assert ConsentEvent.objects.filter(kind="OPT_OUT").count() == 1
    return person


def test_an_admin_reads_a_contacts_history_and_edits_their_attributes(
    page, live_server, login, compliance_admin, ada
):
    page.set_viewport_size(VIEWPORT)
    url = f"/admin/contacts/contact/{ada.pk}/change/"
    login("carla", next_url=url)

    history = page.locator("#history")
    expect(history).to_contain_text("History: campaigns, replies and consent (34)")
    rows = history.locator("tbody tr")
    expect(rows).to_have_count(25)
    # Newest first: the STOP and the opt-out it recorded (the same instant),
    # the earlier reply, then the campaigns from the most recent.
    first_two = rows.nth(0).inner_text() + rows.nth(1).inner_text()
    assert "Opt-out, marketing" in first_two
    assert "Source: inbound keyword" in first_two
    assert "Stop (opt-out recorded)" in first_two
    expect(rows.nth(2)).to_contain_text("Lovely, thank you!")
    expect(rows.nth(2)).to_contain_text("To campaign Newsletter day 30")
    expect(rows.nth(3)).to_contain_text("Newsletter day 30")
    expect(rows.nth(3)).to_contain_text("Delivered")
    expect(history.locator("tr", has_text="Newsletter day 24")).to_contain_text(
        "Handset unreachable"
    )
    history.locator("h2").evaluate("e => e.scrollIntoView()")
    shoot(page, "01-contact-history-page-1")
    shoot(page, "01-contact-page-full", full=True)

    # Page 2: the older campaigns and the opt-in.
    history.get_by_role("link", name="History page 2").click()
    expect(page).to_have_url(re.compile(r"history_page=2#history$"))
    rows = page.locator("#history tbody tr")
    expect(rows).to_have_count(9)
    expect(rows.nth(0)).to_contain_text("Newsletter day 08")
    expect(rows.nth(7)).to_contain_text("Newsletter day 01")
    expect(rows.nth(8)).to_contain_text("Opt-in, marketing")
    expect(rows.nth(8)).to_contain_text("Yes, send me the newsletter")
    expect(page.locator("#history .this-page")).to_have_text("2")
    page.locator("#history h2").evaluate("e => e.scrollIntoView()")
    shoot(page, "02-contact-history-page-2")

    # The entry opens the campaign's dashboard.
    page.locator("#history").get_by_role("link", name="Newsletter day 01").click()
    expect(page).to_have_url(re.compile(r"/campaigns/campaign/\d+/dashboard/$"))
    page.go_back()

    # Attributes: rows of key, type and value, no JSON to type.
    editor = page.locator("#id_attributes")
    editor.scroll_into_view_if_needed()
    expect(editor.locator("tbody tr")).to_have_count(5)  # four and a blank one
    expect(page.locator("textarea[name=attributes]")).to_have_count(0)
    tier = editor.locator("tbody tr", has=page.locator("input[value=tier]"))
    tier.locator(".kv-value").fill("platinum")
    code = editor.locator("tbody tr", has=page.locator("input[value=old_code]"))
    code.get_by_role("button", name="Remove").click()
    editor.get_by_role("button", name="Add a row").click()
    added = editor.locator("tbody tr").last
    added.locator(".kv-key").fill("score")
    added.get_by_label("Type").select_option("number")
    added.locator(".kv-value").fill("4.5")
    # A key given twice is refused...
    editor.get_by_role("button", name="Add a row").click()
    twice = editor.locator("tbody tr").last
    twice.locator(".kv-key").fill("tier")
    twice.locator(".kv-value").fill("silver")
    # ... and so is a zone that does not exist.
    page.fill("#id_time_zone", "Europe/Berln")
    shoot(page, "03-attributes-editing")
    page.click("input[name=_continue]")

    expect(page.locator(".errornote")).to_be_visible()
    expect(page.locator(".errorlist").first).to_be_visible()
    errors = page.locator(".errorlist")
    expect(
        errors.filter(has_text="(tier): the key is already used on row")
    ).to_have_count(1)
    expect(errors.filter(has_text="Did you mean Europe/Berlin?")).to_have_count(1)
    # Nothing typed is lost.
    editor = page.locator("#id_attributes")
    expect(editor.locator("input.kv-key[value=score]")).to_have_count(1)
    expect(editor.locator("input.kv-value[value='4.5']")).to_have_count(1)
    expect(editor.locator("input.kv-value[value=silver]")).to_have_count(1)
    # The refused row is marked, the others are not.
    expect(editor.locator("tr.kv-bad")).to_have_count(1)
    expect(editor.locator("tr.kv-bad input.kv-key")).to_have_value("tier")
    expect(editor.locator("tr.kv-bad input.kv-value")).to_have_value("silver")
    expect(page.locator("#id_time_zone")).to_have_value("Europe/Berln")
    page.locator("#id_time_zone").evaluate("e => e.scrollIntoView()")
    shoot(page, "04-attributes-errors")

    twice = editor.locator("tbody tr", has=page.locator("input[value=silver]"))
    twice.get_by_role("button", name="Remove").click()
    # The picker searches the IANA list as one types.
    zone = page.locator("#id_time_zone")
    expect(zone).to_have_attribute("list", "id_time_zone_zones")
    expect(
        page.locator("#id_time_zone_zones option[value='Europe/Berlin']")
    ).to_have_count(1)
    zone.fill("Europe/Berlin")
    page.click("input[name=_continue]")

    expect(page.locator(".messagelist")).to_contain_text("was changed successfully")
    ada.refresh_from_db()
    assert ada.attributes == {
        "tier": "platinum",
        "visits": 12,
        "vip": True,
        "score": 4.5,
    }
    assert ada.time_zone == "Europe/Berlin"
    page.locator("#id_attributes").scroll_into_view_if_needed()
    page.locator("#id_attributes details summary").click()
    expect(page.locator("#id_attributes details pre")).to_contain_text('"score": 4.5')
    shoot(page, "05-attributes-saved")

    # On a phone the timeline and the editor stay readable.
    page.set_viewport_size({"width": 390, "height": 844})
    page.locator("#id_attributes").evaluate("e => e.scrollIntoView()")
    shoot(page, "08-phone-attributes")
    page.locator("#history h2").evaluate("e => e.scrollIntoView()")
    shoot(page, "09-phone-history")


def test_a_marketer_edits_campaign_values_and_the_fallback_zone(
    page, live_server, login, marketer, make_template, make_campaign, make_list
):
    template = make_template(
        "Spring sale",
        "Hi ${first_name}, ${offer} until ${until}!",
        parameters={
            "offer": {"source": TemplateParameter.Source.CAMPAIGN},
            "until": {"source": TemplateParameter.Source.CAMPAIGN},
        },
    )
    draft = make_campaign(
        template,
        [make_list("Customers")],
        "Spring",
        campaign_values={"offer": "20% off"},
    )
    page.set_viewport_size(VIEWPORT)
    login("mark", next_url=f"/admin/campaigns/campaign/{draft.pk}/change/")

    editor = page.locator("#id_campaign_values")
    editor.scroll_into_view_if_needed()
    expect(editor.locator("select")).to_have_count(0)  # texts only
    blank = editor.locator("tbody tr").last
    blank.locator(".kv-key").fill("until")
    blank.locator(".kv-value").fill("Sunday")
    page.fill("#id_fallback_time_zone", "America/Chicago")
    page.locator("#id_fallback_time_zone").scroll_into_view_if_needed()
    shoot(page, "06-campaign-form-zone")
    editor.scroll_into_view_if_needed()
    shoot(page, "07-campaign-form-values")
    shoot(page, "07-campaign-form-full", full=True)
    page.click("input[name=_continue]")

    expect(page.locator(".messagelist")).to_contain_text("was changed successfully")
    draft.refresh_from_db()
    assert draft.campaign_values == {"offer": "20% off", "until": "Sunday"}
    assert draft.fallback_time_zone == "America/Chicago"
