"""A recipient's time zone: the contact's, else inferred from the number,
else the campaign's fallback zone (contacts.time_zones)."""

from datetime import UTC, datetime

import pytest
from django.urls import reverse

from campaigns.compliance import send_times
from campaigns.models import Campaign
from contacts import time_zones as zones
from contacts.time_zones import ZoneFinder

Rule = Campaign.MultiZoneRule


def test_the_contacts_own_zone_comes_first():
    found = ZoneFinder("UTC").find("Europe/Paris", "+13125550100")
    assert found.zones == ("Europe/Paris",)
    assert found.source == zones.CONTACT
    assert str(found) == "Europe/Paris — the contact's time zone"
    # The number still tells the country (for country rules and holidays).
    assert found.country == "US"


def test_a_chicago_area_code_gives_chicago():
    found = ZoneFinder("UTC").find("", "+13125550100")
    assert found.zones == ("America/Chicago",)
    assert found.source == zones.AREA_CODE
    assert str(found) == "America/Chicago — inferred from area code +1 312"


def test_a_country_with_one_zone_gives_that_zone():
    found = ZoneFinder("UTC").find("", "+4915112345678")
    assert (found.zones, found.source, found.country) == (
        ("Europe/Berlin",),
        zones.COUNTRY,
        "DE",
    )
    assert str(found) == "Europe/Berlin — inferred from country code +49"


def test_a_number_of_a_country_spanning_zones_has_every_candidate():
    # A toll-free number tells only the country: +1 covers many zones.
    found = ZoneFinder("UTC").find("", "+18005550100")
    assert found.source == zones.COUNTRY
    assert {"America/New_York", "America/Los_Angeles", "Pacific/Honolulu"} <= set(
        found.zones
    )
    assert "42 possible zones" in found.source_text


def test_an_invalid_contact_zone_falls_back_to_the_number():
    found = ZoneFinder("UTC").find("Mars/Olympus_Mons", "+13125550100")
    assert (found.zones, found.source) == (("America/Chicago",), zones.AREA_CODE)


@pytest.mark.parametrize(
    "identity",
    ["+99912345", "", None, "psid-1234567890"],
    ids=["unassigned calling code", "empty", "none", "not a number"],
)
def test_an_unknown_number_gets_the_fallback_zone(identity):
    found = ZoneFinder("Asia/Tokyo").find("", identity)
    assert (found.zones, found.source) == (("Asia/Tokyo",), zones.FALLBACK)
    assert str(found) == "Asia/Tokyo — fallback zone"


def test_the_data_s_unknown_answer_counts_as_no_zone(monkeypatch):
    # phonenumbers answers Etc/Unknown for prefixes it cannot place.
    monkeypatch.setitem(zones.TIMEZONE_DATA, "999", ("Etc/Unknown",))
    found = ZoneFinder("Asia/Tokyo").find("", "+99912345")
    assert (found.zones, found.source) == (("Asia/Tokyo",), zones.FALLBACK)


@pytest.mark.parametrize(
    ("rule", "expected"),
    [
        (Rule.WEST, "Pacific/Pago_Pago"),
        (Rule.EAST, "Pacific/Guam"),
        (Rule.FALLBACK, "Europe/Lisbon"),
    ],
)
def test_a_multi_zone_number_uses_the_campaigns_rule(make_campaign, rule, expected):
    campaign = make_campaign(
        send_at=datetime(2030, 1, 15, 15, 0, tzinfo=UTC),
        send_time_zone="America/New_York",
        fallback_time_zone="Europe/Lisbon",
        multi_zone_rule=rule,
    )
    found = send_times.SendTimes(campaign).of("", "+18005550100")
    assert found.zone == expected
    assert len(found.recipient.zones) > 1


