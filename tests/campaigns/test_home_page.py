"""The home page at /admin/: each role sees what it needs first, and only that.

Marketing, Sender and Viewer: running campaigns with live progress, the
calendar of scheduled and held campaigns (week and month), drafts waiting,
recent results, replies to review. Compliance: imports, opt-outs, erasures,
frequency-cap exemptions. Operators: the health summary. Everyone: their
notifications and the "All data" list of tables.
"""

import re
from datetime import UTC, date, datetime, timedelta

import pytest
from django.contrib.auth.models import Permission
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from campaigns import counters
from campaigns.models import Campaign, LaunchApproval, Recipient
from campaigns.tracking import calendar
from contacts.models import AuditEvent, ConsentEvent, ImportJob
from contacts.services.audit import record_audit

S = Campaign.Status
R = Recipient.Status
HOME = "/admin/"
CAMPAIGN_MODULES = (
    "running-module",
    "calendar-module",
    "drafts-module",
    "results-module",
)
COMPLIANCE_MODULES = (
    "imports-module",
    "optouts-module",
    "erasures-module",
    "exemptions-module",
)


def home(client, user, query=""):
    client.force_login(user)
    response = client.get(HOME + query)
    assert response.status_code == 200
    return response.content.decode()


def shown(page, module):
    return f'id="{module}"' in page


def with_recipients(campaign, **by_status):
    """Recipients of `campaign` in the given statuses, and its kept counts."""
    rows = [
        Recipient(campaign=campaign, identity=f"+1415000{i:04d}", status=status)
        for status, n in by_status.items()
        for i in range(n)
    ]
    Recipient.objects.bulk_create(rows)
    counters.recount(campaign.pk)
    return campaign


def cell(page, day: date) -> str:
    """The HTML of one calendar day."""
    found = re.search(
        rf'<td class="home-day[^"]*" data-day="{day.isoformat()}">(.*?)</td>',
        page,
        re.S,
    )
    assert found, f"{day} is not on the calendar"
    return found.group(1)


# --- who sees what -------------------------------------------------------------


def test_a_marketer_sees_the_campaign_modules_and_a_new_campaign_button(
    client, marketer
):
    page = home(client, marketer)
    for module in CAMPAIGN_MODULES:
        assert shown(page, module), module
    assert 'id="new-campaign"' in page
    assert reverse("admin:campaigns_campaign_add") in page
    assert shown(page, "notifications-module")
    assert 'id="all-data-link"' in page
    for module in (*COMPLIANCE_MODULES, "operations-module", "approvals-module"):
        assert not shown(page, module), module


def test_a_sender_also_sees_the_launch_requests(client, sender):
    page = home(client, sender)
    assert shown(page, "approvals-module")
    assert shown(page, "running-module")
    assert not shown(page, "imports-module")


def test_a_viewer_sees_the_campaigns_but_cannot_start_one(client, viewer):
    page = home(client, viewer)
    for module in CAMPAIGN_MODULES:
        assert shown(page, module), module
    assert 'id="new-campaign"' not in page


def test_compliance_sees_its_modules_and_not_the_campaigns(client, compliance_admin):
    page = home(client, compliance_admin)
    for module in COMPLIANCE_MODULES:
        assert shown(page, module), module
    assert shown(page, "review-module")
    for module in (*CAMPAIGN_MODULES, "operations-module", "new-campaign"):
        assert not shown(page, module), module


def test_a_superuser_sees_everything(client, superuser):
    page = home(client, superuser)
    for module in (*CAMPAIGN_MODULES, *COMPLIANCE_MODULES, "operations-module"):
        assert shown(page, module), module


def test_an_operator_sees_the_health_summary(client, make_user):
    operator = make_user("opal")
    operator.user_permissions.add(Permission.objects.get(codename="view_ormq"))
    page = home(client, operator)
    assert shown(page, "operations-module")
    assert 'id="health-link"' in page
    assert "Task queue" in page
    assert "Last Sinch callback" in page
    for module in (*CAMPAIGN_MODULES, *COMPLIANCE_MODULES):
        assert not shown(page, module), module


