"""A marketer sets a WhatsApp campaign's channel properties in the browser:
typed fields per channel, a folded section opened, an error on its field."""

import pytest
from playwright.sync_api import expect

from campaigns.models import Campaign

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_a_marketer_sets_properties_in_the_sections_of_the_campaigns_channels(
    page, live_server, login, screenshot, marketer, make_template, make_audience
):
    make_template("Spring", "Hi ${first_name}, spring sale!")
    make_audience("Customers", 1, phone="+1415555{:04d}")
    login("mark", next_url="/admin/campaigns/campaign/add/")
    page.fill("#id_name", "Spring on WhatsApp")
    page.select_option("#id_template", label="Spring")
    page.select_option("#id_lists_from", label="Customers")
    page.click("#id_lists_add")
    page.select_option("#id_channel", "WHATSAPP")
    page.fill("#id_channel_priority_order", "WHATSAPP, SMS")
    # WhatsApp is folded on a new (SMS) campaign: open it, as a marketer would.
    whatsapp = page.locator("summary", has_text="WhatsApp properties")
    whatsapp.click()
    page.check("#id_cp_whatsapp_preview_url")
    page.fill("#id_sms_sender", "MyShop")
    page.fill("#id_cp_sms_max_number_of_message_parts", "2")
    # A Messenger value on a campaign without Messenger is refused on its field.
    page.locator("summary", has_text="Facebook Messenger properties").click()
    page.select_option("#id_cp_messenger_notification_type", "SILENT_PUSH")
    screenshot("channel-properties-01-filled")
    page.click("input[name=_continue]")

    error = page.locator(".field-cp_messenger_notification_type .errorlist")
    expect(error).to_contain_text("not one of this campaign's channels")
    # What was typed is all still there, the campaign's sections open.
    expect(page.locator("#id_cp_whatsapp_preview_url")).to_be_visible()
    expect(page.locator("#id_cp_whatsapp_preview_url")).to_be_checked()
    expect(page.locator("#id_sms_sender")).to_have_value("MyShop")
    screenshot("channel-properties-02-refused")
    assert not Campaign.objects.exists()

    page.select_option("#id_cp_messenger_notification_type", "")
    page.click("input[name=_continue]")
    expect(page.locator(".messagelist")).to_contain_text("was added successfully")
    expect(page.locator("#id_cp_whatsapp_preview_url")).to_be_checked()
    expect(page.locator("#id_cp_sms_max_number_of_message_parts")).to_have_value("2")
    screenshot("channel-properties-03-saved")
    campaign = Campaign.objects.get()
    assert campaign.sinch_channel_properties() == {
        "WHATSAPP_PREVIEW_URL": "false",
        "SMS_MAX_NUMBER_OF_MESSAGE_PARTS": "2",
        "SMS_SENDER": "MyShop",
    }
