"""A marketer picks a template's kind: only the fields of that kind are shown."""

import re

import pytest
from playwright.sync_api import expect

from campaigns.models import MessageTemplate

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

MESSAGE_FIELDS = ("text", "title", "description", "media_url", "choices")
TEMPLATE_FIELDS = (
    "template_channel",
    "template_id",
    "template_language",
    "template_parameters",
)
SHOWN = {
    "TEXT": {"text"},
    "MEDIA": {"media_url"},
    "CARD": {"title", "description", "media_url", "choices"},
    "CHOICE": {"text", "choices"},
    "CHANNEL_TEMPLATE": set(TEMPLATE_FIELDS),
}


def main_row(page, name: str):
    """The template's own row of `name` (a carousel card has a title too)."""
    return page.locator(
        f"#messagetemplate_form fieldset.module .form-row.field-{name}"
    ).first


def expect_only(page, kind: str) -> None:
    for name in MESSAGE_FIELDS + TEMPLATE_FIELDS:
        row = main_row(page, name)
        if name in SHOWN[kind]:
            expect(row).to_be_visible()
        else:
            expect(row).to_be_hidden()
    fieldsets = page.locator("fieldset.module")
    # name and kind; messages; contact info; channel template
    messages, channel_template = fieldsets.nth(1), fieldsets.nth(3)
    if kind == "CHANNEL_TEMPLATE":
        expect(messages).to_be_hidden()
        expect(channel_template).to_be_visible()
    else:
        expect(messages).to_be_visible()
        expect(channel_template).to_be_hidden()
    # Name and kind are always there.
    expect(page.locator("#id_name")).to_be_visible()
    expect(page.locator("#id_kind")).to_be_visible()


def test_switching_the_kind_shows_only_its_fields(
    page, live_server, login, screenshot, marketer
):
    login("mark", next_url="/admin/campaigns/messagetemplate/add/")
    expect(page.locator("#content")).to_contain_text("work in any text field")
    expect_only(page, "TEXT")
    screenshot("kind-01-text")

    page.select_option("#id_kind", "CARD")
    expect_only(page, "CARD")
    page.fill("#id_title", "Spring offer")
    screenshot("kind-02-card")

    page.select_option("#id_kind", "CHANNEL_TEMPLATE")
    expect_only(page, "CHANNEL_TEMPLATE")
    screenshot("kind-03-channel-template")

    for kind in ("MEDIA", "CHOICE", "TEXT"):
        page.select_option("#id_kind", kind)
        expect_only(page, kind)

    # A hidden field keeps its value: it is only ignored.
    page.fill("#id_name", "Hello")
    page.fill("#id_text", "Hi ${first_name}")
    page.click("input[name=_continue]")
    expect(page).to_have_url(re.compile(r"/messagetemplate/\d+/change/$"))
    expect_only(page, "TEXT")
    template = MessageTemplate.objects.get(name="Hello")
    assert (template.kind, template.title) == ("TEXT", "Spring offer")
    assert template.placeholders == ["first_name"]


def test_without_javascript_every_field_is_shown(browser, live_server, marketer):
    context = browser.new_context(java_script_enabled=False)
    page = context.new_page()
    try:
        page.goto(f"{live_server.url}/admin/login/?next=/admin/")
        page.fill("#id_username", "mark")
        page.fill("#id_password", "pw")
        page.click("input[type=submit]")
        page.goto(f"{live_server.url}/admin/campaigns/messagetemplate/add/")
        for name in MESSAGE_FIELDS + TEMPLATE_FIELDS:
            expect(main_row(page, name)).to_be_visible()
    finally:
        context.close()