def test_all_data_lists_every_table(client, marketer):
    client.force_login(marketer)
    page = client.get(reverse("all-data")).content.decode()
    assert "All data" in page
    assert reverse("admin:campaigns_campaign_changelist") in page
    assert reverse("admin:contacts_contact_changelist") in page


def test_the_home_page_needs_a_staff_login(client, outsider):
    assert client.get(HOME)["Location"].startswith("/admin/login/")
    client.force_login(outsider)
    assert client.get(HOME)["Location"].startswith("/admin/login/")


# --- campaign modules -----------------------------------------------------------


def test_running_campaigns_show_their_progress(client, marketer, make_campaign):
    running = with_recipients(
        make_campaign(name="Summer sale", status=S.SUBMITTED),
        DELIVERED=6,
        FAILED=2,
        SUBMITTED=2,
    )
    make_campaign(name="Old news", status=S.COMPLETED)
    page = home(client, marketer)
    module = page.split('id="running-module"')[1].split("</section>")[0]
    assert f'data-campaign="{running.pk}"' in module
    assert "Summer sale" in module
    assert "Old news" not in module
    assert "6 delivered, 2 failed of 10" in module
    assert "80%" in module  # 8 outcomes of 10


def test_the_progress_endpoint_gives_the_live_figures(client, marketer, make_campaign):
    campaign = with_recipients(
        make_campaign(name="Live", status=S.SUBMITTING), SUBMITTED=4
    )
    client.force_login(marketer)
    first = client.get(reverse("home-progress")).json()["campaigns"]
    assert [(c["id"], c["percent"], c["delivered"]) for c in first] == [
        (campaign.pk, 0, 0)
    ]
    Recipient.objects.filter(campaign=campaign).update(status=R.DELIVERED)
    counters.recount(campaign.pk)
    again = client.get(reverse("home-progress")).json()["campaigns"][0]
    assert (again["percent"], again["delivered"]) == (100, 4)
    assert again["summary"] == "4 delivered, 0 failed of 4"
    assert [s["key"] for s in again["segments"]] == ["delivered"]


def test_the_progress_endpoint_is_for_campaign_people_only(client, compliance_admin):
    client.force_login(compliance_admin)
    assert client.get(reverse("home-progress")).status_code == 403


def test_drafts_say_what_they_wait_for(client, marketer, sender, make_campaign):
    unchecked = make_campaign(name="Never checked")
    waiting = make_campaign(name="Needs approval")
    LaunchApproval.objects.create(
        campaign=waiting,
        requested_by=sender,
        requested_at=timezone.now(),
        audience=7,
        fingerprint="x",
    )
    page = home(client, marketer)
    module = page.split('id="drafts-module"')[1].split("</section>")[0]
    assert re.search(r"Never checked</a>\s*<div[^>]*>.*pre-send check not run", module)
    assert re.search(r"Needs approval</a>\s*<div[^>]*>.*second Sender", module)
    assert unchecked.name in module


def test_recent_results_show_the_delivered_share(client, marketer, make_campaign):
    with_recipients(
        make_campaign(name="Done well", status=S.COMPLETED), DELIVERED=3, FAILED=1
    )
    page = home(client, marketer)
    module = page.split('id="results-module"')[1].split("</section>")[0]
    assert "Done well" in module
    assert "<strong>75%</strong> delivered" in module
    assert "3 of 4" in module


def test_the_home_page_reads_no_more_for_many_campaigns(
    client, superuser, make_campaign, make_template
):
    """No per-row queries: 3 or 15 campaigns of each kind cost the same."""
    template = make_template()
    client.force_login(superuser)

    def queries():
        with CaptureQueriesContext(connection) as ctx:
            assert client.get(HOME).status_code == 200
        return len(ctx.captured_queries)

    def add(n):
        for _ in range(n):
            make_campaign(template, status=S.COMPLETED)
            make_campaign(template, status=S.DRAFT)
            make_campaign(
                template,
                status=S.SCHEDULED,
                send_at=timezone.now() + timedelta(days=1),
            )

    add(3)
    few = queries()
    add(12)
    assert queries() == few


# --- the calendar -----------------------------------------------------------------


