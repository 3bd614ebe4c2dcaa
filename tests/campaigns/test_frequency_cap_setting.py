"""FREQUENCY_CAP is read at start-up; a rule that cannot be read is named."""

import subprocess
import sys
from datetime import timedelta
from pathlib import Path

import pytest

from campaigns.compliance.cap_rules import CapRuleError, parse_cap

ROOT = Path(__file__).resolve().parent.parent.parent


def test_the_default_is_two_a_week_and_one_a_day():
    week, day = parse_cap("2/7d,1/1d")
    assert (week.limit, week.length, week.label) == (
        2,
        timedelta(days=7),
        "frequency cap: 2 marketing messages in 7 days",
    )
    assert (day.limit, day.length, day.label) == (
        1,
        timedelta(days=1),
        "frequency cap: 1 marketing message in 1 day",
    )


def test_rules_may_be_spaced_and_in_hours_and_empty_means_no_cap():
    (rule,) = parse_cap(" 3 / 36H ")
    assert (rule.limit, rule.length, rule.text) == (3, timedelta(hours=36), "3/36h")
    assert parse_cap("") == []
    assert parse_cap("   ") == []


@pytest.mark.parametrize(
    ("value", "named"),
    [
        ("2/7x", "'2/7x' is not a rule"),
        ("two/7d", "'two/7d' is not a rule"),
        ("2 per 7d", "'2 per 7d' is not a rule"),
        ("2/7d,1/1", "'1/1' is not a rule"),
        ("0/7d", "'0/7d': the count and the length must be at least 1"),
        ("2/0d", "'2/0d': the count and the length must be at least 1"),
        ("2/7d,,1/1d", "has an empty rule"),
        ("2/7d,3/168h", "'2/7d' and '3/168h' cap the same period"),
    ],
)
def test_a_bad_rule_is_refused_by_name(value, named):
    with pytest.raises(CapRuleError) as refused:
        parse_cap(value)
    assert named in str(refused.value)
    assert str(refused.value).startswith("FREQUENCY_CAP: ")


def test_the_application_does_not_start_with_a_bad_cap():
    result = subprocess.run(
        [sys.executable, "-c", "import config.settings"],
        cwd=ROOT,
        env={"DEBUG": "true", "FREQUENCY_CAP": "2/7days", "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode != 0
    assert "ImproperlyConfigured: FREQUENCY_CAP: '2/7days' is not a rule" in (
        result.stderr
    )
