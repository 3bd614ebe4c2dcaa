"""A sender launches a campaign on the simulator and watches it being delivered.

Issue 6, acceptance: the simulator delivers 12 messages a few per second and
calls the app's real webhook (signed with the app's secret) with every
receipt; the webhook stores them and the processor (django-q2 in sync mode,
so inline) moves the recipients. The dashboard, opened right after the
launch, fills up by polling — the page is never reloaded — until every
message has an outcome: 100 %, the funnel drawn, failures explained.
"""

import re

import pytest
from playwright.sync_api import expect

from campaigns.models import Recipient
from sinch import wire
from sinch.simulator import Simulator
from tests.sinch.conftest import account_signing_as_the_app, fast_knobs

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def sim():
    account = account_signing_as_the_app()
    knobs = fast_knobs(
        failure_ratio=0.25,
        read_ratio=0.5,
        latency_s=0.8,
        processing_delay_s=2.5,
        drain_rate=2,
        seed=11,
    )
    simulator = Simulator(account=account, knobs=knobs)
    simulator.start()
    yield simulator
    simulator.stop()


@pytest.fixture
def campaign(monkeypatch, make_template, make_audience, make_campaign):
    monkeypatch.setattr(wire, "MAX_RECIPIENTS", 5)  # 12 recipients: 3 batches
    template = make_template(
        "Summer", "Hi ${first_name}, our summer sale starts today!"
    )
    customers = make_audience(
        "Customers",
        12,  # +14155550400 to +14155550411
        phone="+141555504{:02d}",
        opted_out={"+14155550499": "Olga"},
    )
    return make_campaign(
        template, [customers], "Summer sale", checked=True, sms_sender="MyShop"
    )


def test_a_sender_watches_the_dashboard_reach_100_percent_without_reloading(
    page, live_server, login, screenshot, sender, sinch, control, campaign
):
    login("sandra", next_url=f"/admin/campaigns/campaign/{campaign.pk}/launch/")
    with page.expect_navigation():
        page.click("#launch-button")
    expect(page.locator("ul.messagelist li.success")).to_contain_text("Launched")
    # Callbacks go to the app from now on, once the launch request (which
    # dispatches inline here) is done. Sinch's first receipts come after its
    # processing delay; only the batches' READY notices, sent at acceptance,
    # are not delivered.
    control.knobs(webhook_url=f"{live_server.url}/webhooks/sinch")

    # From the campaign page to its dashboard, while Sinch is still sending.
    page.click("#dashboard-link")
    expect(page).to_have_url(re.compile(rf"/campaign/{campaign.pk}/dashboard/$"))
    expect(page.locator("h1")).to_have_text("Delivery: Summer sale")
    at_load = int(page.locator("#percent-complete").inner_text())
    page.evaluate("window.__notReloaded = true")
    expect(page.locator("#counter-excluded [data-count]")).to_have_text("1")
    screenshot("dashboard-01-sending")

    # The figures fill in by polling, until every message has an outcome.
    expect(page.locator("#percent-complete")).to_have_text("100", timeout=45_000)
    assert page.evaluate("window.__notReloaded === true"), "the page was reloaded"
    assert at_load < 100, "the campaign was already finished when the page opened"
    expect(page.locator("#headline")).to_contain_text(
        "Finished: every message has an outcome"
    )

    recipients = Recipient.objects.filter(campaign=campaign)
    delivered = recipients.filter(status__in=["DELIVERED", "READ"]).count()
    failed = recipients.filter(status="FAILED").count()
    read = recipients.filter(status="READ").count()
    assert delivered + failed == 12
    assert failed > 0
    assert delivered > 0
    # Read reports may still trickle in after the last outcome.
    expect(page.locator("#counter-delivered [data-count]")).to_have_text(str(delivered))
    expect(page.locator("#counter-failed [data-count]")).to_have_text(str(failed))
    expect(page.locator("[data-milestone='handed']")).to_have_text("12")

    # The funnel, drawn by the server and swapped in by the script.
    steps = page.locator("#funnel-chart svg g.funnel-step")
    expect(steps).to_have_count(4)
    expect(steps.nth(0)).to_have_attribute("data-count", "12")
    expect(steps.nth(2)).to_have_attribute("data-count", str(delivered))
    expect(steps.nth(3)).to_have_attribute("data-count", str(read))
    assert (
        page.locator("#funnel-chart .funnel-bar").nth(2).get_attribute("width") != "0.0"
    )
    expect(
        page.locator("#timeline-chart svg .timeline-delivered").first
    ).to_be_visible()
    # The failure reasons came in with the figures.
    table = page.locator("#failure-table")
    expect(table).to_contain_text("may work later")
    expect(page.locator("#batch-table")).to_contain_text("Processed by Sinch")
    page.wait_for_timeout(800)  # the progress bar's transition
    screenshot("dashboard-02-finished")

    # Reloaded: the same failure reasons, the exclusion, the batches.
    page.reload()
    expect(table).to_contain_text("may work later")
    expect(page.locator("#exclusion-table")).to_contain_text("Opted out")
    expect(page.locator("#batch-table tbody tr")).to_have_count(3)
    for batch in campaign.batches.all():
        expect(page.locator("#batch-table")).to_contain_text(batch.sinch_batch_id)
    screenshot("dashboard-03-reasons")

    # Every recipient's result, as a marketer would download it.
    with page.expect_download() as download:
        page.click("#results-csv")
    lines = download.value.path().read_text(encoding="utf-8").strip().splitlines()
    assert len(lines) == 1 + 13
