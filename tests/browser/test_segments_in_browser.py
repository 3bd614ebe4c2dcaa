"""A marketer builds a segment in the browser, and a sender launches a
campaign on it.

Issue 14, acceptance: "building a segment with a live count and launching a
campaign on it". Mark (Marketing) builds "French regulars" in two groups:
French speakers AND (more than 100 points OR on the VIP list). The live
count follows every change without a reload (and says what is missing while
a condition is incomplete); he saves it. Sandra (Sender) opens the segment,
follows "Create campaign on this segment", saves the campaign with the
segment already chosen, previews it, runs the pre-send check and launches
it against the simulator: the frozen recipients are exactly the segment's
people, and the simulator received one message each.
"""

import re
from pathlib import Path

import pytest
from playwright.sync_api import expect

from campaigns.models import Campaign, Recipient, Segment
from campaigns.segments import evaluate

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

SHOTS = Path("/tmp/screens/seg-editor")


@pytest.fixture
def page(browser):
    """A laptop's screen: 1366 x 768."""
    context = browser.new_context(viewport={"width": 1366, "height": 768})
    page = context.new_page()
    page.set_default_timeout(15_000)
    yield page
    context.close()


@pytest.fixture
def shot(page):
    SHOTS.mkdir(parents=True, exist_ok=True)

    def take(name: str, *, full: bool = False) -> None:
        page.screenshot(path=str(SHOTS / f"{name}.png"), full_page=full)

    return take


@pytest.fixture(autouse=True)
def media_root(settings, tmp_path):
    settings.MEDIA_ROOT = str(tmp_path / "media")  # the pre-send check's CSV


@pytest.fixture
def people(make_contact, make_list, make_template):
    """Who is who: the segment will be Anna, Ben and Eve."""
    vip = make_list("VIP")
    make_list("Newsletter")
    for n, (name, language, points, lists) in enumerate(
        (
            ("Anna", "fr", 150, []),  # French, many points
            ("Ben", "fr", 10, [vip]),  # French, few points, VIP
            ("Cleo", "fr", 10, []),  # French, neither
            ("Dirk", "de", 500, [vip]),  # not French
            ("Eve", "fr", 200, []),  # French, many points
        )
    ):
        make_contact(
            f"+3361234560{n}",
            first_name=name,
            language=language,
            attributes={"points": points},
            consent="OPTED_IN",
            lists=lists,
        )
    make_template("Bonjour", "Bonjour ${first_name}, vos points vous attendent !")


def condition(page, group: int, n: int):
    return (
        page.locator(".segment-group").nth(group).locator(".segment-condition").nth(n)
    )


def live_count(page):
    return page.locator("#segment-count")


