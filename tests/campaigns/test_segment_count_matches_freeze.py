"""The live count a marketer sees while editing a segment is exactly who the
launch freezes: for every kind of condition, on SQLite and PostgreSQL."""

from unittest import mock

import pytest
from django.utils import timezone

from campaigns.dispatch import freeze as freezing
from campaigns.models import (
    Batch,
    Campaign,
    Click,
    InboundMessage,
    Recipient,
    Segment,
    TrackedLink,
)
from campaigns.segments.evaluate import count, matching_contacts
from contacts.models import ChannelIdentity, Contact

SMS_IN = {
    "field": "consent",
    "channel": "SMS",
    "purpose": "MARKETING",
    "op": "is",
    "value": "OPTED_IN",
}
CONDITIONS = {
    "language": {"field": "language", "op": "equals", "value": "fr"},
    "country_in": {"field": "country", "op": "in", "value": ["FR", "DE"]},
    "country_not": {"field": "country", "op": "not_equals", "value": "US"},
    "country_shared_code": {"field": "country", "op": "equals", "value": "CA"},
    "no_number": {"field": "country", "op": "is_empty"},
    "consent_is": SMS_IN,
    "consent_is_not": {**SMS_IN, "op": "is_not"},
    "created": {"field": "created_at", "op": "within_days", "value": 30},
    "attribute_equals": {
        "field": "attribute",
        "key": "tier",
        "op": "equals",
        "value": "gold",
    },
    "attribute_number": {
        "field": "attribute",
        "key": "points",
        "op": "gt",
        "value": 100,
    },
    "attribute_empty": {"field": "attribute", "key": "tier", "op": "is_empty"},
    "list_in": {"field": "list", "op": "in", "value": ["newsletter"]},
    "list_not_in": {"field": "list", "op": "not_in", "value": ["vip"]},
    "received": {"field": "engagement", "op": "received", "campaign": "earlier"},
    "not_received": {
        "field": "engagement",
        "op": "not_received",
        "campaign": "earlier",
    },
    "delivered": {"field": "engagement", "op": "delivered", "campaign": "earlier"},
    "failed": {"field": "engagement", "op": "failed", "campaign": "earlier"},
    "replied": {"field": "engagement", "op": "replied", "campaign": "earlier"},
    "clicked": {"field": "engagement", "op": "clicked", "campaign": "earlier"},
    "not_clicked": {"field": "engagement", "op": "not_clicked", "campaign": "earlier"},
    "messaged": {"field": "last_messaged", "op": "in_days", "value": 7},
    "not_messaged": {"field": "last_messaged", "op": "not_in_days", "value": 7},
}