def test_the_week_shows_a_campaign_on_its_send_day_and_marks_today(
    client, marketer, make_campaign
):
    today = timezone.localdate()
    day = today + timedelta(days=1)
    at = datetime.combine(day, datetime.min.time(), tzinfo=UTC) + timedelta(hours=9)
    make_campaign(name="Tomorrow 9am", status=S.SCHEDULED, send_at=at)
    page = home(client, marketer, f"?view=week&day={day.isoformat()}")
    assert 'data-view="week"' in page
    assert "Tomorrow 9am" in cell(page, day)
    assert "Tomorrow 9am" not in cell(
        page, day - timedelta(days=1) if day.weekday() else day + timedelta(days=1)
    )
    week_start = day - timedelta(days=day.weekday())
    assert page.count('" data-day="') == 7
    assert f'data-day="{week_start.isoformat()}"' in page
    if week_start <= today < week_start + timedelta(days=7):
        assert re.search(rf'home-day today[^"]*" data-day="{today.isoformat()}"', page)


def test_the_calendar_uses_the_campaigns_send_time_zone(make_campaign, db):
    # 23:30 UTC on the 9th is already the 10th in Berlin.
    at = datetime(2026, 12, 9, 23, 30, tzinfo=UTC)
    campaign = make_campaign(
        status=S.SCHEDULED, send_at=at, send_time_zone="Europe/Berlin"
    )
    cal = calendar.build(calendar.WEEK, date(2026, 12, 9), now=at - timedelta(days=3))
    days = {d.day: d.entries for week in cal.weeks for d in week}
    assert [e.pk for e in days[date(2026, 12, 10)]] == [campaign.pk]
    assert days[date(2026, 12, 9)] == []
    assert days[date(2026, 12, 10)][0].time == "00:30 Europe/Berlin"


def test_local_time_waves_show_on_each_day(make_campaign, db):
    start = datetime(2026, 12, 14, 9, 0, tzinfo=UTC)
    waves = [
        {"at": (start + timedelta(hours=h)).isoformat(), "recipients": 10, "batches": 1}
        for h in (0, 20, 40)
    ]
    campaign = make_campaign(
        name="Around the world",
        status=S.SCHEDULED,
        send_at=start,
        send_in_local_time=True,
        ingress_waves=waves,
    )
    cal = calendar.build(calendar.WEEK, date(2026, 12, 14), now=start - timedelta(1))
    days = {d.day: [(e.pk, e.state) for e in d.entries] for w in cal.weeks for d in w}
    assert days[date(2026, 12, 14)] == [(campaign.pk, "scheduled")]
    assert days[date(2026, 12, 15)] == [(campaign.pk, "wave")]
    assert days[date(2026, 12, 16)] == [(campaign.pk, "wave")]
    assert days[date(2026, 12, 17)] == []


def test_held_campaigns_show_why(make_campaign, sender, db):
    now = datetime(2026, 12, 14, 12, 0, tzinfo=UTC)
    make_campaign(name="Paused", status=S.PAUSED, send_at=now + timedelta(days=1))
    make_campaign(
        name="Quiet",
        status=S.SUBMITTING,
        send_at=now - timedelta(hours=1),
        ingress_waves=[
            {"at": (now + timedelta(days=1)).isoformat(), "recipients": 5, "batches": 1}
        ],
    )
    approval = make_campaign(name="Asks", send_at=now + timedelta(days=2))
    LaunchApproval.objects.create(
        campaign=approval,
        requested_by=sender,
        requested_at=now,
        audience=7,
        fingerprint="x",
    )
    make_campaign(name="Plain draft", send_at=now + timedelta(days=2))
    make_campaign(name="Cancelled", status=S.CANCELLED, send_at=now)
    cal = calendar.build(calendar.WEEK, now.date(), now=now)
    entries = sorted(
        (e.name, d.day, e.state) for w in cal.weeks for d in w for e in d.entries
    )
    assert entries == [
        ("Asks", date(2026, 12, 16), "approval"),
        ("Paused", date(2026, 12, 15), "paused"),
        # sending since an hour, its last wave held until tomorrow
        ("Quiet", date(2026, 12, 14), "sending"),
        ("Quiet", date(2026, 12, 15), "quiet-hours"),
    ]