def test_a_marketer_builds_a_segment_and_a_sender_launches_a_campaign_on_it(
    page, live_server, login, shot, marketer, sender, people, sinch, control
):
    login("mark", next_url="/admin/campaigns/segment/add/")
    page.fill("#id_name", "French regulars")
    page.fill("#id_description", "French speakers with points, or VIPs")

    # Group 1: language is fr. The count follows as he types.
    first = condition(page, 0, 0)
    first.locator(".segment-field").select_option(label="Language")
    first.locator(".segment-op").select_option("equals")
    first.locator(".segment-value input").fill("fr")
    expect(live_count(page)).to_have_text("4 contacts match")
    expect(page.locator("#segment-description")).to_contain_text("fr")

    # Group 2 starts incomplete: the count says what is missing.
    page.click(".segment-add-group")
    expect(page.locator(".segment-group")).to_have_count(2)
    expect(page.locator("#segment-live-errors li").first).to_contain_text("Group 2")
    expect(live_count(page)).to_contain_text("No count until")
    shot("segment-editor-incomplete-1366")

    # ... more than 100 points ...
    group2 = page.locator(".segment-group").nth(1)
    group2.locator(".segment-group-match").select_option("any")
    points = condition(page, 1, 0)
    points.locator(".segment-field").select_option(label="Attribute")
    points.locator(".segment-key").fill("points")
    points.locator(".segment-op").select_option("gt")
    points.locator(".segment-value input").fill("100")
    expect(live_count(page)).to_have_text("2 contacts match")
    expect(page.locator("#segment-live-errors li")).to_have_count(0)

    # ... or on the VIP list.
    group2.locator(".segment-add-condition").click()
    vip = condition(page, 1, 1)
    vip.locator(".segment-field").select_option(label="List")
    vip.locator(".segment-value select").select_option(label="VIP")
    expect(live_count(page)).to_have_text("3 contacts match")
    expect(page.locator("#segment-description")).to_contain_text("VIP")
    # The joiner between the groups says how they combine.
    expect(group2).to_have_attribute("data-joiner", "AND")
    shot("segment-editor-1366")
    shot("segment-editor-1366-full", full=True)

    with page.expect_navigation():
        page.click("input[name=_continue]")
    expect(page.locator("ul.messagelist")).to_contain_text("was added successfully")
    segment = Segment.objects.get(name="French regulars")
    names = {c.first_name for c in evaluate.matching_contacts(segment.definition)}
    assert names == {"Anna", "Ben", "Eve"}
    # The saved page draws the same conditions again, and counts them.
    expect(page.locator(".segment-condition")).to_have_count(3)
    expect(live_count(page)).to_have_text("3 contacts match")

    # The list: the conditions in words, a count only when asked.
    page.goto(f"{live_server.url}/admin/campaigns/segment/")
    row = page.locator("#result_list tbody tr", has_text="French regulars")
    expect(row.locator(".segment-row-count")).to_have_text("")
    row.locator(".segment-count-button").click()
    expect(row.locator(".segment-row-count")).to_have_text("3")
    shot("segment-list-1366")

    # Sandra, a sender, puts a campaign on it from the segment's page.
    page.context.clear_cookies()
    login("sandra", next_url=f"/admin/campaigns/segment/{segment.pk}/change/")
    expect(page.locator("#segment-campaigns")).to_contain_text("No campaign uses")
    page.click("#segment-campaign-link")
    expect(page).to_have_url(re.compile(rf"/campaign/add/\?segments={segment.pk}$"))
    expect(page.locator("#id_segments_to option")).to_have_text(["French regulars"])
    page.fill("#id_name", "Points de printemps")
    page.select_option("#id_template", label="Bonjour")
    page.fill("#id_sms_sender", "MyShop")
    with page.expect_navigation():
        page.click("input[name=_continue]")
    expect(page.locator("ul.messagelist")).to_contain_text("was added successfully")
    campaign = Campaign.objects.get(name="Points de printemps")
    assert list(campaign.segments.all()) == [segment]

    # Preview and pre-send check: the segment's three people.
    page.click(".object-tools a:text-is('Preview')")
    with page.expect_navigation():
        page.click("input[value='Run the pre-send check']")
    expect(page.locator("#content p", has_text="Last run")).to_contain_text(
        "3 audience members"
    )

    # Launch, now, against the simulator.
    page.goto(f"{live_server.url}/admin/campaigns/campaign/{campaign.pk}/launch/")
    expect(page.locator("#launch-button")).to_have_value("Launch to 3 recipients now")
    with page.expect_navigation():
        page.click("#launch-button")
    expect(page.locator("ul.messagelist li.success")).to_contain_text("Launched")

    # The frozen recipients are exactly the segment's people, each sent once.
    frozen = Recipient.objects.filter(campaign=campaign)
    assert {r.contact.first_name for r in frozen} == {"Anna", "Ben", "Eve"}
    assert frozen.count() == 3
    assert sum(b["size"] for b in control.state()["batches"]) == 3

    # The segment's page lists the campaign now.
    page.goto(f"{live_server.url}/admin/campaigns/segment/{segment.pk}/change/")
    expect(page.locator("#segment-campaigns")).to_contain_text("Points de printemps")
    shot("segment-page-with-campaign-1366", full=True)


