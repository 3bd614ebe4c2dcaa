"""A sender launches a scheduled campaign and cancels it, in a real browser.

Issue 5, acceptance: the campaign is to go in about two hours, New York time.
The sender launches it through the confirmation page (which shows the
pre-send summary and says Sinch will schedule it), sees each batch "scheduled
at Sinch" with the time Sinch will really send at (rounded up to 5 minutes),
and the simulator holds the batches SCHEDULED. The sender then cancels through
the confirmation page and reads the cancellation receipt: every message
prevented, cancelled at Sinch; the simulator shows the batches CANCELLED.

The live server runs in this process with django-q2 in sync mode, so the
launch's dispatch runs inside the request, against the in-process simulator.
"""

import re
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from django.utils import timezone
from playwright.sync_api import expect

from campaigns.models import Batch
from sinch import wire

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

ZONE = "America/New_York"


@pytest.fixture
def send_time():
    """About two hours ahead, on a minute Sinch will round up."""
    at = (timezone.now() + timedelta(hours=2)).replace(second=0, microsecond=0)
    if at.minute % 5 == 0:
        at += timedelta(minutes=2)
    return at


@pytest.fixture
def campaign(monkeypatch, make_template, make_audience, make_campaign, send_time):
    monkeypatch.setattr(wire, "MAX_RECIPIENTS", 2)  # 5 recipients: 3 batches
    template = make_template(
        "Spring sale", "Hi ${first_name}, spring sale starts Monday!"
    )
    names = ("Anna", "Ben", "Cleo", "Dan", "Eve")
    customers = make_audience(
        "Customers",
        {f"+1415555030{n}": name for n, name in enumerate(names)},
        opted_out={"+14155550399": "Olga"},
    )
    return make_campaign(
        template,
        [customers],
        "Spring",
        checked=True,
        send_at=send_time,
        send_time_zone=ZONE,
        sms_sender="MyShop",
    )


def wall(instant: datetime) -> str:
    return f"{instant.astimezone(ZoneInfo(ZONE)):%Y-%m-%d %H:%M} {ZONE}"


