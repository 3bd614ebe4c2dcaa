"""Quiet hours: a marketing message arrives only within the recipient's local
window; outside it, it waits for the next allowed 5-minute slot
(campaigns.compliance.quiet_hours)."""

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from django.core.checks import run_checks
from django.core.exceptions import ImproperlyConfigured

from campaigns.compliance import quiet_hours
from campaigns.compliance.send_times import SendTimes
from contacts.time_zones import RecipientZone, ZoneFinder

BERLIN = ZoneInfo("Europe/Berlin")
NEW_YORK = ZoneInfo("America/New_York")


@pytest.fixture(autouse=True)
def default_window(settings):
    settings.QUIET_HOURS = "08:00-21:00"
    settings.QUIET_HOURS_OVERRIDES = ""
    settings.QUIET_HOURS_HOLIDAYS = ""
    return settings


def in_zone(name: str, country: str = "") -> RecipientZone:
    return RecipientZone((name,), "contact", "", country)


def local(text: str, zone: ZoneInfo) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=zone)


def next_in(text: str, zone: ZoneInfo, recipient=None, digits: str = "") -> str:
    """next_allowed from local time `text`, read on the same wall clock."""
    recipient = recipient or in_zone(zone.key)
    found = quiet_hours.next_allowed(local(text, zone), recipient, digits)
    return found.astimezone(zone).strftime("%Y-%m-%d %H:%M")


def test_inside_the_window_the_message_goes_at_its_time():
    assert next_in("2026-03-10 12:00", BERLIN) == "2026-03-10 12:00"


def test_before_the_window_opens_it_waits_for_08_00_the_same_day():
    assert next_in("2026-03-10 06:40", BERLIN) == "2026-03-10 08:00"


def test_after_the_window_closes_it_waits_for_08_00_the_next_day():
    assert next_in("2026-03-10 21:30", BERLIN) == "2026-03-11 08:00"


def test_a_window_that_opens_tomorrow_across_a_month_end():
    assert next_in("2026-03-31 23:55", BERLIN) == "2026-04-01 08:00"


def test_a_send_rounded_up_to_the_window_end_is_outside_it():
    # Sinch rounds 20:58 up to 21:00, the end: not sent at 21:00.
    assert next_in("2026-03-10 20:58", BERLIN) == "2026-03-11 08:00"
    # 20:53 rounds to 20:55: still inside.
    assert next_in("2026-03-10 20:53", BERLIN) == "2026-03-10 20:55"


def test_the_window_is_read_on_the_recipients_wall_clock():
    # 09:00 in New York is 06:00 in Los Angeles: held until 08:00 there.
    assert next_in("2026-03-10 09:00", NEW_YORK, in_zone("America/Los_Angeles")) == (
        "2026-03-10 11:00"
    )


@pytest.mark.parametrize(
    ("start", "zone", "expected_utc"),
    [
        # Held overnight across the change, the window opens at 08:00 of the
        # new offset. Berlin springs forward on 2026-03-29 (CET+1 -> CEST+2):
        # 08:00 is 06:00Z.
        ("2026-03-28 21:30", BERLIN, "2026-03-29 06:00"),
        # The day before, 08:00 was still 07:00Z.
        ("2026-03-27 21:30", BERLIN, "2026-03-28 07:00"),
        # Berlin falls back on 2026-10-25: 08:00 CET is 07:00Z.
        ("2026-10-24 21:30", BERLIN, "2026-10-25 07:00"),
        # New York springs forward on 2026-03-08 (EST-5 -> EDT-4): 12:00Z.
        ("2026-03-07 21:30", NEW_YORK, "2026-03-08 12:00"),
        # and falls back on 2026-11-01: 08:00 EST is 13:00Z.
        ("2026-10-31 21:30", NEW_YORK, "2026-11-01 13:00"),
    ],
    ids=["berlin-spring", "berlin-before", "berlin-fall", "ny-spring", "ny-fall"],
)
def test_daylight_saving_days_follow_the_zone_rules(start, zone, expected_utc):
    found = quiet_hours.next_allowed(local(start, zone), in_zone(zone.key))
    assert found.strftime("%Y-%m-%d %H:%M") == expected_utc
    assert found.astimezone(zone).strftime("%H:%M") == "08:00"


