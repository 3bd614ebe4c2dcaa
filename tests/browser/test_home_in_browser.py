"""The home page of each role, in a real browser.

Marketing sees its campaigns sending (the progress refreshes by itself, the
page is never reloaded), the calendar (week and month), drafts, results and
its notifications; a Sender also the launch requests; Compliance its
imports, opt-outs, erasures and cap decisions; an operator the health
summary. Screenshots of each at 1366x768 and 390x844 go to /tmp/screens/home/.
"""

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from django.contrib.auth.models import Permission
from django.utils import timezone
from playwright.sync_api import expect

from campaigns import counters, notifications
from campaigns.models import Campaign, LaunchApproval, Notification, Recipient
from contacts.models import AuditEvent, ImportJob
from contacts.services.audit import record_audit

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]
S = Campaign.Status
R = Recipient.Status
SCREENS = Path("/tmp/screens/home")
SIZES = {"desktop": (1366, 768), "phone": (390, 844)}


def recipients(campaign, **by_status):
    start = Recipient.objects.filter(campaign=campaign).count()
    rows, n = [], start
    for status, count in by_status.items():
        for _ in range(count):
            rows.append(
                Recipient(campaign=campaign, identity=f"+1415000{n:04d}", status=status)
            )
            n += 1
    Recipient.objects.bulk_create(rows)
    counters.recount(campaign.pk)


@pytest.fixture
def world(make_user, make_template, make_campaign, make_contact, make_list):
    """A product in use: campaigns in every state, notifications, imports,
    opt-outs, an erasure, and one user per role."""
    users = {
        "mark": make_user("mark", "Marketing", first_name="Mark"),
        "sandra": make_user("sandra", "Sender", first_name="Sandra"),
        "carla": make_user("carla", "Compliance", first_name="Carla"),
        "opal": make_user("opal", first_name="Opal"),
    }
    users["opal"].user_permissions.add(Permission.objects.get(codename="view_ormq"))
    mark, sandra = users["mark"], users["sandra"]
    template = make_template("Offer", "Hi ${first_name}, 20% off this week!")
    now = timezone.now()
    today = timezone.localdate()

    def at(days, hour):
        day = today + timedelta(days=days)
        return datetime(day.year, day.month, day.day, hour, 0, tzinfo=UTC)

    def campaign(name, **fields):
        return make_campaign(
            template, name=name, created_by=mark, launched_by=sandra, **fields
        )

    sending = campaign("Black Friday follow-up", status=S.SUBMITTED, launched_at=now)
    recipients(sending, DELIVERED=540, FAILED=35, SUBMITTED=300, QUEUED_ON_CHANNEL=125)
    second = campaign("Loyalty points reminder", status=S.SUBMITTING, launched_at=now)
    recipients(second, DELIVERED=120, SUBMITTED=80, PENDING=800)
    campaign("Winter collection launch", status=S.SCHEDULED, send_at=at(2, 9))
    campaign(
        "Store opening Berlin",
        status=S.SCHEDULED,
        send_at=at(4, 16),
        send_time_zone="Europe/Berlin",
    )
    campaign("Holiday greetings", status=S.SCHEDULED, send_at=at(12, 10))
    campaign(
        "New year, local 10:00",
        status=S.SCHEDULED,
        send_at=at(1, 10),
        send_in_local_time=True,
        ingress_waves=[
            {"at": at(d, 10 + d).isoformat(), "recipients": 4000, "batches": 4}
            for d in (1, 2)
        ],
    )
    campaign(
        "App re-engagement",
        status=S.PAUSED,
        send_at=at(3, 11),
        status_reason="Paused by sandra.",
    )
    asks = campaign("VIP early access", send_at=at(5, 8))
    LaunchApproval.objects.create(
        campaign=asks,
        requested_by=mark,
        requested_at=now,
        audience=2400,
        fingerprint="x",
    )
    campaign("Spring teaser (draft)")
    for name, delivered, failed in (
        ("Cyber Monday", 9120, 410),
        ("Autumn clearance", 4380, 95),
        ("Survey invitation", 760, 240),
    ):
        done = campaign(name, status=S.COMPLETED)
        recipients(done, DELIVERED=delivered // 20, FAILED=failed // 20)
    for text, kind, c in (
        (
            "“Cyber Monday” finished: 456 of 476 messages delivered (96%), 20 failed.",
            Notification.Kind.FINISHED,
            None,
        ),
        (
            "“App re-engagement” was paused automatically. Paused automatically: 3 of "
            "the last 5 batch submissions failed.",
            Notification.Kind.AUTO_PAUSED,
            None,
        ),
    ):
        notifications.notify(
            kind,
            users=[mark, sandra],
            key=text[:20],
            text=text,
            link="/admin/campaigns/campaign/",
            campaign=c,
        )
    notifications.notify(
        Notification.Kind.RECEIPTS_STALLED,
        users=[users["opal"]],
        key="s",
        text="“Loyalty points reminder”: delivery reports stopped arriving. No "
        "delivery receipt for 42 minutes while 80 messages are still waiting.",
    )
    notifications.notify(
        Notification.Kind.REPLIES_TO_REVIEW,
        users=[users["carla"]],
        key="r",
        text="3 replies read like an opt-out and wait for review.",
    )
    leads = make_list("Spring leads")
    for name, ok, bad, outs in (
        ("spring-leads.csv", 12480, 37, 112),
        ("fair-2026.csv", 860, 4, 9),
    ):
        ImportJob.objects.create(
            status=ImportJob.Status.DONE,
            file_path=f"/tmp/{name}",
            original_name=name,
            rows_ok=ok,
            rows_bad=bad,
            opt_outs=outs,
            target_list=leads,
            created_by=users["carla"],
        )
    for n in range(4):
        make_contact(f"+1415555{n:04d}", consent="OPTED_OUT")
    record_audit(
        actor=users["carla"],
        action=AuditEvent.Action.ERASURE,
        target_type="contact",
        target_id=77,
        summary="Erased contact #77: e-mail request of 2026-12-01, ticket 4711",
    )
    capped = campaign("Weekend flash sale")
    Campaign.objects.filter(pk=capped.pk).update(
        presend={"frequency_cap": {"excluded": 318}}
    )
    return users


def open_as(browser, live_server, username, size):
    width, height = SIZES[size]
    context = browser.new_context(viewport={"width": width, "height": height})
    page = context.new_page()
    page.set_default_timeout(15_000)
    page.goto(f"{live_server.url}/admin/login/?next=/admin/")
    page.fill("#id_username", username)
    page.fill("#id_password", "pw")
    page.click("input[type=submit]")
    page.wait_for_url(f"{live_server.url}/admin/")
    return page


def shoot(page, name):
    SCREENS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENS / f"{name}.png"), full_page=True)


