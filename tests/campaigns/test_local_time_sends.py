"""Sending in each recipient's local time, and holding those in their quiet
hours, through the real pre-send check, launch, freeze and drain against
the simulator (campaigns.compliance.send_times, campaigns.dispatch)."""

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from django.urls import reverse
from django.utils import timezone

from campaigns.dispatch import ingress, launching
from campaigns.models import Batch, Campaign, Recipient
from contacts.models import AuditEvent

B, R = Batch.Status, Recipient.Status


@pytest.fixture
def quiet(settings):
    settings.QUIET_HOURS = "08:00-21:00"
    settings.QUIET_HOURS_OVERRIDES = ""
    settings.QUIET_HOURS_HOLIDAYS = ""
    settings.SINCH_SCHEDULE_AHEAD_HOURS = 24 * 6  # batches go to Sinch now
    return settings


def zone_at_hour(hour: int, now: datetime) -> str:
    """A fixed-offset IANA zone whose wall clock shows `hour` o'clock now
    (Etc/GMT-3 is UTC+3: POSIX signs)."""
    offset = (hour - now.hour) % 24
    if offset > 14:
        offset -= 24
    return f"Etc/GMT{-offset:+d}" if offset else "Etc/GMT"


@pytest.fixture
def people(make_audience):
    """A list of `n` opted-in people with numbers from `first` (a format
    with {:04d}) and, optionally, their own time zone."""

    def make(name: str, n: int, first: str, time_zone: str = "", **fields):
        return make_audience(name, n, phone=first, time_zone=time_zone, **fields)

    return make


def test_10_00_local_in_three_zones_goes_in_three_batches_at_their_own_times(
    quiet, sinch, control, people, make_template, make_campaign, launch
):
    # Area codes tell the zones: New York, Chicago, Los Angeles.
    lists = [
        people("New York", 2, "+1212555{:04d}"),
        people("Chicago", 3, "+1312555{:04d}"),
        people("Los Angeles", 1, "+1415555{:04d}"),
    ]
    day = (timezone.now() + timedelta(days=2)).date()
    ten_in_new_york = datetime(
        day.year, day.month, day.day, 10, tzinfo=ZoneInfo("America/New_York")
    )
    campaign = make_campaign(
        make_template("Local", "Hi ${first_name}"),
        lists,
        checked=True,
        send_at=ten_in_new_york.astimezone(UTC),
        send_time_zone="America/New_York",
        send_in_local_time=True,
    )
    zones = campaign.presend["send_times"]["zones"]
    assert {name: z["recipients"] for name, z in zones.items()} == {
        "America/Chicago": 3,
        "America/New_York": 2,
        "America/Los_Angeles": 1,
    }
    page = _launch_page(campaign)
    assert "6 recipients in 3 time zones" in page
    rows = _table_rows(page, "local-waves-table")
    names = ["America/New_York", "America/Chicago", "America/Los_Angeles"]
    counts = {"America/New_York": "2", "America/Chicago": "3"}
    assert rows == [
        [_utc(day, 10, z), z, _wall(day, 10, z), counts.get(z, "1")] for z in names
    ]
    campaign = launch(campaign)

    batches = Batch.objects.filter(campaign=campaign).order_by("wave_at")
    sent = [(b.size, b.status, b.send_after) for b in batches]
    ten = {
        name: datetime(day.year, day.month, day.day, 10, tzinfo=ZoneInfo(name))
        for name in ("America/New_York", "America/Chicago", "America/Los_Angeles")
    }
    assert sent == [
        (2, B.ACCEPTED, ten["America/New_York"]),
        (3, B.ACCEPTED, ten["America/Chicago"]),
        (1, B.ACCEPTED, ten["America/Los_Angeles"]),
    ]
    at_sinch = sorted(b["send_after"] for b in control.state()["batches"])
    assert at_sinch == sorted(
        t.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ") for t in ten.values()
    )
    # Each Los Angeles recipient is in the Los Angeles batch.
    la = Recipient.objects.get(campaign=campaign, identity="+14155550000")
    assert la.batch.wave_at == ten["America/Los_Angeles"]