def test_a_window_opening_in_the_skipped_hour_opens_when_the_clocks_jump(settings):
    # 02:30 does not exist in Berlin on 2026-03-29: 02:00 CET jumps to 03:00
    # CEST (01:00Z). The window opens at the jump, not an hour late.
    settings.QUIET_HOURS = "02:30-21:00"
    found = quiet_hours.next_allowed(
        datetime(2026, 3, 28, 23, 0, tzinfo=UTC), in_zone("Europe/Berlin")
    )
    assert found == datetime(2026, 3, 29, 1, 0, tzinfo=UTC)
    assert found.astimezone(BERLIN).strftime("%H:%M") == "03:00"


def test_a_window_opening_in_the_repeated_hour_opens_at_its_first_pass(settings):
    # 02:15 happens twice in Berlin on 2026-10-25 (00:15Z CEST, 01:15Z CET).
    settings.QUIET_HOURS = "02:15-21:00"
    found = quiet_hours.next_allowed(
        datetime(2026, 10, 24, 23, 0, tzinfo=UTC), in_zone("Europe/Berlin")
    )
    assert found == datetime(2026, 10, 25, 0, 15, tzinfo=UTC)


def test_the_most_specific_override_wins(settings):
    settings.QUIET_HOURS_OVERRIDES = (
        "US=09:00-21:00,America/New_York=08:30-21:00,+1305=08:00-20:00"
    )
    miami = ZoneFinder("UTC").find("", "+13055550100")  # New York zone, +1305
    boston = ZoneFinder("UTC").find("", "+16175550100")  # New York zone
    denver = ZoneFinder("UTC").find("", "+13035550100")  # US only
    at = local("2026-03-10 20:10", NEW_YORK)
    # The prefix (a Florida area code ending at 20:00) beats zone and country.
    assert quiet_hours.next_allowed(at, miami, "13055550100").astimezone(
        NEW_YORK
    ) == local("2026-03-11 08:00", NEW_YORK)
    # The zone beats the country: open from 08:30.
    assert quiet_hours.next_allowed(
        local("2026-03-10 08:10", NEW_YORK), boston, "16175550100"
    ) == local("2026-03-10 08:30", NEW_YORK)
    # The country beats the default: open from 09:00 in Denver.
    found = quiet_hours.next_allowed(
        local("2026-03-10 08:10", ZoneInfo("America/Denver")), denver, "13035550100"
    )
    assert found == local("2026-03-10 09:00", ZoneInfo("America/Denver"))


def test_a_public_holiday_is_quiet_all_day(settings):
    settings.QUIET_HOURS_HOLIDAYS = "DE=2026-12-25;2026-12-26,US=2026-07-04"
    berlin = in_zone("Europe/Berlin", "DE")
    assert next_in("2026-12-24 22:00", BERLIN, berlin) == "2026-12-27 08:00"
    assert next_in("2026-12-25 12:00", BERLIN, berlin) == "2026-12-27 08:00"
    # Another country's holiday changes nothing.
    assert next_in("2026-12-25 12:00", BERLIN, in_zone("Europe/Berlin", "AT")) == (
        "2026-12-25 12:00"
    )


def test_several_candidate_zones_must_all_be_inside_the_window():
    both = RecipientZone(("America/New_York", "America/Los_Angeles"), "country")
    # 10:00 in New York is 07:00 in Los Angeles: wait for 08:00 there.
    assert next_in("2026-03-10 10:00", NEW_YORK, both) == "2026-03-10 11:00"
    # 19:00 in New York is 16:00 in Los Angeles: fine for both.
    assert next_in("2026-03-10 19:00", NEW_YORK, both) == "2026-03-10 19:00"
    # 21:30 in New York: closed there; tomorrow when both are open.
    assert next_in("2026-03-10 21:30", NEW_YORK, both) == "2026-03-11 11:00"


def test_candidates_with_no_common_window_use_the_main_zone(settings):
    settings.QUIET_HOURS = "09:00-12:00"
    apart = RecipientZone(("Asia/Tokyo", "America/New_York"), "country")
    found = quiet_hours.next_allowed(local("2026-03-10 06:00", NEW_YORK), apart)
    # Never both open: Tokyo (the first candidate here) decides.
    assert found.astimezone(ZoneInfo("Asia/Tokyo")).strftime("%H:%M") == "09:00"


