"""A campaign's audience of lists and segments: once each, the rule holds,
the segment is evaluated once at the freeze and recorded."""

from unittest import mock

import pytest

from campaigns.authoring import members, presend
from campaigns.compliance import approval as approvals
from campaigns.dispatch import launching
from campaigns.models import Campaign, LaunchApproval, Recipient, Segment
from campaigns.segments.definition import describe, validate
from contacts.models import AuditEvent, ChannelIdentity, Contact
from contacts.services.consent import Evidence, record_consent

SMS_OPTED_IN = {
    "match": "all",
    "groups": [
        {
            "match": "all",
            "conditions": [
                {
                    "field": "consent",
                    "channel": "SMS",
                    "purpose": "MARKETING",
                    "op": "is",
                    "value": "OPTED_IN",
                }
            ],
        }
    ],
}


def language(code: str) -> dict:
    condition = {"field": "language", "op": "equals", "value": code}
    return {"match": "all", "groups": [{"match": "all", "conditions": [condition]}]}


NO_LANGUAGE = {
    "match": "all",
    "groups": [
        {"match": "all", "conditions": [{"field": "language", "op": "is_empty"}]}
    ],
}


def test_validate_names_every_problem_in_words(make_list):
    assert validate({"match": "all", "groups": []}) == ["Add at least one condition."]
    errors = validate(
        {
            "match": "both",
            "groups": [
                {"match": "all", "conditions": []},
                {
                    "match": "any",
                    "conditions": [
                        {"field": "shoe_size", "op": "equals", "value": "9"},
                        {"field": "language", "op": "gt", "value": "fr"},
                        {"field": "attribute", "op": "equals", "value": "x"},
                        {"field": "attribute", "key": "n", "op": "gt", "value": "ten"},
                        {"field": "created_at", "op": "before", "value": "31/12/2026"},
                        {"field": "consent", "op": "is", "value": "YES"},
                        {"field": "list", "op": "in", "value": []},
                        {"field": "country", "op": "equals", "value": "France"},
                        {"field": "last_messaged", "op": "not_in_days", "value": 0},
                    ],
                },
            ],
        }
    )
    assert errors == [
        'Combine the groups with "all" or "any".',
        "Group 1 has no conditions: add one or remove the group.",
        "Group 2, condition 1: unknown field 'shoe_size'; choose one of the "
        "listed fields.",
        "Group 2, condition 2: language cannot be compared with 'gt'; use one of: "
        "is, is not, is one of, contains, is empty, is not empty.",
        "Group 2, condition 3: choose which attribute (its name, e.g. loyalty_tier).",
        "Group 2, condition 4: attribute is more than: enter a number, e.g. 42 or 3.5.",
        "Group 2, condition 5: added on is before: enter a date as YYYY-MM-DD.",
        "Group 2, condition 6: choose the channel of the consent (e.g. SMS).",
        "Group 2, condition 6: choose the purpose: marketing or transactional.",
        "Group 2, condition 6: consent is: choose a consent state (no record, "
        "opted in, opted out).",
        "Group 2, condition 7: list is one of: choose at least one list.",
        "Group 2, condition 8: country is: use a two-letter country code, e.g. FR "
        "or US.",
        "Group 2, condition 9: last messaged not messaged in: enter a number of "
        "days from 1 to 36500.",
    ]
    gone = {"field": "list", "op": "in", "value": [999]}
    assert validate({"groups": [{"conditions": [gone]}]}) == [
        "List #999 no longer exists: choose another."
    ]


def test_describe_reads_as_one_sentence(make_campaign):
    campaign = make_campaign(name="Spring sale")
    definition = {
        "match": "all",
        "groups": [
            language("fr")["groups"][0],
            {
                "match": "any",
                "conditions": [
                    SMS_OPTED_IN["groups"][0]["conditions"][0],
                    {"field": "engagement", "op": "replied", "campaign": campaign.pk},
                ],
            },
        ],
    }
    assert describe(definition) == (
        "language is fr AND (SMS marketing consent is opted in OR replied to "
        'campaign "Spring sale")'
    )


def test_a_segment_on_opted_in_consent_never_lets_an_opted_out_person_through(
    launched_campaign, make_launchable, make_contact
):
    campaign = make_launchable()
    # Paul's first number opted out; a newer one opted in: the segment
    # matches him, the audience rule reads the number it would send to.
    paul = make_contact("+14155551111", consent="OPTED_OUT", first_name="Paul")
    newer = ChannelIdentity.objects.create(
        contact=paul, channel="SMS", identity="+14155551112"
    )
    record_consent(
        identity=newer,
        kind="OPT_IN",
        purpose="MARKETING",
        source="FORM",
        evidence=Evidence(wording="Test"),
    )
    segment = Segment.objects.create(name="Opted in", definition=SMS_OPTED_IN)
    campaign.segments.add(segment)
    assert paul in members.audience_contacts(campaign)

    campaign = launched_campaign(campaign, dispatch=False)

    row = Recipient.objects.get(campaign=campaign, contact=paul)
    assert row.status == Recipient.Status.EXCLUDED
    assert "opted out" in row.reason
    olga = Recipient.objects.get(campaign=campaign, identity="+14155559999")
    assert olga.status == Recipient.Status.EXCLUDED