def test_a_late_answer_to_an_older_question_never_replaces_the_newer_count(
    page, live_server, login, marketer, people
):
    held = []

    def hold_the_first(route):
        if not held:
            held.append(route)  # answered only at the end
        else:
            route.continue_()

    login("mark", next_url="/admin/campaigns/segment/add/")
    first = condition(page, 0, 0)
    first.locator(".segment-field").select_option(label="Language")
    first.locator(".segment-op").select_option("equals")
    page.route("**/admin/campaigns/segment/count/", hold_the_first)
    first.locator(".segment-value input").fill("fr")  # 4 people: held back
    page.wait_for_timeout(600)
    assert len(held) == 1
    first.locator(".segment-value input").fill("de")  # 1 person
    expect(live_count(page)).to_have_text("1 contact matches")

    with page.expect_response("**/admin/campaigns/segment/count/"):
        held[0].continue_()
    page.wait_for_timeout(300)
    expect(live_count(page)).to_have_text("1 contact matches")
    expect(page.locator("#segment-live")).not_to_have_class(re.compile("pending"))

    # Logged out meanwhile (another tab): the count says to reload the page.
    page.unroute("**/admin/campaigns/segment/count/")
    page.context.clear_cookies()
    first.locator(".segment-value input").fill("fr")
    expect(page.locator("#segment-live-errors")).to_contain_text(
        "your login may have expired"
    )


def test_without_javascript_the_editor_still_adds_conditions_and_shows_errors(
    browser, live_server, marketer, people
):
    context = browser.new_context(
        viewport={"width": 1366, "height": 768}, java_script_enabled=False
    )
    page = context.new_page()
    page.goto(f"{live_server.url}/admin/login/?next=/admin/campaigns/segment/add/")
    page.fill("#id_username", "mark")
    page.fill("#id_password", "pw")
    with page.expect_navigation():
        page.click("input[type=submit]")
    page.fill("#id_name", "No script")
    page.select_option("select[name=g-0-c-0-field]", label="Language")
    page.select_option("select[name=g-0-c-0-op]", "equals")
    page.fill("input[name=g-0-c-0-value]", "fr")

    # "+ Add condition" submits the form: drawn again, nothing saved or lost.
    with page.expect_navigation():
        page.click(".segment-add-condition")
    expect(page.locator(".segment-condition")).to_have_count(2)
    expect(page.locator("input[name=g-0-c-0-value]")).to_have_value("fr")
    expect(page.locator("#id_name")).to_have_value("No script")
    assert not Segment.objects.exists()

    # The new condition, Attribute "is more than" (the server draws its
    # inputs once the field is posted), 100, but which attribute is not said.
    page.select_option("select[name=g-0-c-1-field]", label="Attribute")
    with page.expect_navigation():
        page.click("input[name=_continue]")
    page.select_option("select[name=g-0-c-1-op]", "gt")
    with page.expect_navigation():
        page.click("input[name=_continue]")
    page.fill("input[name=g-0-c-1-value]", "100")
    with page.expect_navigation():
        page.click("input[name=_continue]")
    errors = page.locator(".field-definition .errorlist")
    expect(errors).to_contain_text("Group 1, condition 2: choose which attribute")
    expect(page.locator("input[name=g-0-c-1-value]")).to_have_value("100")
    expect(page.locator("input[name=g-0-c-0-value]")).to_have_value("fr")
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / "segment-editor-no-js-errors-1366.png"))
    assert not Segment.objects.exists()

    page.fill("input[name=g-0-c-1-key]", "points")
    with page.expect_navigation():
        page.click("input[name=_continue]")
    expect(page.locator("ul.messagelist")).to_contain_text("was added successfully")
    assert evaluate.count(Segment.objects.get(name="No script").definition) == 2
    context.close()