@pytest.mark.parametrize(
    ("name", "value", "message"),
    [
        ("QUIET_HOURS", "8-21", "QUIET_HOURS: '8-21' is not of the form \"HH:MM"),
        ("QUIET_HOURS", "21:00-08:00", "must end after it starts"),
        ("QUIET_HOURS", "08:00-25:00", "does not exist"),
        (
            "QUIET_HOURS_OVERRIDES",
            "Mars/Base=08:00-20:00",
            "'Mars/Base' is neither an ISO country code",
        ),
        ("QUIET_HOURS_OVERRIDES", "US:08:00-20:00", "write KEY=HH:MM-HH:MM"),
        ("QUIET_HOURS_HOLIDAYS", "US=2026-13-01", "'2026-13-01' is not a date"),
        ("QUIET_HOURS_HOLIDAYS", "usa=2026-12-25", "ISO country code"),
    ],
)
def test_a_bad_setting_is_refused_naming_the_entry(settings, name, value, message):
    setattr(settings, name, value)
    with pytest.raises(ImproperlyConfigured, match=message.replace("(", r"\(")):
        quiet_hours.policy()
    errors = [e for e in run_checks() if e.id == "campaigns.E002"]
    assert len(errors) == 1
    assert value.split("=")[0] in errors[0].msg


def test_an_unknown_default_recipient_zone_is_reported(settings):
    settings.DEFAULT_RECIPIENT_TIME_ZONE = "Europe/Atlantis"
    errors = [e for e in run_checks() if e.id == "campaigns.E003"]
    assert "'Europe/Atlantis' is not a known time zone" in errors[0].msg


def test_a_wave_pushed_out_by_sinchs_queue_never_lands_in_quiet_hours(
    small_batches,
):
    # Batches of 3; Sinch's queue takes 4 messages and drains 3 per 10
    # minutes: 9 recipients from 20:40 go in waves at 20:40 and 20:50; the
    # third would be at 21:00, the window's end: it waits for 08:00.
    from campaigns.dispatch import ingress

    start = local("2026-03-10 20:40", BERLIN)
    queue = ingress.Queue(start - timedelta(hours=1), rate=0.005, limit=4)
    rules = quiet_hours.rules_for(in_zone("Europe/Berlin"))
    plan = ingress.plan_waves(9, start, queue, rules=rules, group="g")
    assert [
        (w.at.astimezone(BERLIN).strftime("%d %H:%M"), w.recipients) for w in plan.waves
    ] == [("10 20:40", 3), ("10 20:50", 3), ("11 08:00", 3)]
    assert {w.group for w in plan.waves} == {"g"}


def test_country_rules_reach_numbers_of_a_calling_code_several_countries_share(
    settings, make_campaign
):
    # +1 (US, Canada, ...) and +44 (GB, Jersey, ...) tell the country only
    # from a whole number: a US holiday and a GB window still apply.
    settings.QUIET_HOURS_HOLIDAYS = "US=2026-07-04"
    settings.QUIET_HOURS_OVERRIDES = "GB=11:00-21:00"
    campaign = make_campaign(send_at=datetime(2026, 7, 4, 14, 0, tzinfo=UTC))
    times = SendTimes(campaign, now=datetime(2026, 7, 1, tzinfo=UTC))

    new_york = times.of("", "+12125550101")
    assert new_york.held
    assert new_york.at.astimezone(NEW_YORK) == local("2026-07-05 08:00", NEW_YORK)
    london = times.of("", "+442079460101")  # 15:00 in London: inside 11-21
    assert not london.held
    assert london.at == datetime(2026, 7, 4, 14, 0, tzinfo=UTC)
    early = make_campaign(send_at=datetime(2026, 7, 3, 9, 0, tzinfo=UTC))
    london = SendTimes(early, now=datetime(2026, 7, 1, tzinfo=UTC)).of(
        "", "+442079460101"
    )  # 10:00 in London: its window opens at 11:00
    assert london.held
    assert london.at == datetime(2026, 7, 3, 10, 0, tzinfo=UTC)
