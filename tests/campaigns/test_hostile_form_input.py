"""Odd input in the admin's forms is a clear error on its field, never a 500:
dates at the end of the calendar, pseudo time zones, JSON nested without end,
NUL characters."""

import pytest
from django.core.exceptions import ValidationError
from django.urls import reverse

from campaigns.models import Campaign
from config.lib import timezones
from config.lib.key_values import KeyValueField
from config.lib.time_zone_field import validate_zone_name, zone_names
from contacts.importing.rows import RowError, RowParser
from tests.campaigns.test_campaigns_admin import _form
from tests.campaigns.test_campaigns_admin import template as template

ADD = reverse("admin:campaigns_campaign_add")


def _errors(client, data):
    response = client.post(ADD, data)
    assert response.status_code == 200
    return response.context["adminform"].form.errors


@pytest.mark.parametrize(
    ("day", "zone"),
    [("9999-12-31", "Etc/GMT+12"), ("9999-12-31", "America/New_York")],
)
def test_a_send_time_past_the_calendar_is_a_clear_error(
    client,
    marketer,
    template,
    make_list,
    day,
    zone,
):
    client.force_login(marketer)
    errors = _errors(
        client,
        _form(
            template,
            [make_list()],
            send_at_local_0=day,
            send_at_local_1="23:30",
            send_time_zone=zone,
        ),
    )
    assert list(errors) == ["send_at_local"]
    assert "out of range" in errors["send_at_local"][0]
    assert not Campaign.objects.exists()


def test_the_first_day_of_the_calendar_east_of_greenwich_is_a_clear_error():
    from datetime import UTC, datetime

    with pytest.raises(ValidationError, match="out of range"):
        timezones.send_instant(
            datetime(1, 1, 1, 0, 30), "Etc/GMT-14", now=datetime(2000, 1, 1, tzinfo=UTC)
        )


# --- one rule for time zones ------------------------------------------------


@pytest.mark.parametrize("name", ["localtime", "Factory", "posixrules"])
def test_pseudo_zones_are_no_time_zone_anywhere(
    name, client, marketer, template, make_list
):
    with pytest.raises(ValidationError, match="not a known time zone"):
        validate_zone_name(name)
    with pytest.raises(ValidationError, match="not a known time zone"):
        timezones.validate_time_zone(name)
    assert name not in zone_names()

    client.force_login(marketer)
    errors = _errors(client, _form(template, [make_list()], send_time_zone=name))
    assert list(errors) == ["send_time_zone"]

    parser = RowParser(
        ["phone", "time_zone"],
        {"phone": "identity", "time_zone": "time_zone"},
        default_channel="SMS",
        consent_from_column=False,
        declared_opt_in=False,
        default_region="DE",
    )
    with pytest.raises(RowError, match="unknown time zone"):
        parser.parse(2, ["+4915112345671", name])


@pytest.mark.parametrize("name", ["UTC", "Etc/GMT+12", "Europe/Berlin", "Etc/UTC"])
def test_real_zones_including_utc_and_fixed_offsets_are_accepted(name):
    validate_zone_name(name)
    timezones.validate_time_zone(name)
    assert name in zone_names()


def test_both_validators_give_the_same_answer_for_every_name():
    import zoneinfo

    for name in [*sorted(zoneinfo.available_timezones()), "berlin", "../etc"]:
        verdicts = []
        for validate in (validate_zone_name, timezones.validate_time_zone):
            try:
                validate(name)
                verdicts.append(True)
            except ValidationError:
                verdicts.append(False)
        assert verdicts[0] == verdicts[1], name


# --- JSON in form fields ------------------------------------------------------


@pytest.mark.parametrize(
    "text",
    ['{"a":' * 5000 + "1" + "}" * 5000, '{"a":' * 21 + "1" + "}" * 21, "[" * 100_000],
    ids=["5000 levels", "21 levels", "100000 arrays"],
)
def test_json_nested_too_deeply_in_a_key_value_field_is_a_form_error(text):
    field = KeyValueField()
    with pytest.raises(ValidationError, match=r"nested more than 20 levels|Not a JSON"):
        field.clean(text)
    rows = [("deep", "json", text)]
    with pytest.raises(ValidationError, match="Row 1 \\(deep\\): nested more than"):
        field.clean(rows)


@pytest.mark.parametrize(
    "rows",
    [
        [("na\x00me", "text", "x")],
        [("name", "text", "An\x00na")],
        [("j", "json", '"\\u0000"')],
    ],
    ids=["key", "text value", "json escape"],
)
def test_a_nul_character_in_a_key_value_field_is_a_form_error(rows):
    with pytest.raises(ValidationError, match="NUL"):
        KeyValueField().clean(rows)


def test_campaign_values_nested_too_deeply_are_an_error_on_their_field(
    client,
    marketer,
    template,
    make_list,
):
    client.force_login(marketer)
    deep = '{"offer":' + '{"a":' * 300 + "1" + "}" * 301
    errors = _errors(client, _form(template, [make_list()], campaign_values=deep))
    assert list(errors) == ["campaign_values"]
    assert "nested more than 20 levels" in " ".join(errors["campaign_values"])