@pytest.fixture
def population(make_launchable, make_contact, make_list, make_campaign):
    """Seven opted-in Americans and Olga (opted out) from the launchable
    campaign, and people of several countries, consents, attributes, lists
    and engagement; one of them erased, one whose French number was retired."""
    campaign = make_launchable()
    campaign.lists.clear()
    newsletter, vip = make_list("Newsletter"), make_list("VIP")
    people = [
        (
            "+33612345678",
            "OPTED_IN",
            "fr",
            {"tier": "gold", "points": "150"},
            [newsletter],
        ),
        ("+33612345679", "OPTED_OUT", "fr", {"tier": "silver"}, [newsletter, vip]),
        ("+4915112345678", "OPTED_IN", "de", {"tier": "gold", "points": 90}, [vip]),
        ("+12042345678", None, "en", {"points": "abc"}, [newsletter]),  # Canada
        ("+34612345678", "OPTED_IN", "es", {}, []),
    ]
    made = [
        make_contact(
            phone, consent=consent, language=lang, attributes=attrs, lists=lists
        )
        for phone, consent, lang, attrs, lists in people
    ]
    made.append(make_contact("someone@example.com", channel="EMAIL", language="fr"))
    erased = make_contact("+33612340000", consent="OPTED_IN", language="fr")
    Contact.objects.filter(pk=erased.pk).update(erased_at=timezone.now())
    ChannelIdentity.objects.filter(contact=made[1]).update(retired_at=timezone.now())
    Contact.objects.filter(pk=made[4].pk).update(
        created_at=timezone.now() - timezone.timedelta(days=90)
    )

    earlier = make_campaign(name="Earlier")
    batch = Batch.objects.create(
        campaign=earlier,
        sequence=1,
        metadata_key="earlier",
        submitted_at=timezone.now(),
    )
    sent = {}
    for index, (contact, status) in enumerate(
        [(made[0], "DELIVERED"), (made[2], "FAILED"), (made[3], "SUBMITTED")]
    ):
        sent[index] = Recipient.objects.create(
            campaign=earlier,
            batch=batch,
            index=index,
            contact=contact,
            identity="x",
            status=status,
        )
    # The first clicked; the second's link was only fetched by a preview
    # drawer, the third's only clicked in a test: neither clicked.
    link = TrackedLink.objects.create(
        campaign=earlier, parameter="cm_link_1", url="https://x.example", target="t"
    )
    Click.objects.bulk_create(
        Click(
            campaign_id=earlier.pk,
            link=link,
            recipient_id=sent[index].pk,
            clicked_at=timezone.now(),
            **flags,
        )
        for index, flags in [
            (0, {}),
            (0, {}),
            (1, {"is_preview": True}),
            (2, {"is_test": True}),
        ]
    )
    InboundMessage.objects.create(
        contact=made[2],
        campaign=earlier,
        channel="SMS",
        identity="x",
        text="Yes",
        received_at=timezone.now(),
    )
    return {
        "campaign": campaign,
        "ids": {"newsletter": newsletter.pk, "vip": vip.pk, "earlier": earlier.pk},
    }


def definition_of(names: list[str], ids: dict, match: str = "all") -> dict:
    conditions = []
    for name in names:
        condition = dict(CONDITIONS[name])
        if condition["field"] == "list":
            condition["value"] = [ids[v] for v in condition["value"]]
        if condition["field"] == "engagement":
            condition["campaign"] = ids[condition["campaign"]]
        conditions.append(condition)
    return {"match": "all", "groups": [{"match": match, "conditions": conditions}]}


@pytest.mark.parametrize(
    ("names", "match"),
    [([name], "all") for name in CONDITIONS]
    + [
        (["country_in", "consent_is"], "all"),
        (["list_in", "list_not_in"], "all"),
        (["replied", "delivered"], "any"),
        (["received", "not_clicked"], "all"),
        (["clicked", "replied"], "any"),
        (["not_messaged", "consent_is"], "all"),
        (["attribute_equals", "attribute_number"], "all"),
        (["language", "country_shared_code", "no_number"], "any"),
    ],
    ids=lambda value: "+".join(value) if isinstance(value, list) else value,
)
def test_the_live_count_is_who_the_launch_freezes(population, names, match):
    definition = definition_of(names, population["ids"], match)
    everyone = Contact.objects.filter(erased_at=None).count()
    shown = count(definition)
    # Every definition here splits the people: a count that ignored its
    # conditions (or matched nobody) could not pass.
    assert 0 < shown < everyone

    campaign = population["campaign"]
    campaign.segments.add(Segment.objects.create(name="Typical", definition=definition))
    Campaign.objects.filter(pk=campaign.pk).update(status=Campaign.Status.LAUNCHING)
    # The freeze itself, as a launch runs it (its drains not started).
    with (
        mock.patch.object(freezing.drain, "start"),
        mock.patch.object(freezing.drain, "schedule_release"),
    ):
        freezing.freeze_recipients(campaign.pk)
    campaign.refresh_from_db()

    frozen = set(
        Recipient.objects.filter(campaign=campaign).values_list("contact_id", flat=True)
    )
    assert frozen == set(matching_contacts(definition).values_list("pk", flat=True))
    assert len(frozen) == shown == campaign.frozen_segments[0]["matched"]
