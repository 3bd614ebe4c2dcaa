"""Issue 13, acceptance, in a real browser with two users: a marketing
campaign over the approval threshold, sent at 10:00 in each recipient's own
time zone, with every guard having an effect.

Marketing runs the pre-send check (6 recipients in 3 time zones; London held
by its quiet hours until 11:00; one New Yorker left out by the frequency cap
because an earlier campaign reaches them that morning; the compliance footer
added) and requests the launch. The Sender finds the request on the admin
home, approves it, reads the waves on the launch page (zone, local time, UTC
time, recipients) and launches. The simulator then holds one batch per wave,
scheduled for that wave's UTC time, and the campaign page and the dashboard
show the scheduled waves and each guard's effect.
"""

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from django.utils import timezone
from playwright.sync_api import expect

from campaigns.dispatch import launching
from campaigns.models import Batch, Campaign
from contacts import roles
from contacts.models import Contact

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

NEW_YORK, CHICAGO, LONDON = "America/New_York", "America/Chicago", "Europe/London"
CAP_RULE = "frequency cap: 1 marketing message in 1 day"


@pytest.fixture(autouse=True)
def guards(settings, tmp_path):
    """Every guard on: quiet hours (London's window opens at 11:00), the
    frequency cap, approval from 5 recipients, the footer; batches are handed
    to Sinch up to 6 days ahead, so every wave is scheduled there at once."""
    settings.MEDIA_ROOT = str(tmp_path / "media")  # the pre-send CSV
    settings.QUIET_HOURS = "08:00-21:00"
    settings.QUIET_HOURS_OVERRIDES = "GB=11:00-21:00"
    settings.QUIET_HOURS_HOLIDAYS = ""
    settings.FREQUENCY_CAP = "2/7d,1/1d"
    settings.APPROVAL_MIN_RECIPIENTS = 5
    settings.APPROVAL_MIN_COST = None
    settings.COMPLIANCE_FOOTER_ORGANISATION = "Acme"
    settings.COMPLIANCE_FOOTER_OPT_OUT = "Reply STOP to opt out"
    settings.SINCH_SCHEDULE_AHEAD_HOURS = 24 * 6
    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"


@pytest.fixture
def day():
    """The send date: two days ahead, so every zone's 10:00 is in the future."""
    return (timezone.now() + timedelta(days=2)).date()


def at(day, hour: int, zone: str) -> datetime:
    return datetime(day.year, day.month, day.day, hour, tzinfo=ZoneInfo(zone))


def utc_text(instant: datetime) -> str:
    return instant.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC")


def local_text(instant: datetime) -> str:
    return instant.strftime("%Y-%m-%d %H:%M %Z")


def new_york_text(instant: datetime) -> str:
    """How the pages write an instant: in the campaign's zone, and UTC."""
    wall = instant.astimezone(ZoneInfo(NEW_YORK))
    return f"{wall:%Y-%m-%d %H:%M} {NEW_YORK} ({instant.astimezone(UTC):%H:%M} UTC)"


@pytest.fixture
def people(make_user):
    return {
        "mark": make_user("mark", roles.MARKETING, email="mark@example.com"),
        "sandra": make_user("sandra", roles.SENDER, email="sandra@example.com"),
    }


@pytest.fixture
def campaign(make_template, make_audience, make_list, make_campaign, day, people):
    """Spring, 10:00 local on `day`, to 7 opted-in people in New York,
    Chicago and London (their area codes tell the zones) and one opted-out
    person; Nora in New York already gets the Flash sale at 08:00 that day."""
    customers = make_audience(
        "Customers",
        {
            "+12125550101": "Nora",
            "+12125550102": "Ned",
            "+12125550103": "Nina",
            "+13125550101": "Carl",
            "+13125550102": "Cleo",
            "+442079460101": "Lena",
            "+442079460102": "Liam",
        },
        opted_out={"+13125550199": "Olga"},
    )
    flash_list = make_list("Flash")
    flash_list.memberships.create(
        contact=Contact.objects.get(first_name="Nora"), source="ADMIN"
    )
    flash = make_campaign(
        make_template("Flash", "Flash sale, ${first_name}!"),
        [flash_list],
        "Flash sale",
        checked=True,
        send_at=at(day, 8, NEW_YORK).astimezone(UTC),
        send_time_zone=NEW_YORK,
    )
    launching.launch(flash, people["sandra"])
    assert Batch.objects.filter(campaign=flash, submitted_at__isnull=False).exists()
    return make_campaign(
        make_template("Spring sale", "Hi ${first_name}, spring sale today!"),
        [customers],
        "Spring",
        send_at=at(day, 10, NEW_YORK).astimezone(UTC),
        send_time_zone=NEW_YORK,
        send_in_local_time=True,
    )


