"""Issue 14: a marketer duplicates a finished campaign from its page and lands
on the new draft with the copied settings; the campaign list shows each
campaign's figures and fits a 1366 px screen, the dashboard reads on a phone.

Screenshots (1366x768 and 390x844) go to /tmp/screens/camp-list/.
"""

from datetime import timedelta

import pytest
from django.utils import timezone
from playwright.sync_api import expect

from campaigns.models import Campaign, InboundMessage, Recipient
from contacts.models import Purpose
from tests.browser.conftest import SCREENS
from tests.campaigns.test_campaign_list import add_recipients, add_replies

pytestmark = pytest.mark.django_db(transaction=True)
R = Recipient.Status
K = InboundMessage.Keyword
FOLDER = SCREENS / "camp-list"
DESKTOP = {"width": 1366, "height": 768}
PHONE = {"width": 390, "height": 844}


@pytest.fixture
def finished(make_template, make_campaign, make_list, marketer):
    template = make_template(
        "Parcel notice",
        "Hi ${first_name}, your parcel ${code} arrives today.",
        parameters={"code": {"source": "CAMPAIGN"}},
    )
    campaign = make_campaign(
        template,
        [make_list("Customers"), make_list("VIPs")],
        name="Parcel day",
        purpose=Purpose.TRANSACTIONAL,
        sms_sender="ACME",
        campaign_values={"code": "X-42"},
        send_at=timezone.now() - timedelta(days=1),
        send_time_zone="Europe/Berlin",
        status=Campaign.Status.COMPLETED,
        launched_at=timezone.now() - timedelta(days=1),
        presend={"ok": 1180, "cost": "EUR 9.44", "cost_total": "9.4400"},
    )
    add_recipients(campaign, {R.DELIVERED: 1100, R.READ: 40, R.FAILED: 40})
    add_replies(campaign, [K.STOP, K.STOP, K.NONE, K.NONE, K.NONE])
    return campaign


@pytest.fixture
def more_campaigns(make_campaign, make_template):
    template = make_template("Weekly news", "Hi ${first_name}, this week: news!")
    for n, status in enumerate(
        [
            Campaign.Status.DRAFT,
            Campaign.Status.SCHEDULED,
            Campaign.Status.PAUSED,
            Campaign.Status.CANCELLED,
            Campaign.Status.FAILED,
        ]
    ):
        fields = {}
        if status != Campaign.Status.DRAFT:
            fields["launched_at"] = timezone.now() - timedelta(hours=n)
        campaign = make_campaign(
            template, name=f"Weekly news {n + 1}", status=status, **fields
        )
        if status != Campaign.Status.DRAFT:
            add_recipients(campaign, {R.SUBMITTED: 10 * n, R.DELIVERED: 5, R.FAILED: n})


def overflows(page) -> int:
    """How many pixels the page, or a box in it, is wider than its room
    (0: nothing scrolls sideways)."""
    return page.evaluate(
        """() => Math.max(
            document.documentElement.scrollWidth
                - document.documentElement.clientWidth,
            ...[...document.querySelectorAll('.results, .dash, #content-main')]
                .map(e => e.scrollWidth - e.clientWidth))"""
    )


def shoot(page, name: str) -> None:
    FOLDER.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(FOLDER / f"{name}.png"), full_page=True)


def test_a_marketer_duplicates_a_campaign_and_lands_on_the_new_draft(
    page, live_server, login, finished, marketer
):
    page.set_viewport_size(DESKTOP)
    login("mark")
    page.goto(f"{live_server.url}/admin/campaigns/campaign/{finished.pk}/change/")
    # A finished campaign: nothing to launch, cancel or test; no failure-free retry.
    expect(page.locator("#launch-link")).to_have_count(0)
    expect(page.locator("#cancel-link")).to_have_count(0)
    expect(page.locator(".object-tools a:text-is('Send test')")).to_have_count(0)

    page.click("#duplicate-button")

    copy = Campaign.objects.get(name="Copy of Parcel day")
    page.wait_for_url(f"{live_server.url}/admin/campaigns/campaign/{copy.pk}/change/")
    expect(page.locator(".messagelist .success")).to_contain_text(
        "Created the draft “Copy of Parcel day”, a copy of “Parcel day”"
    )
    expect(page.locator("#id_name")).to_have_value("Copy of Parcel day")
    expect(page.locator("#id_sms_sender")).to_have_value("ACME")
    expect(page.locator("#id_purpose")).to_have_value(Purpose.TRANSACTIONAL)
    chosen = page.locator("#id_lists_to option")
    expect(chosen).to_have_text(["Customers", "VIPs"])
    assert copy.status == Campaign.Status.DRAFT
    assert copy.send_at is None
    assert copy.campaign_values == {"code": "X-42"}
    # A draft: it can be tested, and it is not in the list's figures yet.
    expect(page.locator(".object-tools a:text-is('Send test')")).to_have_count(1)
    shoot(page, "duplicate-new-draft-1366")


def test_the_list_fits_a_laptop_and_the_dashboard_a_phone(
    page, live_server, login, finished, more_campaigns, marketer
):
    page.set_viewport_size(DESKTOP)
    login("mark")
    page.goto(f"{live_server.url}/admin/campaigns/campaign/")
    row = page.locator("#result_list tr", has_text="Parcel day")
    expect(row.locator("td.field-recipient_count")).to_have_text("1,180")
    expect(row.locator("td.field-delivered")).to_have_text("97 %")
    expect(row.locator("td.field-opt_outs")).to_have_text("2")
    expect(row.locator(".status-label.status-done")).to_have_text("Completed")
    shoot(page, "campaign-list-1366")
    assert overflows(page) == 0

    page.set_viewport_size(PHONE)
    shoot(page, "campaign-list-390")

    page.goto(f"{live_server.url}/admin/campaigns/campaign/{finished.pk}/dashboard/")
    expect(page.locator("h1")).to_contain_text("Parcel day")
    shoot(page, "dashboard-390")
    assert overflows(page) == 0

    page.set_viewport_size(DESKTOP)
    page.reload()
    shoot(page, "dashboard-1366")
    assert overflows(page) == 0

    # The campaign's other pages fit a laptop screen too.
    base = f"{live_server.url}/admin/campaigns/campaign/{finished.pk}"
    for name in ("change", "preview", "test-send", "retry", "launch"):
        page.goto(f"{base}/{name}/")
        assert overflows(page) == 0, name