def round_up_5(instant: datetime) -> datetime:
    minutes = -(-instant.minute // 5) * 5
    return instant.replace(minute=0) + timedelta(minutes=minutes)


def test_a_sender_launches_a_scheduled_campaign_and_cancels_it(
    page, live_server, login, screenshot, sender, sinch, control, campaign, send_time
):
    change_url = f"/admin/campaigns/campaign/{campaign.pk}/change/"
    login("sandra", next_url=change_url)
    effective = round_up_5(send_time)
    assert effective != send_time

    # The confirmation page: what the pre-send check found, and when it goes.
    page.click("#launch-link")
    expect(page).to_have_url(re.compile(rf"/campaign/{campaign.pk}/launch/$"))
    expect(page.locator("h1")).to_have_text("Launch: Spring")
    summary = page.locator("#launch-summary")
    expect(summary.locator("tr", has_text="Audience")).to_contain_text("6")
    expect(summary.locator("tr", has_text="Will receive it")).to_contain_text("5")
    expect(summary.locator("#launch-excluded")).to_contain_text(
        "1 \N{MULTIPLICATION SIGN} opted out"
    )
    expect(summary.locator("#launch-cap")).to_contain_text(
        "0 excluded by the frequency cap"
    )
    when = page.locator("#launch-send-time")
    expect(when).to_contain_text(wall(send_time))
    expect(when).to_contain_text("scheduled at Sinch")
    expect(when).to_contain_text("rounds a send time up to the next 5 minutes")
    expect(page.locator("#launch-problems")).to_have_count(0)
    button = page.locator("#launch-button")
    expect(button).to_have_value("Launch to 5 recipients")
    screenshot("launch-01-confirm")
    assert control.state()["batches"] == []  # nothing leaves before the click

    with page.expect_navigation():
        button.click()

    # Back on the campaign: launched, each batch scheduled at Sinch for the
    # time Sinch will really send at.
    expect(page).to_have_url(re.compile(rf"/campaign/{campaign.pk}/change/$"))
    expect(page.locator("ul.messagelist li.success")).to_contain_text(
        f"Launched “Spring”. Its batches are scheduled at Sinch for {wall(send_time)}"
    )
    expect(page.locator("#dispatch-status-label")).to_have_text("Submitted")
    expect(page.locator("#dispatch-status-note")).to_contain_text(
        "Every batch is at Sinch; 3 wait there for their send time"
    )
    expect(page.locator("#dispatch-send-time")).to_contain_text(
        f"Sinch sends at {wall(effective)}"
    )
    expect(page.locator("#dispatch-status")).to_contain_text("by sandra")
    rows = page.locator("#dispatch-batches tbody tr")
    expect(rows).to_have_count(3)
    batches = list(Batch.objects.filter(campaign=campaign).order_by("sequence"))
    for row, batch in zip(rows.all(), batches, strict=True):
        expect(row.locator(".batch-state")).to_have_text(
            f"Scheduled at Sinch for {wall(effective)} "
            f"({effective.astimezone(UTC):%H:%M} UTC)"
        )
        expect(row).to_contain_text(batch.sinch_batch_id)
    expect(page.locator("#dispatch-batch-counts")).to_contain_text(
        "3 scheduled at Sinch (5 messages)"
    )
    expect(page.locator("#dispatch-excluded")).to_contain_text("opted out: 1")
    expect(page.locator("#dispatch-message")).to_have_text(
        "Hi ${first_name}, spring sale starts Monday!"
    )
    screenshot("launch-02-scheduled")

    # Sinch (the simulator) holds the three batches, scheduled for that time.
    remote = control.state()["batches"]
    assert sorted(b["batch_id"] for b in remote) == sorted(
        b.sinch_batch_id for b in batches
    )
    assert {b["status"] for b in remote} == {"SCHEDULED"}
    assert {datetime.fromisoformat(b["send_after"]) for b in remote} == {effective}
    assert sum(b["size"] for b in remote) == 5

    # Cancel: the confirmation page says what will happen.
    page.click("#cancel-link")
    expect(page).to_have_url(re.compile(rf"/campaign/{campaign.pk}/cancel/$"))
    what = page.locator("#cancel-what tbody tr")
    expect(what).to_have_count(1)
    expect(what).to_contain_text("3 scheduled at Sinch")
    expect(what).to_contain_text("Cancelled at Sinch")
    expect(what.locator("td").nth(1)).to_have_text("5")
    screenshot("launch-03-cancel-confirm")
    assert {b["status"] for b in control.state()["batches"]} == {"SCHEDULED"}

    with page.expect_navigation():
        page.click("#cancel-button")

    # The cancellation receipt: every message prevented, cancelled at Sinch.
    expect(page).to_have_url(re.compile(rf"/campaign/{campaign.pk}/change/$"))
    expect(page.locator("#dispatch-status-label")).to_have_text("Cancelled")
    receipt = page.locator("#cancel-receipt")
    expect(receipt).to_contain_text(
        "5 messages prevented: 0 never submitted to Sinch, 5 cancelled at Sinch "
        "(3 batches, confirmed by Sinch)."
    )
    expect(receipt).to_contain_text("0 messages had already gone.")
    for row in rows.all():
        expect(row.locator(".batch-state")).to_have_text("Cancelled at Sinch")
    expect(page.locator("#cancel-link")).to_have_count(0)
    screenshot("launch-04-receipt")

    # And Sinch (the simulator) shows the batches cancelled.
    assert {b["status"] for b in control.state()["batches"]} == {"CANCELLED"}
    assert len(control.state()["batches"]) == 3

    # The campaign list says it at a glance.
    page.goto(f"{live_server.url}/admin/campaigns/campaign/")
    row = page.locator("#result_list tbody tr", has_text="Spring")
    status = row.locator("td.field-status_label")
    expect(status.locator(".status-label")).to_have_text("Cancelled")
    expect(status.locator(".status-detail")).to_have_text(
        "3 batches cancelled at Sinch"
    )
    screenshot("launch-05-changelist")
