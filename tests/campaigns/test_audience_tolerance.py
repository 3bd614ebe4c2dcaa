"""The check still describes what is launched: a launch whose audience moved
beyond LAUNCH_AUDIENCE_TOLERANCE since the pre-send check is refused
(campaigns.compliance.drift)."""

import re
from decimal import Decimal

import pytest

from campaigns.authoring import presend
from campaigns.dispatch import launching
from campaigns.models import Campaign
from config.lib.tolerance import Tolerance, parse_tolerance


@pytest.fixture
def campaign(settings, launchable_campaign):
    """8 audience members at the check (7 opted in, Olga opted out)."""
    settings.APPROVAL_MIN_RECIPIENTS = 0
    settings.APPROVAL_MIN_COST = None
    settings.LAUNCH_AUDIENCE_TOLERANCE = "10%,3"  # 3 people on 8
    assert launchable_campaign.presend["audience"] == 8
    return launchable_campaign


def add_people(campaign, make_contact, n):
    for _ in range(n):
        make_contact(consent="OPTED_IN", lists=[campaign.lists.get()])


def test_a_launch_is_refused_when_the_audience_grew_beyond_the_tolerance(
    campaign, make_contact, sender
):
    add_people(campaign, make_contact, 4)

    assert launching.launch_problems(campaign) == [
        "The audience changed from 8 to 12 people since the pre-send check "
        "(more than 10 % or 3 people, whichever is larger): run it again."
    ]
    with pytest.raises(launching.LaunchError, match="from 8 to 12 people"):
        launching.launch(campaign, sender)
    campaign.refresh_from_db()
    assert campaign.status == Campaign.Status.DRAFT


def test_a_launch_is_refused_when_the_audience_shrank_beyond_the_tolerance(
    campaign, sender
):
    members = campaign.lists.get().memberships.order_by("pk")
    members.filter(pk__in=list(members.values_list("pk", flat=True)[:4])).delete()

    assert launching.launch_problems(campaign) == [
        "The audience changed from 8 to 4 people since the pre-send check "
        "(more than 10 % or 3 people, whichever is larger): run it again."
    ]


def test_a_change_within_the_tolerance_launches(
    campaign, make_contact, launched_campaign
):
    add_people(campaign, make_contact, 3)

    assert launching.launch_problems(campaign) == []
    assert launched_campaign(campaign, dispatch=False).status != "DRAFT"


def test_running_the_check_again_lets_the_launch_go(campaign, make_contact):
    add_people(campaign, make_contact, 4)
    presend.run_presend_check(campaign)
    campaign.refresh_from_db()

    assert launching.launch_problems(campaign) == []


def test_the_default_tolerance_is_5_percent_or_100_people_whichever_is_larger(
    settings,
):
    default = parse_tolerance("5%,100")
    assert default == Tolerance(percent=Decimal(5), people=100)
    assert default.allowed(7) == 100  # 7 -> 32 passes
    assert not default.exceeded(7, 32)
    assert default.allowed(10_000) == 500
    assert default.exceeded(10_000, 10_501)
    assert not default.exceeded(10_000, 9_500)
    assert str(default) == "5 % or 100 people, whichever is larger"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("5%", Tolerance(Decimal(5), 0)),
        ("100", Tolerance(Decimal(0), 100)),
        (" 2.5% , 10 ", Tolerance(Decimal("2.5"), 10)),
        ("0", Tolerance(Decimal(0), 0)),
    ],
)
def test_a_tolerance_is_a_percentage_a_number_of_people_or_both(text, expected):
    assert parse_tolerance(text) == expected


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("five", "'five' is neither a percentage (5%) nor a number of people"),
        ("", "'' is neither a percentage"),
        ("-3", "'-3' is neither a percentage"),
        ("150%", "'150%' is not a percentage from 0% to 100%"),
        ("x%", "'x%' is not a percentage from 0% to 100%"),
        ("5%,6%", "two percentages"),
        ("5,6", "two numbers of people"),
    ],
)
def test_a_bad_tolerance_is_refused_with_what_is_wrong(text, message):
    with pytest.raises(ValueError, match="^" + re.escape(message)):
        parse_tolerance(text)
