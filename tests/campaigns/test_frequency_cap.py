"""The frequency cap: nobody gets more marketing messages than FREQUENCY_CAP allows.

Default "2/7d,1/1d": at most 2 marketing messages per person in any rolling 7
days and 1 in any rolling day, counted from the messages Sinch accepted for
other marketing campaigns. People over it are excluded with the rule as the
reason, in the preview, the pre-send check and again at the launch.
"""

from datetime import datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest
from django.utils import timezone

from campaigns.authoring import audience, presend
from campaigns.compliance import frequency
from campaigns.models import Recipient
from contacts.models import Contact
from contacts.services.consent import Evidence, record_consent

WEEK_RULE = "frequency cap: 2 marketing messages in 7 days"
DAY_RULE = "frequency cap: 1 marketing message in 1 day"
R = Recipient.Status


@pytest.fixture
def send_time():
    """The campaign's send time: three days from now, on the minute."""
    return (timezone.now() + timedelta(days=3)).replace(second=0, microsecond=0)


@pytest.fixture
def customers(make_audience):
    return make_audience(
        "Customers",
        {"+14155550100": "Ann", "+14155550101": "Ben", "+14155550102": "Cleo"},
    )


@pytest.fixture
def spring(make_template, make_campaign, customers, send_time):
    """A marketing campaign to Ann, Ben and Cleo, scheduled at `send_time`."""
    template = make_template("Spring", "Hi ${first_name}, spring sale!")
    return make_campaign(template, [customers], "Spring sale", send_at=send_time)


def person(name: str) -> Contact:
    return Contact.objects.get(first_name=name)


def reasons(campaign) -> dict[str, str]:
    """Each member's reason at the pre-send check ("" when they get it)."""
    checker = audience.MemberChecker(campaign)
    return {
        Contact.objects.get(pk=row[0]).first_name: row[3]
        for rows in audience.member_rows(campaign, audience.CHUNK_SIZE)
        for row in [checker.check(r) for r in rows]
    }


def test_a_person_with_two_marketing_messages_this_week_is_left_out_of_a_third(
    spring, send_time, message_sent
):
    ann = person("Ann")
    message_sent(ann, send_time - timedelta(days=5))
    message_sent(ann, send_time - timedelta(days=2))
    message_sent(person("Ben"), send_time - timedelta(days=2))

    result = presend.run_presend_check(spring)

    assert result.ok == 2
    assert result.excluded == 1
    problem = result.problems["frequency_cap:2/7d"]
    assert (problem.kind, problem.label, problem.count) == ("EXCLUDED", WEEK_RULE, 1)
    assert [e["name"] for e in problem.examples] == ["Ann"]
    spring.refresh_from_db()
    assert spring.presend["frequency_cap"]["excluded"] == 1
    assert spring.presend["excluded_by_reason"] == {WEEK_RULE: 1}
    rows = presend.csv_path(spring).read_text().splitlines()
    assert any(row.endswith(f"EXCLUDED,{WEEK_RULE},,,") for row in rows)


def test_the_launch_applies_the_cap_again_to_messages_sent_after_the_check(
    make_launchable, launched_campaign, message_sent
):
    campaign = make_launchable()  # checked now: nobody over the cap yet
    assert campaign.presend["excluded_by_reason"] == {"opted out": 1}
    ann = Contact.objects.get(identities__identity="+14155550000")
    now = timezone.now()
    message_sent(ann, now - timedelta(days=3))
    message_sent(ann, now - timedelta(days=4))

    campaign = launched_campaign(campaign, dispatch=False)

    row = Recipient.objects.get(campaign=campaign, contact=ann)
    assert (row.status, row.reason, row.batch_id) == (R.EXCLUDED, WEEK_RULE, None)
    others = Recipient.objects.filter(campaign=campaign, status=R.PENDING)
    assert others.count() == 6
    assert frequency.excluded_count(campaign) == 1


def test_the_preview_marks_who_is_over_the_cap(spring, send_time, message_sent):
    message_sent(person("Cleo"), send_time - timedelta(hours=3))
    statuses = audience.member_statuses(spring, [person("Cleo").pk, person("Ann").pk])
    assert statuses[person("Cleo").pk] == ("EXCLUDED", DAY_RULE)
    assert statuses[person("Ann").pk] == ("OK", "")


@pytest.mark.parametrize(
    ("earlier", "capped"),
    [
        (timedelta(days=7), False),  # exactly a week before: a new window
        (timedelta(days=7, minutes=1), False),
        (timedelta(days=7) - timedelta(minutes=1), True),  # still within it
    ],
)
def test_the_week_is_rolling_and_ends_exactly_seven_days_before(
    spring, send_time, message_sent, earlier, capped
):
    ann = person("Ann")
    message_sent(ann, send_time - timedelta(days=3))
    message_sent(ann, send_time - earlier)
    assert reasons(spring)["Ann"] == (WEEK_RULE if capped else "")