def test_the_fallback_zone_defaults_to_the_setting_then_the_send_time_zone(
    make_campaign, settings
):
    campaign = make_campaign(send_time_zone="America/Denver")
    settings.DEFAULT_RECIPIENT_TIME_ZONE = ""
    assert send_times.fallback_zone(campaign) == "America/Denver"
    settings.DEFAULT_RECIPIENT_TIME_ZONE = "Europe/Madrid"
    assert send_times.fallback_zone(campaign) == "Europe/Madrid"
    campaign.fallback_time_zone = "Asia/Seoul"
    assert send_times.fallback_zone(campaign) == "Asia/Seoul"
    campaign.send_time_zone = campaign.fallback_time_zone = ""
    settings.DEFAULT_RECIPIENT_TIME_ZONE = ""
    assert send_times.fallback_zone(campaign) == "UTC"


def test_an_unknown_fallback_zone_is_refused_on_the_campaign(make_campaign):
    campaign = make_campaign(fallback_time_zone="Atlantis/Capital")
    with pytest.raises(Exception, match="not a known time zone"):
        campaign.full_clean()


def test_numbers_are_not_parsed_one_by_one(monkeypatch):
    """A million recipients pass through here: the answers are cached on
    number prefixes, and a number is parsed only to tell the country of a
    calling code several countries share, once per prefix."""
    calls = []
    real_parse = zones.phonenumbers.parse

    def parse(*args, **kwargs):
        calls.append(args)
        return real_parse(*args, **kwargs)

    monkeypatch.setattr(zones.phonenumbers, "parse", parse)
    finder = ZoneFinder("UTC")
    for n in range(5000):
        assert finder.find("", f"+1312555{n:04d}").zones == ("America/Chicago",)
        assert finder.find("", f"+49151{n:08d}").zones == ("Europe/Berlin",)
    assert len(calls) == 1  # +1 312: US, once for the area code


def test_numbers_of_one_area_code_share_one_send_time_computation(
    make_campaign, settings, monkeypatch
):
    """The answer depends on the digits the zone data, the country and the
    quiet-hours prefixes read: +1 312 numbers share one, unless an override
    names a longer prefix, which then decides for its numbers."""
    settings.QUIET_HOURS = "08:00-21:00"
    settings.QUIET_HOURS_OVERRIDES = "+131255501=09:00-20:00"
    computed = []
    real = send_times.SendTimes._compute

    def compute(self, *args):
        computed.append(args)
        return real(self, *args)

    monkeypatch.setattr(send_times.SendTimes, "_compute", compute)
    now = datetime(2026, 6, 1, 12, tzinfo=UTC)
    numbers = range(5550000, 5560000, 7)  # +1 312 555 0000 to 555 9999
    settings.QUIET_HOURS_OVERRIDES = ""
    times = send_times.SendTimes(make_campaign(), now)
    plain = {times.of("", f"+1312{n:07d}") for n in numbers}
    assert (len(computed), len(plain)) == (1, 1)  # the area code decides

    computed.clear()
    settings.QUIET_HOURS_OVERRIDES = "+131255501=09:00-20:00"
    times = send_times.SendTimes(make_campaign(), now)
    found = {n: times.of("", f"+1312{n:07d}") for n in numbers}
    # Up to the override's nine digits: 555 00 .. 555 09, then 5551 .. 5559.
    assert len(computed) == 19
    inside = {found[n].rules for n in numbers if 5550100 <= n < 5550200}
    outside = {found[n].rules for n in numbers if not 5550100 <= n < 5550200}
    assert len(inside) == len(outside) == 1
    assert inside != outside


def test_the_contact_page_shows_the_zone_and_where_it_came_from(
    client, compliance_admin, make_contact
):
    contact = make_contact("+13125550100")
    client.force_login(compliance_admin)
    url = reverse("admin:contacts_contact_change", args=[contact.pk])
    page = client.get(url).content.decode()
    assert "America/Chicago — inferred from area code +1 312" in page
    contact.time_zone = "Europe/Paris"
    contact.save()
    page = client.get(url).content.decode()
    assert "Europe/Paris — the contact&#x27;s time zone" in page
