"""Issue 12, acceptance: a marketer writes a WhatsApp template and enters a
parameter in the wrong key form: the page shows the right one. A WhatsApp
campaign with a text message cannot be launched: the launch page explains
WhatsApp's 24-hour window and suggests a WhatsApp template."""

import re

import pytest
from playwright.sync_api import expect

from campaigns.models import MessageTemplate

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_a_bare_parameter_key_is_shown_in_its_right_form(
    page, live_server, login, screenshot, marketer
):
    login("mark", next_url="/admin/campaigns/messagetemplate/add/")
    page.fill("#id_name", "Order shipped")
    page.select_option("#id_kind", "CHANNEL_TEMPLATE")
    expect(page.locator("#id_template_channel option")).to_have_text(
        ["WhatsApp", "KakaoTalk", "WeChat"]
    )
    help_text = page.locator(".form-row.field-template_parameters .help")
    expect(help_text).to_contain_text("body[1]text = ${first_name}")
    page.fill("#id_template_id", "order_shipped")
    page.fill("#id_template_language", "en-us")
    page.fill("#id_template_parameters", "1 = ${first_name}")
    screenshot("whatsapp-01-template-bare-key")
    page.click("input[name=_continue]")

    errors = page.locator(".form-row.field-template_parameters .errorlist")
    expect(errors).to_contain_text('"1" is a bare key')
    expect(errors).to_contain_text("use body[1]text for the body's first parameter")
    screenshot("whatsapp-02-template-right-form-shown")
    assert not MessageTemplate.objects.exists()

    page.fill("#id_template_parameters", "body[1]text = ${first_name}")
    page.click("input[name=_continue]")
    expect(page).to_have_url(re.compile(r"/messagetemplate/\d+/change/$"))
    expect(page.locator("#id_template_language")).to_have_value("en_US")
    expect(page.locator(".field-sinch_message pre")).to_contain_text("body[1]text")
    screenshot("whatsapp-03-template-saved")
    template = MessageTemplate.objects.get(name="Order shipped")
    assert template.template_parameters == {"body[1]text": "${first_name}"}
    assert template.placeholders == ["first_name"]


def test_a_whatsapp_campaign_with_a_text_message_is_blocked_on_the_launch_page(
    page,
    live_server,
    login,
    screenshot,
    sender,
    make_template,
    make_campaign,
    make_contact,
    make_list,
):
    customers = make_list("Customers")
    for n in range(3):
        make_contact(
            f"+1415555040{n}", channel="WHATSAPP", consent="OPTED_IN", lists=[customers]
        )
    campaign = make_campaign(
        make_template("Spring sale", "Hi ${first_name}, spring sale starts Monday!"),
        [customers],
        "Spring on WhatsApp",
        channel="WHATSAPP",
        checked=True,
    )
    login("sandra", next_url=f"/admin/campaigns/campaign/{campaign.pk}/change/")
    page.click("#launch-link")
    problems = page.locator("#launch-problems")
    expect(problems).to_contain_text("cannot be launched yet")
    expect(problems).to_contain_text(
        "WhatsApp delivers such a message only to people who wrote to you in "
        "the last 24 hours"
    )
    expect(problems).to_contain_text("Use a WhatsApp template")
    expect(page.locator("#launch-button")).to_have_count(0)
    screenshot("whatsapp-04-launch-blocked-24-hours")

    page.click("text=Go to the preview and the pre-send check")
    expect(page.locator(".presend-blocked")).to_contain_text("customer-service window")
    screenshot("whatsapp-05-preview-blocked-24-hours")