def test_the_month_view_places_campaigns_and_navigates(client, marketer, make_campaign):
    at = datetime(2027, 2, 17, 10, 0, tzinfo=UTC)
    make_campaign(name="February promo", status=S.SCHEDULED, send_at=at)
    page = home(client, marketer, "?view=month&day=2027-02-05")
    assert 'data-view="month"' in page
    assert 'id="calendar-title">February 2027<' in page
    assert "February promo" in cell(page, date(2027, 2, 17))
    # February 2027 starts on a Monday and has 28 days: exactly 4 weeks.
    assert page.count('" data-day="') == 28
    assert (
        'href="?view=month&amp;day=2027-01-01#calendar-module" id="calendar-prev"'
        in page
    )
    assert (
        'href="?view=month&amp;day=2027-03-01#calendar-module" id="calendar-next"'
        in page
    )
    assert (
        'href="?view=week&amp;day=2027-02-05#calendar-module" id="calendar-week"'
        in page
    )
    march = home(client, marketer, "?view=month&day=2027-03-01")
    assert "February promo" not in march
    april = home(client, marketer, "?view=month&day=2027-04-20")
    assert 'id="calendar-title">April 2027<' in april
    assert 'other-month" data-day="2027-03-29"' in april  # April starts on a Thursday


def test_a_bad_calendar_query_falls_back_to_this_week(client, marketer):
    page = home(client, marketer, "?view=year&day=not-a-date")
    assert 'data-view="week"' in page
    assert f'data-day="{timezone.localdate().isoformat()}"' in page


# --- compliance ------------------------------------------------------------------


def test_compliance_sees_imports_opt_outs_erasures_and_exemptions(
    client, compliance_admin, make_contact, make_campaign, make_list
):
    ImportJob.objects.create(
        status=ImportJob.Status.DONE,
        file_path="/tmp/x.csv",
        original_name="spring-leads.csv",
        rows_ok=1200,
        rows_bad=3,
        opt_outs=17,
        target_list=make_list("Spring leads"),
    )
    make_contact("+14155550123", consent="OPTED_OUT")
    record_audit(
        actor=compliance_admin,
        action=AuditEvent.Action.ERASURE,
        target_type="contact",
        target_id=99,
        summary="Erased contact #99 on request",
    )
    exempt = make_campaign(name="Exempt promo")
    Campaign.objects.filter(pk=exempt.pk).update(
        cap_exempt_at=timezone.now(),
        cap_exempt_by=compliance_admin,
        cap_exempt_reason="Recall notice",
    )
    pending = make_campaign(name="Capped promo")
    Campaign.objects.filter(pk=pending.pk).update(
        presend={"frequency_cap": {"excluded": 42}}
    )
    make_campaign(name="Uncapped")

    page = home(client, compliance_admin)

    imports = page.split('id="imports-module"')[1].split("</section>")[0]
    assert "spring-leads.csv" in imports
    assert "1,200 ok" in imports
    assert "3 bad · 17 opt-outs" in imports
    opt_outs = page.split('id="optouts-module"')[1].split("</section>")[0]
    assert ConsentEvent.objects.filter(kind="OPT_OUT").count() == 1
    assert "+1415•••0123" in opt_outs
    assert "+14155550123" not in page  # numbers are masked
    erasures = page.split('id="erasures-module"')[1].split("</section>")[0]
    assert "Erased contact #99 on request" in erasures
    exemptions = page.split('id="exemptions-module"')[1].split("</section>")[0]
    assert "Exempt promo" in exemptions
    assert "Recall notice" in exemptions
    assert "Capped promo" in exemptions
    assert "leaves out 42 recipients" in exemptions
    assert "Uncapped" not in exemptions


@pytest.mark.parametrize("role_fixture", ["marketer", "compliance_admin"])
def test_replies_waiting_for_review_show_to_those_who_see_replies(
    client, request, role_fixture
):
    page = home(client, request.getfixturevalue(role_fixture))
    assert "0 replies need review" in page
