"""Cost and delivery-time estimates of the pre-send check."""

import json
import os
import subprocess
import sys
from decimal import Decimal
from pathlib import Path

import pytest
from django.core.exceptions import ImproperlyConfigured

from campaigns.authoring import estimates

ROOT = Path(__file__).resolve().parents[2]
PRICES = {"default": 0.0075, "US": 0.0079, "DE": 0.0859}

# --- country of a number -------------------------------------------------------


@pytest.mark.parametrize(
    ("number", "region"),
    [
        ("+4915112345678", "DE"),
        ("+33612345678", "FR"),
        ("+12025550123", "US"),
        ("+14165550123", "CA"),
        ("+447700900123", "GB"),
        ("+447797123456", "JE"),
        ("+74951234567", "RU"),
        ("+77012345678", "KZ"),
        ("4915112345678", "DE"),
    ],
)
def test_the_country_of_a_number_comes_from_its_calling_code(number, region):
    assert estimates.region_of(number) == region
    assert estimates.region_of(number) == region  # the cached answer agrees


@pytest.mark.parametrize("number", ["+80012345678", "+999123", "", "+49abc", "+1abc"])
def test_non_geographic_or_malformed_numbers_have_no_country(number):
    assert estimates.region_of(number) is None


# --- cost ---------------------------------------------------------------------


def test_cost_uses_each_country_price_and_the_default_for_the_rest():
    cost = estimates.estimate_cost(
        {"US": 1000, "DE": 10, "FR": 3, None: 5}, PRICES, "EUR"
    )
    assert cost.total == Decimal("7.9") + Decimal("0.859") + Decimal("0.0600")
    assert cost.segments == 1018
    by_region = {line.region: line for line in cost.lines}
    assert by_region["DE"].unit_price == Decimal("0.0859")
    assert by_region["DE"].default_price is False
    assert by_region["FR"].unit_price == Decimal("0.0075")
    assert by_region["FR"].default_price is True
    assert by_region[None].default_price is True
    assert [line.region for line in cost.lines] == ["US", "DE", None, "FR"]


def test_cost_is_exact_for_a_million_segments():
    cost = estimates.estimate_cost({"US": 1_000_000}, {"default": 0.0075}, "EUR")
    assert cost.total == Decimal("7500")
    assert cost.text == "about EUR 7,500.00 for 1,000,000 SMS segments"


def test_lower_case_country_codes_in_the_price_table_still_match():
    cost = estimates.estimate_cost({"DE": 1}, {"default": 0, "de": 0.5}, "EUR")
    assert cost.total == Decimal("0.5")


def test_cost_defaults_to_the_price_table_and_currency_in_settings(settings):
    settings.SMS_PRICES = {"default": 0.01, "DE": 0.1}
    settings.SMS_PRICE_CURRENCY = "USD"
    cost = estimates.estimate_cost({"DE": 2, "FR": 3})
    assert cost.total == Decimal("0.23")
    assert cost.currency == "USD"


@pytest.mark.parametrize(
    "prices",
    [
        {"US": 0.0079},
        {"default": -1},
        {"default": "cheap"},
        {"default": True},
        {"default": None},
        [0.0075],
    ],
)
def test_a_price_table_without_default_or_with_a_bad_price_is_refused(prices):
    with pytest.raises(ImproperlyConfigured):
        estimates.estimate_cost({"US": 1}, prices, "EUR")


def test_the_price_table_and_drain_rate_are_read_from_the_environment():
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SINCH_", "SMS_"))}
    env.update(
        DEBUG="true",
        SMS_PRICES=json.dumps(PRICES),
        SMS_PRICE_CURRENCY="USD",
        SINCH_DRAIN_RATE_PER_S="50",
    )
    dump = (
        "import json, config.settings as s; print(json.dumps([s.SMS_PRICES, "
        "s.SMS_PRICE_CURRENCY, s.SINCH_DRAIN_RATE_PER_S]))"
    )
    result = subprocess.run(
        [sys.executable, "-c", dump],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    assert json.loads(result.stdout) == [PRICES, "USD", 50.0]


# --- delivery time -----------------------------------------------------------------


def test_a_million_messages_at_20_per_second_take_about_13_9_hours():
    assert (
        estimates.delivery_time_text(1_000_000, 20)
        == "about 13.9 hours for 1,000,000 messages"
    )


def test_the_drain_rate_defaults_to_the_setting(settings):
    settings.SINCH_DRAIN_RATE_PER_S = 20
    assert estimates.delivery_seconds(1_000_000) == 50_000
    settings.SINCH_DRAIN_RATE_PER_S = 100
    assert estimates.delivery_time_text(1_000_000) == (
        "about 2.8 hours for 1,000,000 messages"
    )


@pytest.mark.parametrize(
    ("messages", "text"),
    [
        (0, "no messages to deliver"),
        (1, "less than a second for 1 message"),
        (20, "about 1 second for 20 messages"),
        (100, "about 5 seconds for 100 messages"),
        (1_000, "about 50 seconds for 1,000 messages"),
        (20_000, "about 16.7 minutes for 20,000 messages"),
        (72_000, "about 60 minutes for 72,000 messages"),
        (144_000, "about 2 hours for 144,000 messages"),
        (10_000_000, "about 5.8 days for 10,000,000 messages"),
    ],
)
def test_small_and_large_audiences_get_seconds_minutes_hours_or_days(messages, text):
    assert estimates.delivery_time_text(messages, 20) == text


def test_a_drain_rate_that_is_not_positive_is_refused():
    with pytest.raises(ValueError, match="positive"):
        estimates.delivery_seconds(10, 0)