def test_a_marketer_watches_progress_and_browses_the_calendar(
    browser, live_server, world
):
    page = open_as(browser, live_server, "mark", "desktop")
    expect(page.locator("#new-campaign")).to_be_visible()
    for module in ("running", "calendar", "drafts", "results", "notifications"):
        expect(page.locator(f"#{module}-module")).to_be_visible()
    for module in ("imports", "optouts", "operations", "approvals"):
        expect(page.locator(f"#{module}-module")).to_have_count(0)
    run = page.locator("#running-module .home-run", has_text="Loyalty points")
    expect(run.locator('[data-field="percent"]')).to_have_text("12%")
    expect(page.locator("#calendar")).to_have_attribute("data-view", "week")
    expect(page.locator("#calendar .home-day.today")).to_have_count(1)
    # The winter launch is two days ahead: on a Saturday or a Sunday that is
    # next week, one click on "next" away.
    winter_next_week = timezone.localdate().weekday() >= 5
    if winter_next_week:
        expect(page.locator("#calendar")).not_to_contain_text("Winter collection")
        page.click("#calendar-next")
        expect(page.locator("#calendar .home-day.today")).to_have_count(0)
    expect(page.locator("#calendar")).to_contain_text("Winter collection launch")
    if winter_next_week:
        page.click("#calendar-today")
    expect(page.locator("#notifications-module .home-note-item.unread")).to_have_count(
        2
    )
    shoot(page, "marketing-desktop")

    # Sinch reports come in: the bar moves without a reload.
    loyalty = Campaign.objects.get(name="Loyalty points reminder")
    Recipient.objects.filter(campaign=loyalty, status=R.PENDING).update(
        status=R.DELIVERED
    )
    counters.recount(loyalty.pk)
    page.evaluate("window.__notReloaded = true")
    expect(run.locator('[data-field="percent"]')).to_have_text("92%", timeout=15_000)
    expect(run.locator('[data-field="summary"]')).to_have_text(
        "920 delivered, 0 failed of 1,000"
    )
    assert page.evaluate("window.__notReloaded") is True

    # The month, then back to the week.
    page.click("#calendar-month")
    expect(page.locator("#calendar")).to_have_attribute("data-view", "month")
    expect(page.locator("#calendar-title")).to_have_text(
        f"{timezone.localdate():%B %Y}"
    )
    expect(page.locator("#calendar .home-day.today")).to_have_count(1)
    shoot(page, "marketing-month-desktop")
    page.click("#calendar-next")
    expect(page.locator("#calendar .home-day.today")).to_have_count(0)
    page.click("#calendar-today")
    page.click("#calendar-week")
    expect(page.locator("#calendar")).to_have_attribute("data-view", "week")
    expect(page.locator("#calendar tbody td")).to_have_count(7)

    # A notification marked read.
    page.locator("#notifications-module .mark-read").first.click()
    expect(page.locator("#notifications-module .home-note-item.unread")).to_have_count(
        1
    )

    # E-mails turned off on the preference page.
    page.click("#notification-preferences")
    expect(page.locator("#id_email")).to_be_checked()
    page.uncheck("#id_email")
    page.click("#preferences-form input[type=submit]")
    expect(page.locator(".messagelist")).to_contain_text("no longer be e-mailed")
    expect(page.locator("#id_email")).not_to_be_checked()
    shoot(page, "preferences-desktop")
    page.context.close()

    phone = open_as(browser, live_server, "mark", "phone")
    expect(phone.locator("#new-campaign")).to_be_visible()
    shoot(phone, "marketing-phone")
    phone.context.close()