def test_one_message_under_the_cap_is_sent_and_at_the_cap_it_is_not(
    spring, send_time, message_sent
):
    message_sent(person("Ann"), send_time - timedelta(days=4))  # one under
    for _ in range(2):  # at the cap
        message_sent(person("Ben"), send_time - timedelta(days=4))
    found = reasons(spring)
    assert found == {"Ann": "", "Ben": WEEK_RULE, "Cleo": ""}


@pytest.mark.parametrize(
    ("offset", "capped"),
    [
        (-timedelta(hours=23, minutes=59), True),
        (-timedelta(days=1), False),  # the same time yesterday: a new day
        (timedelta(hours=12), True),  # scheduled for later the same day
        (timedelta(days=1), False),
    ],
)
def test_at_most_one_marketing_message_in_any_day(
    spring, send_time, message_sent, offset, capped
):
    message_sent(person("Ann"), send_time + offset, scheduled=offset > timedelta(0))
    assert reasons(spring)["Ann"] == (DAY_RULE if capped else "")


def test_a_message_scheduled_after_the_send_time_counts(
    spring, send_time, message_sent
):
    ann = person("Ann")
    message_sent(ann, send_time - timedelta(days=2))
    # Accepted by Sinch a day before it goes, two days after this campaign.
    message_sent(ann, send_time + timedelta(days=2), scheduled=True)
    assert reasons(spring)["Ann"] == WEEK_RULE


def test_only_a_window_that_holds_the_send_time_matters(
    spring, send_time, message_sent
):
    """Five days before and five days after: ten days apart, so no week
    around the send time holds both."""
    ann = person("Ann")
    message_sent(ann, send_time - timedelta(days=5))
    message_sent(ann, send_time + timedelta(days=5), scheduled=True)
    assert reasons(spring)["Ann"] == ""
    message_sent(ann, send_time + timedelta(days=1, hours=1), scheduled=True)
    assert reasons(spring)["Ann"] == WEEK_RULE


@pytest.mark.parametrize(
    "never_sent",
    [
        {"status": R.EXCLUDED},
        {"status": R.PENDING},
        {"status": R.CANCELLED},
        {"status": R.FAILED, "accepted": False},  # the batch was refused
        {"status": R.FAILED, "accepted": False, "scheduled": True},
        {"is_test": True},
    ],
    ids=["excluded", "pending", "cancelled", "refused", "refused-timed", "test"],
)
def test_a_message_that_never_went_out_does_not_count(
    spring, send_time, message_sent, never_sent
):
    ann = person("Ann")
    message_sent(ann, send_time - timedelta(days=3))
    message_sent(ann, send_time - timedelta(days=4), **never_sent)
    assert reasons(spring)["Ann"] == ""


def test_a_message_that_failed_on_the_handset_counts(spring, send_time, message_sent):
    ann = person("Ann")
    message_sent(ann, send_time - timedelta(days=3))
    message_sent(ann, send_time - timedelta(days=4), status=R.FAILED)
    assert reasons(spring)["Ann"] == WEEK_RULE


def test_transactional_campaigns_are_neither_capped_nor_counted(
    spring, send_time, message_sent
):
    ann, ben = person("Ann"), person("Ben")
    for days in (2, 3):
        message_sent(ann, send_time - timedelta(days=days))
        message_sent(ben, send_time - timedelta(days=days), purpose="TRANSACTIONAL")
    assert reasons(spring) == {"Ann": WEEK_RULE, "Ben": "", "Cleo": ""}
    for contact in (ann, ben, person("Cleo")):
        record_consent(
            identity=contact.identities.get(),
            kind="OPT_IN",
            purpose="TRANSACTIONAL",
            source="FORM",
            evidence=Evidence(wording="Order updates"),
        )
    spring.purpose = "TRANSACTIONAL"
    spring.save()
    assert reasons(spring) == {"Ann": "", "Ben": "", "Cleo": ""}


def test_a_retry_is_not_capped_by_the_campaign_it_retries(
    spring, send_time, message_sent, make_campaign
):
    ann = person("Ann")
    first = message_sent(ann, send_time - timedelta(hours=2), status=R.FAILED)
    retry = make_campaign(
        spring.template,
        list(spring.lists.all()),
        send_at=send_time,
        parent=first.campaign,
    )
    assert reasons(retry)["Ann"] == ""
    assert reasons(spring)["Ann"] == DAY_RULE


def test_the_rules_come_from_the_setting_and_an_empty_one_turns_the_cap_off(
    spring, send_time, message_sent, settings
):
    message_sent(person("Ann"), send_time - timedelta(hours=10))
    settings.FREQUENCY_CAP = "1/12h"
    assert reasons(spring)["Ann"] == "frequency cap: 1 marketing message in 12 hours"
    settings.FREQUENCY_CAP = "3/7d"
    assert reasons(spring)["Ann"] == ""
    settings.FREQUENCY_CAP = ""
    message_sent(person("Ann"), send_time - timedelta(hours=1))
    message_sent(person("Ann"), send_time - timedelta(hours=2))
    assert reasons(spring)["Ann"] == ""
    assert presend.run_presend_check(spring).ok == 3
    spring.refresh_from_db()
    assert spring.presend["frequency_cap"]["state"] == "off (FREQUENCY_CAP is empty)"