def log_out(page):
    page.click("#logout-form button")
    expect(page.locator("h1")).to_have_text("Logged out")


def rows_text(table) -> list[list[str]]:
    """The visible cells of a table's body rows (a rowspan cell counts once)."""
    return [
        [" ".join(cell.split()) for cell in row.locator("td").all_inner_texts()]
        for row in table.locator("tbody tr").all()
    ]


def test_marketing_requests_a_local_time_launch_a_sender_approves_it_and_it_goes_in_waves(  # noqa: E501
    page, live_server, login, screenshot, sinch, control, campaign, day
):
    flash_batches = {b["batch_id"] for b in control.state()["batches"]}
    assert len(flash_batches) == 1
    ten = {zone: at(day, 10, zone) for zone in (NEW_YORK, CHICAGO)}
    eleven_london = at(day, 11, LONDON)  # held: its window opens at 11:00
    preview = f"/admin/campaigns/campaign/{campaign.pk}/preview/"

    # Marketing: the pre-send check shows every guard's effect.
    login("mark", next_url=preview)
    with page.expect_navigation():
        page.click("input[value='Run the pre-send check']")
    expect(page.locator("#time-zones")).to_contain_text(
        "6 recipients in 3 time zones; each gets the message at "
        f"{at(day, 10, NEW_YORK):%Y-%m-%d %H:%M} on their own clock"
    )
    area_code = "2 inferred from area code"
    assert sorted(rows_text(page.locator("#time-zones-table"))) == [
        [CHICAGO, "2", area_code, "0", "", ""],
        [NEW_YORK, "2", area_code, "0", "", ""],
        [
            LONDON,
            "2",
            area_code,
            "2",
            local_text(eleven_london),
            utc_text(eleven_london),
        ],
    ]
    expect(page.locator("#time-zones")).to_contain_text("2 are held by quiet hours")
    expect(page.locator("#presend-cap")).to_contain_text(
        "1 excluded by the frequency cap"
    )
    expect(page.locator(".presend-excluded")).to_contain_text(
        f"1 \N{MULTIPLICATION SIGN} {CAP_RULE}: Nora"
    )
    expect(page.locator(".presend-footer")).to_contain_text(
        "Acme: Reply STOP to opt out"
    )
    expect(page.locator("#approval-needed")).to_contain_text(
        "(5 recipients or more: this one has 6)"
    )
    screenshot("guards-1-presend")
    with page.expect_navigation():
        page.click("#request-launch-button")
    expect(page.locator("#approval-state")).to_contain_text(
        "Waiting for approval: requested by mark at "
    )
    screenshot("guards-2-requested")
    log_out(page)

    # The Sender: the request on the admin home; approve it.
    login("sandra")
    request = page.locator("#approvals-module .approval-request")
    expect(request).to_contain_text("Spring: 6 recipients, requested by mark at ")
    with page.expect_navigation():
        request.locator("a").click()
    with page.expect_navigation():
        page.click("#approve-button")
    expect(page.locator("#approval-state")).to_contain_text("Approved by sandra")

    # The launch page: the waves, with UTC times computed here from zoneinfo.
    with page.expect_navigation():
        page.click("#launch-link")
    expect(page.locator("#launch-approval")).to_contain_text("Approved by sandra")
    expect(page.locator("#launch-cap")).to_contain_text(
        "1 excluded by the frequency cap"
    )
    expect(page.locator("#launch-excluded")).to_contain_text(
        f"2 — 1 \N{MULTIPLICATION SIGN} {CAP_RULE}; 1 \N{MULTIPLICATION SIGN} opted out"
    )
    expect(page.locator(".launch-footer")).to_contain_text(
        "Acme: Reply STOP to opt out"
    )
    expect(page.locator("#launch-send-time")).to_contain_text(
        f"10:00 on {day:%Y-%m-%d} in each recipient's own time zone"
    )
    expect(page.locator("#launch-send-time")).to_contain_text(
        "scheduled at Sinch for its wave's time below"
    )
    expect(page.locator("#time-zones")).to_contain_text("6 recipients in 3 time zones")
    waves = page.locator("#local-waves-table")
    expect(waves.locator("tbody tr")).to_have_count(3)
    expected = [
        [
            utc_text(eleven_london) + " (quiet hours)",
            LONDON,
            local_text(eleven_london),
            "2",
        ],
        [utc_text(ten[NEW_YORK]), NEW_YORK, local_text(ten[NEW_YORK]), "2"],
        [utc_text(ten[CHICAGO]), CHICAGO, local_text(ten[CHICAGO]), "2"],
    ]
    assert rows_text(waves) == expected
    expect(page.locator("#launch-button")).to_have_value("Launch to 6 recipients")
    screenshot("guards-3-launch")
    with page.expect_navigation():
        page.click("#launch-button")
    first, last = eleven_london, ten[CHICAGO]
    expect(page.locator("ul.messagelist li.success")).to_contain_text(
        f"Launched “Spring”. Its batches are scheduled at Sinch for 10:00 on "
        f"{day:%Y-%m-%d} in each recipient's own time zone. It goes in 3 waves "
        "(recipients' local times, quiet hours, Sinch's queue), the first at "
        f"{new_york_text(first)}, the last at {new_york_text(last)}."
    )

    # The simulator: one batch per wave, scheduled for the wave's UTC time.
    spring = [
        b for b in control.state()["batches"] if b["batch_id"] not in flash_batches
    ]
    scheduled = sorted((b["send_after"], b["size"], b["status"]) for b in spring)
    assert scheduled == [
        (t.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"), 2, "SCHEDULED")
        for t in sorted((eleven_london, ten[NEW_YORK], ten[CHICAGO]))
    ]
    campaign.refresh_from_db()
    assert campaign.status == Campaign.Status.SUBMITTED

    # The campaign page: the scheduled waves and the guards.
    expect(page.locator("#dispatch-status-label")).to_have_text("Submitted")
    expect(page.locator("#dispatch-send-time")).to_contain_text(
        f"10:00 on {day:%Y-%m-%d} in each recipient's own time zone (set as "
        f"{new_york_text(ten[NEW_YORK])})"
    )
    expect(page.locator("#dispatch-send-time")).to_contain_text(
        f"Sinch sends the first wave at {new_york_text(first)}, the last at "
        f"{new_york_text(last)}"
    )
    assert rows_text(page.locator("#dispatch #local-waves-table")) == expected
    expect(page.locator("#dispatch-quiet-hours")).to_contain_text(
        f"2 in {LONDON} until {local_text(eleven_london)}"
    )
    expect(page.locator("#dispatch-excluded")).to_contain_text(f"{CAP_RULE}: 1")
    expect(page.locator("#approval-needed")).to_have_text(
        "Approval required by a second Sender before the launch "
        "(5 recipients or more: this one has 6): given."
    )
    expect(page.locator("#approval-state")).to_contain_text("Approved by sandra")
    expect(page.locator("#cap-applied")).to_contain_text(
        "Applied (marketing messages per person: at most 2 per 7 days, at most 1 "
        "per 1 day)"
    )
    expect(page.locator("#cap-applied")).to_contain_text(
        "The last pre-send check excluded 1 by it."
    )
    screenshot("guards-4-campaign")

    # The dashboard.
    with page.expect_navigation():
        page.click("#dashboard-link")
    expect(page.locator("#quiet-hours-held")).to_contain_text(
        f"2 in {LONDON} until {local_text(eleven_london)}"
    )
    expect(page.locator("#cap-excluded")).to_contain_text(
        "1 excluded by the frequency cap"
    )
    expect(page.locator("#footer-note")).to_contain_text("Acme: Reply STOP to opt out")
    expect(page.locator("#approval-note")).to_contain_text(
        "Launch approval required (5 recipients or more: this one has 6): "
        "approved by sandra at "
    )
    expect(page.locator("#approval-note")).to_contain_text("requested by mark at ")
    assert rows_text(page.locator("#local-waves-table")) == expected
    screenshot("guards-5-dashboard")