def test_a_sender_sees_the_launch_requests(browser, live_server, world):
    for size in SIZES:
        page = open_as(browser, live_server, "sandra", size)
        request = page.locator("#approvals-module .approval-request")
        expect(request).to_have_count(1)
        expect(request).to_contain_text("VIP early access: 2400 recipients")
        expect(page.locator("#running-module")).to_be_visible()
        expect(page.locator("#imports-module")).to_have_count(0)
        shoot(page, f"sender-{size}")
        page.context.close()


def test_compliance_sees_imports_opt_outs_erasures_and_cap_decisions(
    browser, live_server, world
):
    for size in SIZES:
        page = open_as(browser, live_server, "carla", size)
        expect(page.locator("#imports-module")).to_contain_text("spring-leads.csv")
        expect(page.locator("#optouts-module tr")).to_have_count(4)
        expect(page.locator("#erasures-module")).to_contain_text("ticket 4711")
        expect(page.locator("#exemptions-module")).to_contain_text(
            "leaves out 318 recipients"
        )
        expect(page.locator("#review-module")).to_be_visible()
        for module in ("running", "calendar", "operations"):
            expect(page.locator(f"#{module}-module")).to_have_count(0)
        expect(page.locator("#new-campaign")).to_have_count(0)
        shoot(page, f"compliance-{size}")
        page.context.close()


def test_an_operator_sees_the_health_summary_and_all_data(browser, live_server, world):
    for size in SIZES:
        page = open_as(browser, live_server, "opal", size)
        expect(page.locator("#operations-module")).to_be_visible()
        expect(page.locator("#operations-module")).to_contain_text("Task queue")
        expect(page.locator("#notifications-module")).to_contain_text(
            "delivery reports stopped arriving"
        )
        for module in ("running", "imports"):
            expect(page.locator(f"#{module}-module")).to_have_count(0)
        shoot(page, f"operator-{size}")
        if size == "desktop":
            page.click("#all-data-link")
            expect(page.locator("#content h1")).to_have_text("All data")
            shoot(page, "all-data-desktop")
        page.context.close()


def test_a_superuser_sees_everything(browser, live_server, world, superuser):
    page = open_as(browser, live_server, "root", "desktop")
    for module in ("running", "calendar", "imports", "operations", "approvals"):
        expect(page.locator(f"#{module}-module")).to_be_visible()
    shoot(page, "superuser-desktop")
    # Django's dark theme: the cards, calendar and pills stay readable.
    page.evaluate("document.documentElement.dataset.theme = 'dark'")
    shoot(page, "superuser-dark-desktop")
    page.context.close()