def test_an_immediate_campaign_is_checked_at_the_time_it_goes(spring, message_sent):
    spring.send_at = None
    spring.save()
    message_sent(person("Ann"), timezone.now() - timedelta(hours=20))
    message_sent(person("Ben"), timezone.now() - timedelta(hours=25))
    assert reasons(spring) == {"Ann": DAY_RULE, "Ben": "", "Cleo": ""}


def ten_local(zone: str) -> datetime:
    """10:00 in `zone`, three days from now (Berlin's date)."""
    day = (timezone.now() + timedelta(days=3)).astimezone(ZoneInfo("Europe/Berlin"))
    return datetime.combine(day.date(), time(10), tzinfo=ZoneInfo(zone))


def at_ten_everywhere(make_campaign, make_template, people):
    """A campaign to `people` at 10:00 in each one's local time."""
    return make_campaign(
        make_template("Local", "Hi ${first_name}!"),
        [people],
        "At ten everywhere",
        send_at=ten_local("Europe/Berlin"),
        send_time_zone="Europe/Berlin",
        send_in_local_time=True,
    )


def test_the_cap_reads_each_chunk_of_members_with_one_query(
    spring, send_time, message_sent, customers, make_contact, django_assert_num_queries
):
    for n in range(30):
        someone = make_contact(
            f"+1415556{n:04d}", consent="OPTED_IN", lists=[customers]
        )
        message_sent(someone, send_time - timedelta(hours=1))
    cap = frequency.cap_for(spring)
    ids = list(customers.memberships.values_list("contact_id", flat=True))
    with django_assert_num_queries(1):
        over = cap.over(ids)
    assert len(over) == 30
    # Whoever is over the cap, the walk costs one more query per chunk (and,
    # once each, one to see whether the audience has segments and one to read
    # the campaign's A/B variants).
    with django_assert_num_queries(5 + 4 * 3):
        result = presend.run_presend_check(spring, chunk_size=12)
    assert (result.ok, result.excluded) == (3, 30)


def test_a_local_time_send_is_capped_around_the_time_it_reaches_each_person(
    make_audience, make_template, make_campaign, message_sent
):
    """10:00 local reaches Tokyo 8 hours before Berlin and New York 6 hours
    after: the rolling day is checked around each person's own 10:00."""
    people = make_audience("World", {"+819012345678": "Aiko", "+12125550100": "Nora"})
    campaign = at_ten_everywhere(make_campaign, make_template, people)
    # 22 hours before Aiko's 10:00, 30 hours before Berlin's.
    message_sent(person("Aiko"), ten_local("Asia/Tokyo") - timedelta(hours=22))
    # 25 hours before Nora's 10:00, 19 hours before Berlin's.
    message_sent(person("Nora"), ten_local("America/New_York") - timedelta(hours=25))

    assert reasons(campaign) == {"Aiko": DAY_RULE, "Nora": ""}


def test_one_earlier_message_caps_whoever_it_reached_within_a_day_of_their_own_time(
    make_audience, make_template, make_campaign, message_sent
):
    """The same earlier message (one batch, one time) is 22 hours before
    Aiko's 10:00 in Tokyo and 36 hours before Nora's in New York: only Aiko
    is over the daily rule, though the two answers are worked out from the
    same messages' times."""
    people = make_audience(
        "World",
        {"+819012345678": "Aiko", "+12125550100": "Nora", "+819012345679": "Kenji"},
    )
    campaign = at_ten_everywhere(make_campaign, make_template, people)
    earlier = ten_local("Asia/Tokyo") - timedelta(hours=22)
    for name in ("Aiko", "Nora", "Kenji"):
        message_sent(person(name), earlier)

    assert reasons(campaign) == {"Aiko": DAY_RULE, "Nora": "", "Kenji": DAY_RULE}


def test_the_cap_finds_the_same_people_in_a_range_of_contacts_as_in_a_list(
    spring, send_time, message_sent, customers, make_contact
):
    # A walk reads a range of contact ids, the preview a list of a few: the
    # same messages count either way (delivered ones and failed ones; not a
    # test send's, nor one that was never handed to Sinch).
    sent = {"DELIVERED": R.DELIVERED, "FAILED": R.FAILED, "PENDING": R.PENDING}
    people = []
    for n, (name, status) in enumerate([*sent.items(), ("TEST", R.DELIVERED)] * 3):
        someone = make_contact(
            f"+1415557{n:04d}", consent="OPTED_IN", lists=[customers]
        )
        message_sent(
            someone,
            send_time - timedelta(hours=1),
            status=status,
            is_test=name == "TEST",
        )
        people.append((someone.pk, name))
    cap = frequency.cap_for(spring)
    ids = sorted(customers.memberships.values_list("contact_id", flat=True))
    in_range = cap.over(ids)
    assert {pk for pk, name in people if name in ("DELIVERED", "FAILED")} == set(
        in_range
    )
    for first, last in [(people[0][0], people[-1][0]), (people[1][0], people[-3][0])]:
        assert last - first >= 8  # read as a list of ids, not a range
        listed = cap.over([first, last])
        assert listed == {pk: in_range[pk] for pk in (first, last) if pk in in_range}