def test_a_zone_whose_local_time_has_passed_is_sent_at_once(
    quiet, sinch, sent_batches, people, make_template, make_campaign, launch
):
    quiet.QUIET_HOURS = "00:00-24:00"
    now = timezone.now()
    in_two_hours = ingress.slot_of(now + timedelta(hours=2))
    # The send time is in two hours in UTC; on Kiritimati (UTC+14) that
    # wall-clock time was 12 hours ago.
    lists = [
        people("London", 2, "+44207555{:04d}", "UTC"),
        people("Line Islands", 2, "+1415556{:04d}", "Pacific/Kiritimati"),
    ]
    campaign = make_campaign(
        make_template("Local", "Hi ${first_name}"),
        lists,
        checked=True,
        send_at=in_two_hours,
        send_time_zone="UTC",
        send_in_local_time=True,
    )
    assert campaign.presend["send_times"]["zones"]["Pacific/Kiritimati"]["passed"] == 2
    launch_page = _launch_page(campaign)
    assert "has already passed" in launch_page
    campaign = launch(campaign)
    # The Line Islands now (no send_after), London at the send time.
    asked = sorted(
        (body.get("send_after") or "", len(body["recipient_and_params"]))
        for body in sent_batches
    )
    assert asked == [("", 2), (in_two_hours.strftime("%Y-%m-%dT%H:%M:%SZ"), 2)]
    now_batch = Batch.objects.get(campaign=campaign, wave_at__lt=in_two_hours)
    assert set(
        Recipient.objects.filter(batch=now_batch).values_list(
            "contact__time_zone", flat=True
        )
    ) == {"Pacific/Kiritimati"}


def _utc(day, hour: int, zone: str) -> str:
    at = datetime(day.year, day.month, day.day, hour, tzinfo=ZoneInfo(zone))
    return at.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC")


def _wall(day, hour: int, zone: str) -> str:
    at = datetime(day.year, day.month, day.day, hour, tzinfo=ZoneInfo(zone))
    return at.strftime("%Y-%m-%d %H:%M %Z")


def _table_rows(page: str, table_id: str) -> list[list[str]]:
    """The cells' texts of the rows of an HTML table, by its id."""
    import re

    table = page.split(f'id="{table_id}"', 1)[1].split("</table>", 1)[0]
    body = table.split("<tbody>", 1)[1]
    rows = []
    for row in re.findall(r"<tr>(.*?)</tr>", body, re.S):
        cells = re.findall(r"<td[^>]*>(.*?)</td>", row, re.S)
        rows.append([re.sub(r"<[^>]+>|\s+", " ", c).strip() for c in cells])
    return rows


def _launch_page(campaign) -> str:
    from django.contrib.auth import get_user_model
    from django.test import Client

    client = Client()
    client.force_login(get_user_model().objects.get(username="sandra"))
    response = client.get(
        reverse("admin:campaigns_campaign_launch", args=[campaign.pk])
    )
    assert response.status_code == 200
    return response.content.decode()


