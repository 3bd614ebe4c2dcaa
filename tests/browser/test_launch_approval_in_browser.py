"""Four-eyes approval in a real browser, with two users.

Issue 13, deliverable 5: a Marketing user runs the pre-send check of a
campaign over the approval threshold and requests its launch from the
preview page; a Sender logs in, finds the request on the admin home (and in
their mailbox), reads on the approval page what they approve, approves it
and launches; the batches go to the simulator.
"""

import re

import pytest
from django.core import mail
from playwright.sync_api import expect

from campaigns.models import Campaign, LaunchApproval
from contacts import roles

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


@pytest.fixture(autouse=True)
def thresholds(settings, tmp_path):
    settings.MEDIA_ROOT = str(tmp_path / "media")  # the pre-send CSV
    settings.APPROVAL_MIN_RECIPIENTS = 5
    settings.APPROVAL_MIN_COST = None
    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"


@pytest.fixture
def campaign(make_template, make_audience, make_campaign):
    template = make_template("Spring sale", "Hi ${first_name}, spring sale today!")
    names = ("Anna", "Ben", "Cleo", "Dan", "Eve", "Finn")
    customers = make_audience(
        "Customers",
        {f"+1415555040{n}": name for n, name in enumerate(names)},
        opted_out={"+14155550499": "Olga"},
    )
    return make_campaign(template, [customers], "Spring")


@pytest.fixture
def people(make_user):
    return {
        "mark": make_user("mark", roles.MARKETING, email="mark@example.com"),
        "sandra": make_user("sandra", roles.SENDER, email="sandra@example.com"),
    }


def log_out(page):
    page.click("#logout-form button")
    expect(page.locator("h1")).to_have_text("Logged out")


def test_marketing_requests_a_launch_and_a_sender_approves_and_launches_it(
    page, live_server, login, screenshot, sinch, control, campaign, people
):
    preview = f"/admin/campaigns/campaign/{campaign.pk}/preview/"
    mail.outbox = []

    # Marketing: run the check, read that approval is needed, request launch.
    login("mark", next_url=preview)
    expect(page.locator("#request-launch-button")).to_have_count(0)
    with page.expect_navigation():
        page.click("input[value='Run the pre-send check']")
    expect(page.locator(".presend-pass")).to_contain_text("second Sender's approval")
    expect(page.locator("#approval-needed")).to_contain_text(
        "Needs approval by a second Sender before the launch "
        "(5 recipients or more: this one has 6)"
    )
    expect(page.locator("#launch-link")).to_have_count(0)
    with page.expect_navigation():
        page.click("#request-launch-button")
    expect(page.locator("ul.messagelist li.success")).to_contain_text(
        "Launch requested"
    )
    expect(page.locator("#approval-state")).to_contain_text(
        "Waiting for approval: requested by mark at "
    )
    screenshot("approval-01-requested")
    assert [m.to for m in mail.outbox] == [["sandra@example.com"]]
    link = re.search(r"http://\S+/approval/", mail.outbox[0].body).group(0)
    assert link == f"{live_server.url}/admin/campaigns/campaign/{campaign.pk}/approval/"
    log_out(page)

    # The Sender: the request waits on the admin home.
    login("sandra")
    request = page.locator("#approvals-module .approval-request")
    expect(request).to_have_count(1)
    expect(request).to_contain_text("Spring: 6 recipients, requested by mark at ")
    screenshot("approval-02-home")
    with page.expect_navigation():
        request.locator("a").click()

    # The approval page: what is approved.
    expect(page.locator("h1")).to_have_text("Launch approval: Spring")
    expect(page.locator("#approval-message")).to_have_text(
        "Hi ${first_name}, spring sale today!"
    )
    summary = page.locator("#approval-summary")
    expect(summary.locator("tr", has_text="Audience lists")).to_contain_text(
        "Customers"
    )
    expect(page.locator("#approval-recipients")).to_contain_text("6 at the pre-send")
    expect(summary.locator("tr", has_text="Send time")).to_contain_text("when launched")
    expect(summary.locator("tr", has_text="Estimated cost")).to_contain_text("EUR")
    screenshot("approval-03-page")
    with page.expect_navigation():
        page.click("#approve-button")
    expect(page.locator("ul.messagelist li.success")).to_contain_text(
        "Approved the launch of “Spring”"
    )
    expect(page.locator("#approval-state")).to_contain_text("Approved by sandra")

    # The launch page shows the approval; the launch goes to Sinch.
    with page.expect_navigation():
        page.click("#launch-link")
    expect(page.locator("#launch-approval")).to_contain_text("Approved by sandra")
    expect(page.locator("#launch-audience-now")).to_contain_text(
        "unchanged since the check"
    )
    screenshot("approval-04-launch")
    with page.expect_navigation():
        page.click("#launch-button")
    expect(page.locator("ul.messagelist li.success")).to_contain_text(
        "Launched “Spring”"
    )

    campaign.refresh_from_db()
    assert campaign.status in (Campaign.Status.SUBMITTED, Campaign.Status.COMPLETED)
    assert sum(b["size"] for b in control.state()["batches"]) == 6
    approval = LaunchApproval.objects.get()
    assert (approval.requested_by.username, approval.decided_by.username) == (
        "mark",
        "sandra",
    )
