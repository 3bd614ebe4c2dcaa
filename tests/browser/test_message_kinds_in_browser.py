"""A marketer builds a carousel: its cards are rows under the form, typed
without JSON, and a bad choice line is named on its card."""

import re

import pytest
from playwright.sync_api import expect

from campaigns.models import MessageTemplate

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_a_marketer_builds_a_carousel_with_two_cards(
    page, live_server, login, screenshot, marketer
):
    login("mark", next_url="/admin/campaigns/messagetemplate/add/")
    cards = page.locator("#cards-group")
    items = page.locator("#list_items-group")
    expect(cards).to_be_hidden()  # a text message has no cards
    page.select_option("#id_kind", "CAROUSEL")
    expect(cards).to_be_visible()
    expect(items).to_be_hidden()
    expect(page.locator(".form-row.field-text").first).to_be_hidden()
    expect(page.locator("#overrides-group")).to_be_visible()

    page.fill("#id_name", "Spring carousel")
    page.fill("#id_choices", "All offers | https://shop.example/offers")
    page.fill("#id_cards-0-title", "Jackets for ${first_name}")
    page.fill("#id_cards-0-description", "-20% until Sunday")
    page.fill("#id_cards-0-media_url", "https://img.example/jacket.png")
    page.fill(
        "#id_cards-0-choices",
        "Buy | https://shop.example/jacket\nRemind me | postback: remind",
    )
    cards.get_by_text("Add another Carousel card").click()
    page.fill("#id_cards-1-title", "Shoes")
    page.fill("#id_cards-1-choices", "Call the shop | tel:030 1234")
    screenshot("kinds-01-carousel-form")
    page.click("input[name=_continue]")

    # The bad line is named on its card; nothing is lost.
    error = page.locator("#cards-group .errorlist")
    expect(error).to_contain_text("Line 1: “tel:030 1234” is not a phone number")
    expect(page.locator("#id_cards-0-title")).to_have_value("Jackets for ${first_name}")
    screenshot("kinds-02-carousel-bad-line")
    page.fill("#id_cards-1-choices", "Call the shop | tel:+49 30 1234567")
    page.click("input[name=_continue]")
    expect(page).to_have_url(re.compile(r"/messagetemplate/\d+/change/$"))
    expect(page.locator(".field-sinch_message pre")).to_contain_text(
        '"carousel_message"'
    )
    expect(page.locator("#cards-group")).to_be_visible()
    screenshot("kinds-03-carousel-saved")
    template = MessageTemplate.objects.get(name="Spring carousel")
    assert [c.title for c in template.cards.all()] == [
        "Jackets for ${first_name}",
        "Shoes",
    ]
    assert template.placeholders == ["first_name"]
