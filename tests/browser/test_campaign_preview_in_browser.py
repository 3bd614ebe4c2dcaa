"""A marketer prepares a campaign, runs the pre-send check and fixes what blocks.

Issue 4, item 6: in the real admin and a real browser, a template with a
custom-attribute placeholder and a campaign on a list with an opted-out
person and a person lacking the attribute; the check names both, the
marketer gives the placeholder a default on the template, and the check
passes.
"""

import re

import pytest
from playwright.sync_api import expect

from campaigns.models import Campaign, MessageTemplate

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

TEXT = "Hi ${first_name}, your code is ${code}"


@pytest.fixture(autouse=True)
def media_root(settings, tmp_path):
    # The pre-send check writes its per-recipient CSV there.
    settings.MEDIA_ROOT = str(tmp_path / "media")


@pytest.fixture
def audience(make_list, make_contact):
    spring = make_list("Spring promo")
    for first_name, consent, attributes in (
        ("Ann", "OPTED_IN", {"code": "A-100"}),
        ("Bob", "OPTED_IN", {"code": "B-200"}),
        ("Olga", "OPTED_OUT", {"code": "O-300"}),
        ("Pat", "OPTED_IN", {}),
    ):
        make_contact(
            first_name=first_name,
            last_name="Tester",
            consent=consent,
            attributes=attributes,
            lists=[spring],
        )
    return spring


def parameter_row(page, name: str):
    """The inline row of one placeholder on the template's change page."""
    return page.locator("#parameters-group tbody tr.form-row").filter(
        has=page.locator("td.field-name", has_text=re.compile(rf"^\s*{name}\s*$"))
    )


def summary_of(page):
    """The paragraph summing up the last pre-send check."""
    return page.locator("#content p", has_text="Last run")


def run_presend_check(page):
    # The check runs as a task; in tests the task queue runs it inline.
    with page.expect_navigation():
        page.click("input[value='Run the pre-send check']")
    expect(page).to_have_url(re.compile(r"/campaign/\d+/preview/"))
    expect(summary_of(page)).to_be_visible()


def test_a_marketer_fixes_what_blocks_the_launch(
    page, live_server, login, screenshot, marketer, audience
):
    # The template, through the admin add form.
    login("mark", next_url="/admin/campaigns/messagetemplate/add/")
    page.fill("#id_name", "Spring code")
    page.select_option("#id_kind", "TEXT")
    page.fill("#id_text", TEXT)
    page.click("input[name=_continue]")
    expect(page.locator("ul.messagelist")).to_contain_text("was added successfully")

    # Its placeholders: `code` comes from the custom attribute "code".
    code = parameter_row(page, "code")
    expect(code).to_have_count(1)
    expect(parameter_row(page, "first_name")).to_have_count(1)
    code.locator("select[name$='-source']").select_option(label="Custom attribute")
    code.locator("input[name$='-attribute']").fill("code")
    screenshot("preview-01-template-parameters")
    page.click("input[name=_continue]")
    expect(page.locator("ul.messagelist")).to_contain_text("was changed successfully")
    template = MessageTemplate.objects.get(name="Spring code")
    assert template.parameters.get(name="code").attribute == "code"

    # The campaign, through the admin add form.
    page.goto(f"{live_server.url}/admin/campaigns/campaign/add/")
    page.fill("#id_name", "Spring codes")
    page.select_option("#id_template", label="Spring code")
    page.select_option("#id_lists_from", label="Spring promo")
    page.click("#id_lists_add")
    expect(page.locator("#id_lists_to option")).to_have_text(["Spring promo"])
    page.click("input[name=_continue]")
    expect(page.locator("ul.messagelist")).to_contain_text("was added successfully")
    campaign = Campaign.objects.get(name="Spring codes")
    assert list(campaign.lists.all()) == [audience]

    # The preview, then the pre-send check: one blocked, one excluded.
    page.click(".object-tools a:text-is('Preview')")
    expect(page).to_have_url(re.compile(rf"/campaign/{campaign.pk}/preview/$"))
    expect(page.locator("#content")).to_contain_text(
        "The pre-send check has not been run yet."
    )
    run_presend_check(page)
    summary = summary_of(page)
    expect(summary).to_contain_text("4 audience members")
    expect(summary).to_contain_text("2 ok")
    expect(summary).to_contain_text("1 blocking")
    expect(summary).to_contain_text("1 excluded")
    blocked = page.locator(".presend-blocked")
    expect(blocked).to_contain_text("cannot be launched")
    expect(blocked).to_contain_text("Pat Tester")
    expect(blocked).to_contain_text("give ${code} a default on the template")
    blocking = page.locator(".presend-blocking li")
    expect(blocking).to_have_count(1)
    expect(blocking).to_contain_text("no value for ${code} and no default")
    expect(blocking).to_contain_text("Pat Tester")
    # Who is blocked links to the contact, the fix to the template.
    expect(blocking.get_by_role("link", name="Pat Tester")).to_be_visible()
    excluded = page.locator(".presend-excluded li")
    expect(excluded).to_have_count(1)
    expect(excluded).to_contain_text("opted out")
    expect(excluded).to_contain_text("Olga Tester")
    expect(page.locator(".presend-pass")).to_have_count(0)
    # The sample shows Pat's message with the placeholder as written.
    pat = page.locator(".preview-contact", has_text="Pat Tester")
    expect(pat.locator(".errornote")).to_contain_text("No value for ${code}")
    expect(pat.locator(".preview-text").first).to_have_text(
        "Hi Pat, your code is ${code}"
    )
    screenshot("preview-02-blocked")

    # The fix: a default for ${code}, in the template's inline.
    blocking.get_by_role("link", name="give it a default on the template").click()
    expect(page).to_have_url(
        re.compile(rf"/messagetemplate/{template.pk}/change/#parameters-group$")
    )
    parameter_row(page, "code").locator("input[name$='-default']").fill("WELCOME")
    screenshot("preview-03-default-given")
    page.click("input[name=_continue]")
    expect(page.locator("ul.messagelist")).to_contain_text("was changed successfully")

    # Back on the preview, the old result is stale until the check runs again.
    page.goto(f"{live_server.url}/admin/campaigns/campaign/{campaign.pk}/preview/")
    expect(page.locator(".presend-blocked")).to_contain_text("run it again")
    run_presend_check(page)
    summary = summary_of(page)
    expect(summary).to_contain_text("3 ok")
    expect(summary).to_contain_text("0 blocking")
    expect(summary).to_contain_text("1 excluded")
    passed = page.locator(".presend-pass")
    expect(passed).to_contain_text("Ready to launch.")
    expect(passed).to_contain_text("nothing blocks the launch")
    expect(passed).to_contain_text("3 recipients will get the message")
    expect(page.locator(".presend-blocked")).to_have_count(0)
    expect(page.locator(".presend-blocking")).to_have_count(0)
    expect(page.locator(".presend-excluded li")).to_contain_text("Olga Tester")
    pat = page.locator(".preview-contact", has_text="Pat Tester")
    expect(pat.locator(".preview-text").first).to_have_text(
        "Hi Pat, your code is WELCOME"
    )
    screenshot("preview-04-passed")