def test_an_immediate_campaign_at_22_00_local_holds_those_recipients_until_08_00(
    quiet, sinch, control, sent_batches, people, make_template, make_campaign, launch
):
    now = timezone.now()
    night, day = zone_at_hour(22, now), zone_at_hour(12, now)
    lists = [
        people("Night owls", 3, "+1415555{:04d}", night),
        people("Day people", 4, "+1415556{:04d}", day),
    ]
    campaign = make_campaign(
        make_template("Now", "Hi ${first_name}"), lists, checked=True
    )
    summary = campaign.presend["send_times"]
    assert summary["held"] == 3
    assert summary["zones"][night]["held"] == 3
    eight = datetime.combine(
        now.astimezone(ZoneInfo(night)).date() + timedelta(days=1),
        datetime.min.time().replace(hour=8),
        tzinfo=ZoneInfo(night),
    )
    assert summary["zones"][night]["held_until"] == eight.astimezone(UTC).isoformat()

    campaign = launch(campaign)
    assert campaign.status == Campaign.Status.SUBMITTED
    held = Batch.objects.get(campaign=campaign, wave_at__isnull=False)
    now_batch = Batch.objects.get(campaign=campaign, wave_at__isnull=True)
    assert (held.size, held.status, held.send_after) == (3, B.ACCEPTED, eight)
    assert (now_batch.size, now_batch.status) == (4, B.ACCEPTED)
    # What Sinch was asked: the day people now, the night owls at 08:00.
    asked = sorted(
        (len(body["recipient_and_params"]), body.get("send_after"))
        for body in sent_batches
    )
    assert asked == [
        (3, eight.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")),
        (4, None),
    ]
    night_people = Recipient.objects.filter(campaign=campaign, contact__time_zone=night)
    assert {r.batch_id for r in night_people} == {held.pk}
    # Never dropped: all seven are submitted, none excluded.
    assert Recipient.objects.filter(campaign=campaign, status=R.SUBMITTED).count() == 7
    # The campaign page and the dashboard say why and until when.
    until = eight.strftime("%Y-%m-%d %H:%M")
    for name in ("change", "dashboard"):
        page = _admin_page(campaign, name)
        assert "3 recipients held by quiet hours until their window" in page
        assert f"3 in {night} until {until}" in page


def _admin_page(campaign, name: str) -> str:
    from django.contrib.auth import get_user_model
    from django.test import Client

    client = Client()
    client.force_login(get_user_model().objects.get(username="sandra"))
    url = reverse(f"admin:campaigns_campaign_{name}", args=[campaign.pk])
    response = client.get(url)
    assert response.status_code == 200
    return response.content.decode()


def test_an_exempt_transactional_campaign_is_not_held(
    quiet, sinch, sent_batches, people, make_template, make_campaign, launch
):
    night = zone_at_hour(22, timezone.now())
    lists = [people("Night owls", 2, "+1415555{:04d}", night, purpose="TRANSACTIONAL")]
    campaign = make_campaign(
        make_template("Receipt", "Hi ${first_name}"),
        lists,
        checked=True,
        purpose="TRANSACTIONAL",
        quiet_hours_exempt=True,
    )
    assert campaign.presend["send_times"]["held"] == 0
    campaign = launch(campaign)
    assert list(
        Batch.objects.filter(campaign=campaign).values_list("wave_at", flat=True)
    ) == [None]
    assert [body.get("send_after") for body in sent_batches] == [None]


def test_a_transactional_campaign_not_exempted_is_held_too(
    quiet, people, make_template, make_campaign
):
    night = zone_at_hour(22, timezone.now())
    campaign = make_campaign(
        make_template("Receipt", "Hi ${first_name}"),
        [people("Night owls", 2, "+1415555{:04d}", night, purpose="TRANSACTIONAL")],
        checked=True,
        purpose="TRANSACTIONAL",
    )
    assert campaign.presend["send_times"]["held"] == 2


def test_only_a_transactional_campaign_may_be_exempted(make_campaign):
    campaign = make_campaign(purpose="MARKETING", quiet_hours_exempt=True)
    with pytest.raises(Exception, match="Only a transactional campaign"):
        campaign.full_clean()
    campaign.purpose = "TRANSACTIONAL"
    campaign.full_clean()


def test_setting_and_clearing_the_exemption_is_audited_with_who_and_when(
    client, sender, make_template, make_list
):
    from tests.campaigns.test_campaigns_admin import _form

    template = make_template("Receipt", "Your order ${first_name}")
    client.force_login(sender)
    add = reverse("admin:campaigns_campaign_add")
    data = _form(
        template,
        [make_list()],
        purpose="TRANSACTIONAL",
        quiet_hours_exempt="on",
        campaign_values="{}",
    )
    response = client.post(add, data)
    assert response.status_code == 302, response.context["adminform"].form.errors
    campaign = Campaign.objects.get()
    assert campaign.quiet_hours_exempt
    assert campaign.quiet_hours_exempted_by == sender
    events = AuditEvent.objects.filter(action=AuditEvent.Action.EXEMPTION)
    assert [(e.actor, e.summary) for e in events] == [
        (sender, f"Exempted campaign {campaign} from quiet hours")
    ]
    change = reverse("admin:campaigns_campaign_change", args=[campaign.pk])
    page = client.get(change).content.decode()
    assert f"Exempted by {sender}" in page

    data.pop("quiet_hours_exempt")
    response = client.post(change, data)
    assert response.status_code == 302
    assert AuditEvent.objects.filter(action=AuditEvent.Action.EXEMPTION).count() == 2
    assert (
        AuditEvent.objects.filter(action=AuditEvent.Action.EXEMPTION)
        .latest("pk")
        .summary
        == f"Ended the exemption of campaign {campaign} from quiet hours"
    )
    # A marketing campaign is refused with the reason.
    data.update(purpose="MARKETING", quiet_hours_exempt="on")
    response = client.post(change, data)
    assert response.status_code == 200
    assert "Only a transactional campaign may be exempted" in response.content.decode()
    assert AuditEvent.objects.filter(action=AuditEvent.Action.EXEMPTION).count() == 2


def test_a_marketing_campaign_flagged_exempt_is_still_held(
    quiet, people, make_template, make_campaign
):
    # The flag is refused on a marketing campaign by the form; one that got
    # it otherwise (written in the database) is still held.
    night = zone_at_hour(22, timezone.now())
    campaign = make_campaign(
        make_template("Sale", "Hi ${first_name}"),
        [people("Night owls", 2, "+1415555{:04d}", night)],
        quiet_hours_exempt=True,
        checked=True,
    )
    assert campaign.presend["send_times"]["held"] == 2


def test_a_zone_whose_local_time_passed_while_it_is_night_there_waits(
    quiet, people, make_template, make_campaign
):
    now = timezone.now()
    night = zone_at_hour(22, now)
    # 10:00-ish on the clock of UTC-12, the last zone to reach it: every
    # zone east of it saw that wall-clock time hours ago.
    campaign = make_campaign(
        make_template("Local", "Hi ${first_name}"),
        [people("Night owls", 2, "+1415555{:04d}", night)],
        checked=True,
        send_at=ingress.slot_of(now + timedelta(hours=2)),
        send_time_zone="Etc/GMT+12",
        send_in_local_time=True,
    )
    zone = campaign.presend["send_times"]["zones"][night]
    assert (zone["passed"], zone["held"]) == (2, 2)
    eight = datetime.combine(
        now.astimezone(ZoneInfo(night)).date() + timedelta(days=1),
        datetime.min.time().replace(hour=8),
        tzinfo=ZoneInfo(night),
    )
    assert zone["held_until"] == eight.astimezone(UTC).isoformat()


def test_a_freeze_of_several_send_groups_whose_worker_died_resumes_losing_nobody(
    quiet,
    sinch,
    control,
    small_batches,
    make_contact,
    make_list,
    make_template,
    make_campaign,
    sender,
    settings,
    freeze_killed_mid_way,
):
    from campaigns.dispatch import drain, freeze

    # Batches of 3; every fourth person is at night: the night batch fills
    # slower than the day ones, and is still open when later day batches are
    # sealed.
    now = timezone.now()
    day, night = zone_at_hour(12, now), zone_at_hour(22, now)
    everyone = make_list("Everyone")
    for n in range(20):
        make_contact(
            f"+1415555{n:04d}",
            consent="OPTED_IN",
            lists=[everyone],
            time_zone=night if n % 4 == 3 else day,
        )
    campaign = make_campaign(
        make_template("Now", "Hi ${first_name}"), [everyone], checked=True
    )
    settings.LAUNCH_INLINE_RECIPIENTS = 0
    launching.launch(campaign, sender)
    freeze_killed_mid_way(campaign.pk, chunk_size=5)
    drain.run_dispatcher(campaign.pk)
    assert 0 < control.state()["counters"]["recipients_accepted"] < 20
    freeze.freeze_recipients(campaign.pk, chunk_size=5)  # the task again
    drain.run_dispatcher(campaign.pk)

    recipients = Recipient.objects.filter(campaign=campaign)
    assert recipients.count() == 20
    assert recipients.filter(status=R.SUBMITTED).count() == 20
    assert control.state()["counters"]["recipients_accepted"] == 20
    # The night people are all in held batches, the day people in none.
    held = recipients.filter(batch__wave_at__isnull=False)
    assert set(held.values_list("contact__time_zone", flat=True)) == {night}
    assert held.count() == 5


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("send_in_local_time", True),
        ("fallback_time_zone", "Asia/Tokyo"),
        ("multi_zone_rule", Campaign.MultiZoneRule.EAST),
        ("quiet_hours_exempt", True),
    ],
)
def test_a_launch_approval_covers_when_each_recipient_gets_it(
    launchable_campaign, field, value
):
    # An approval is withdrawn when the fingerprint changes: switching to
    # local time, another fallback zone or multi-zone rule, or the
    # quiet-hours exemption after the approval must change it.
    from campaigns.compliance.fingerprint import fingerprint, message_definition

    campaign = launchable_campaign
    before = fingerprint(campaign)
    assert field not in message_definition(campaign)  # defaults: as before
    setattr(campaign, field, value)
    assert fingerprint(campaign) != before