def test_a_person_on_a_list_and_in_a_segment_gets_one_message(
    launched_campaign, make_launchable
):
    campaign = make_launchable()
    everyone = Segment.objects.create(name="English", definition=NO_LANGUAGE)
    campaign.segments.add(everyone)  # the same eight people as the list
    assert presend.audience_size(campaign) == 8
    assert presend.run_presend_check(campaign).audience == 8

    campaign = launched_campaign(Campaign.objects.get(pk=campaign.pk), dispatch=False)

    recipients = Recipient.objects.filter(campaign=campaign)
    assert recipients.count() == 8
    assert recipients.values("contact_id").distinct().count() == 8
    assert recipients.filter(status=Recipient.Status.PENDING).count() == 7


def test_a_campaign_on_a_segment_only_reaches_its_matches(
    launched_campaign, make_launchable, make_contact
):
    campaign = make_launchable()
    campaign.lists.clear()
    make_contact("+33612345678", consent="OPTED_IN", language="fr", first_name="Zoe")
    make_contact("+33612345679", consent="OPTED_IN", language="de", first_name="Max")
    campaign.segments.add(Segment.objects.create(name="fr", definition=language("fr")))
    presend.run_presend_check(campaign)

    campaign = launched_campaign(Campaign.objects.get(pk=campaign.pk), dispatch=False)

    assert list(
        Recipient.objects.filter(campaign=campaign).values_list(
            "contact__first_name", "status"
        )
    ) == [("Zoe", Recipient.Status.PENDING)]


def test_the_freeze_evaluates_each_segment_once_and_records_its_definition(
    launched_campaign, make_launchable
):
    campaign = make_launchable()
    segment = Segment.objects.create(name="All of them", definition=NO_LANGUAGE)
    campaign.segments.add(segment)
    real = members.evaluate_audience

    with mock.patch.object(members, "evaluate_audience", wraps=real) as evaluated:
        campaign = launched_campaign(campaign, dispatch=False)

    # Once for the recipients (the launch's tolerance check only counts).
    assert evaluated.call_count == 1
    assert campaign.frozen_segments == [
        {
            "id": segment.pk,
            "name": "All of them",
            "definition": NO_LANGUAGE,
            "description": "language is empty",
            "matched": 8,
        }
    ]
    audit = AuditEvent.objects.get(
        target_type="campaign",
        target_id=str(campaign.pk),
        summary__startswith="Segments evaluated",
    )
    assert audit.details["segments"] == campaign.frozen_segments
    # The segment stays editable; the launched campaign is unaffected.
    segment.definition = language("fr")
    segment.save()
    Contact.objects.update(language="de")
    campaign.refresh_from_db()
    assert campaign.frozen_segments[0]["definition"] == NO_LANGUAGE
    assert Recipient.objects.filter(campaign=campaign).count() == 8


def test_a_segment_whose_list_was_deleted_stops_the_freeze_with_the_reason(
    launched_campaign, make_launchable, make_list
):
    campaign = make_launchable()
    gone = make_list("Old")
    definition = {
        "groups": [{"conditions": [{"field": "list", "op": "in", "value": [gone.pk]}]}]
    }
    campaign.segments.add(
        Segment.objects.create(name="Old list", definition=definition)
    )
    gone.delete()

    campaign = launched_campaign(campaign, dispatch=False)

    assert campaign.status == Campaign.Status.FAILED
    assert "Segment “Old list” cannot be used" in campaign.status_reason
    assert not Recipient.objects.filter(campaign=campaign).exists()


@pytest.fixture
def threshold(settings):
    settings.APPROVAL_MIN_RECIPIENTS = 5
    settings.APPROVAL_MIN_COST = None


def test_a_change_of_a_segment_definition_withdraws_the_approval(
    threshold, make_launchable, marketer, sender
):
    campaign = make_launchable()
    segment = Segment.objects.create(name="fr", definition=language("fr"))
    campaign.segments.add(segment)
    presend.run_presend_check(campaign)
    campaign = Campaign.objects.get(pk=campaign.pk)
    approvals.request_launch(campaign, marketer)
    approvals.decide(campaign, sender, approve=True)
    segment.definition = language("de")
    segment.save()

    with pytest.raises(launching.LaunchError, match="approval was withdrawn"):
        launching.launch(Campaign.objects.get(pk=campaign.pk), sender)
    assert LaunchApproval.objects.get().withdrawn_at is not None


def test_erasure_takes_the_person_out_of_segment_definitions_and_freeze_records(
    make_contact, make_campaign, superuser
):
    from contacts.services.erasure import erase_contact

    zelda = make_contact("+14155550777", first_name="Zelda", last_name="Quistorp")
    condition = {"field": "last_name", "op": "equals", "value": "Quistorp"}
    segment = Segment.objects.create(
        name="Just Quistorp", definition={"groups": [{"conditions": [condition]}]}
    )
    campaign = make_campaign()
    Campaign.objects.filter(pk=campaign.pk).update(
        frozen_segments=[{"id": segment.pk, "description": "last name is Quistorp"}]
    )

    erase_contact(contact=zelda, actor=superuser)

    segment.refresh_from_db()
    campaign.refresh_from_db()
    assert "Quistorp" not in str(segment.definition)
    assert "Quistorp" not in segment.name
    assert "Quistorp" not in str(campaign.frozen_segments)
    assert validate(segment.definition)  # asks for a new value, matches no one
