"""Segments: every field and operator matches exactly the right contacts."""

from datetime import timedelta

import pytest
from django.utils import timezone

from campaigns.models import Batch, InboundMessage, Recipient
from campaigns.segments.evaluate import count, matching_contacts
from contacts import countries
from contacts.models import ChannelIdentity, Contact


def one(condition, match="all"):
    return {"match": "all", "groups": [{"match": match, "conditions": [condition]}]}


def names(definition):
    return sorted(matching_contacts(definition).values_list("first_name", flat=True))


@pytest.fixture
def people(make_contact, make_list):
    vip = make_list("VIP")
    make_contact(
        "+33612345678",
        first_name="Amelie",
        last_name="Roy",
        language="fr",
        time_zone="Europe/Paris",
        attributes={"tier": "gold", "points": "120", "joined": "2024-05-01"},
        consent="OPTED_IN",
        lists=[vip],
    )
    make_contact(
        "+14155550101",
        first_name="Bob",
        language="en",
        attributes={"tier": "silver", "points": 7},
        consent="OPTED_OUT",
    )
    make_contact(
        "+12042345678",  # Winnipeg: Canada
        first_name="Chloe",
        language="en",
        external_id="C-1",
        attributes={"points": "abc"},
    )
    return {"vip": vip}


def test_text_fields_match_equals_in_contains_and_empty(people):
    assert names(one({"field": "language", "op": "equals", "value": "fr"})) == [
        "Amelie"
    ]
    assert names(one({"field": "language", "op": "not_equals", "value": "fr"})) == [
        "Bob",
        "Chloe",
    ]
    assert names(one({"field": "first_name", "op": "in", "value": ["Bob", "X"]})) == [
        "Bob"
    ]
    assert names(one({"field": "first_name", "op": "contains", "value": "HLO"})) == [
        "Chloe"
    ]
    assert names(one({"field": "external_id", "op": "is_empty"})) == ["Amelie", "Bob"]
    assert names(one({"field": "external_id", "op": "is_not_empty"})) == ["Chloe"]
    assert names(
        one({"field": "time_zone", "op": "equals", "value": "Europe/Paris"})
    ) == ["Amelie"]


def test_country_comes_from_the_phone_prefix_even_inside_a_shared_code(people):
    assert names(one({"field": "country", "op": "equals", "value": "FR"})) == ["Amelie"]
    assert names(one({"field": "country", "op": "equals", "value": "US"})) == ["Bob"]
    assert names(one({"field": "country", "op": "equals", "value": "CA"})) == ["Chloe"]
    assert names(one({"field": "country", "op": "in", "value": ["FR", "CA"]})) == [
        "Amelie",
        "Chloe",
    ]
    assert names(one({"field": "country", "op": "not_equals", "value": "US"})) == [
        "Amelie",
        "Chloe",
    ]


def test_a_retired_number_no_longer_gives_a_country(people):
    ChannelIdentity.objects.filter(identity="+33612345678").update(
        retired_at=timezone.now()
    )
    assert names(one({"field": "country", "op": "equals", "value": "FR"})) == []
    assert names(one({"field": "country", "op": "is_empty"})) == ["Amelie"]


@pytest.mark.parametrize(
    "number",
    [
        "+12042345678",
        "+18762345678",
        "+441534456789",
        "+33612345678",
        "+4915112345678",
        "+61891621234",
        "+77012345678",
        "+74951234567",
    ],
)
def test_prefixes_agree_with_phonenumbers(number):
    import phonenumbers

    region = phonenumbers.region_code_for_number(phonenumbers.parse(number))
    prefixes, exceptions = countries.country_prefixes(region)
    assert any(number.startswith(p) for p in prefixes)
    assert not any(number.startswith(p) for p in exceptions)


def test_attributes_compare_as_text_numbers_and_dates(people):
    assert names(
        one({"field": "attribute", "key": "tier", "op": "equals", "value": "gold"})
    ) == ["Amelie"]
    assert names(
        one({"field": "attribute", "key": "tier", "op": "not_equals", "value": "gold"})
    ) == ["Bob", "Chloe"]
    assert names(one({"field": "attribute", "key": "tier", "op": "is_empty"})) == [
        "Chloe"
    ]
    assert names(
        one({"field": "attribute", "key": "tier", "op": "in", "value": ["silver"]})
    ) == ["Bob"]
    assert names(
        one({"field": "attribute", "key": "tier", "op": "contains", "value": "OL"})
    ) == ["Amelie"]
    # "abc" is not a number: it never compares.
    assert names(
        one({"field": "attribute", "key": "points", "op": "gt", "value": 10})
    ) == ["Amelie"]
    assert names(
        one({"field": "attribute", "key": "points", "op": "lte", "value": "7"})
    ) == ["Bob"]
    assert names(
        one({"field": "attribute", "key": "points", "op": "equals", "value": "7"})
    ) == ["Bob"]
    assert names(
        one(
            {
                "field": "attribute",
                "key": "joined",
                "op": "before",
                "value": "2024-06-01",
            }
        )
    ) == ["Amelie"]
    assert (
        names(
            one(
                {
                    "field": "attribute",
                    "key": "joined",
                    "op": "after",
                    "value": "2024-06-01",
                }
            )
        )
        == []
    )


def test_attribute_equality_holds_whatever_json_makes_of_the_value(make_contact):
    # Non-ASCII and quotes are escaped in the stored JSON, a boolean reads as
    # 1, and a value found under another key must not count.
    make_contact(first_name="Dora", attributes={"city": "Zürich", "vip": True})
    make_contact(first_name="Emil", attributes={"city": 'say "hi"', "note": "Gold"})
    make_contact(first_name="Fay", attributes={"city": "Gold Coast", "tier": "Gold"})

    def equal(key, value, op="equals"):
        return names(one({"field": "attribute", "key": key, "op": op, "value": value}))

    assert equal("city", "Zürich") == ["Dora"]
    assert equal("city", 'say "hi"') == ["Emil"]
    assert equal("vip", "true") == ["Dora"]
    assert equal("tier", "Gold") == ["Fay"]
    assert equal("city", "Gold") == []
    assert equal("city", ["Gold Coast", "Zürich"], op="in") == ["Dora", "Fay"]
    assert equal("note", ["Gold", "x"], op="in") == ["Emil"]


def test_created_at_by_date_and_by_days(people):
    Contact.objects.filter(first_name="Bob").update(
        created_at=timezone.now() - timedelta(days=40)
    )
    assert names(
        one({"field": "created_at", "op": "older_than_days", "value": 30})
    ) == ["Bob"]
    assert names(one({"field": "created_at", "op": "within_days", "value": 30})) == [
        "Amelie",
        "Chloe",
    ]
    today = timezone.localdate().isoformat()
    assert names(one({"field": "created_at", "op": "on", "value": today})) == [
        "Amelie",
        "Chloe",
    ]
    assert names(one({"field": "created_at", "op": "before", "value": today})) == [
        "Bob"
    ]
    assert names(one({"field": "created_at", "op": "after", "value": today})) == []


def test_lists_and_consent(people):
    vip = people["vip"].pk
    assert names(one({"field": "list", "op": "in", "value": [vip]})) == ["Amelie"]
    assert names(one({"field": "list", "op": "not_in", "value": [vip]})) == [
        "Bob",
        "Chloe",
    ]
    consent = {"field": "consent", "channel": "SMS", "purpose": "MARKETING"}
    assert names(one({**consent, "op": "is", "value": "OPTED_IN"})) == ["Amelie"]
    assert names(one({**consent, "op": "is", "value": "OPTED_OUT"})) == ["Bob"]
    assert names(one({**consent, "op": "is_not", "value": "OPTED_IN"})) == [
        "Bob",
        "Chloe",
    ]
    whatsapp = {**consent, "channel": "WHATSAPP", "op": "is", "value": "OPTED_IN"}
    assert names(one(whatsapp)) == []


def test_engagement_and_last_messaged(people, make_campaign):
    campaign = make_campaign(name="Spring sale")
    batch = Batch.objects.create(
        campaign=campaign, sequence=1, metadata_key="k1", submitted_at=timezone.now()
    )
    amelie, bob, chloe = (
        Contact.objects.get(first_name=n) for n in ("Amelie", "Bob", "Chloe")
    )
    Recipient.objects.create(
        campaign=campaign,
        batch=batch,
        index=0,
        contact=amelie,
        identity="a",
        status="DELIVERED",
    )
    Recipient.objects.create(
        campaign=campaign,
        batch=batch,
        index=1,
        contact=bob,
        identity="b",
        status="FAILED",
    )
    Recipient.objects.create(
        campaign=campaign, contact=chloe, identity="c", status="EXCLUDED"
    )
    InboundMessage.objects.create(
        contact=bob,
        campaign=campaign,
        channel="SMS",
        identity="b",
        text="hi",
        received_at=timezone.now(),
    )
    engaged = {"field": "engagement", "campaign": campaign.pk}
    assert names(one({**engaged, "op": "received"})) == ["Amelie", "Bob"]
    assert names(one({**engaged, "op": "delivered"})) == ["Amelie"]
    assert names(one({**engaged, "op": "failed"})) == ["Bob"]
    assert names(one({**engaged, "op": "replied"})) == ["Bob"]
    assert names(one({**engaged, "op": "not_received"})) == ["Chloe"]
    assert names(one({"field": "last_messaged", "op": "in_days", "value": 3})) == [
        "Amelie",
        "Bob",
    ]
    assert names(one({"field": "last_messaged", "op": "not_in_days", "value": 3})) == [
        "Chloe"
    ]


def test_groups_combine_with_and_or(people):
    definition = {
        "match": "any",
        "groups": [
            {
                "match": "all",
                "conditions": [
                    {"field": "language", "op": "equals", "value": "en"},
                    {"field": "country", "op": "equals", "value": "CA"},
                ],
            },
            {
                "match": "any",
                "conditions": [
                    {"field": "first_name", "op": "equals", "value": "Amelie"},
                    {"field": "first_name", "op": "equals", "value": "Nobody"},
                ],
            },
        ],
    }
    assert names(definition) == ["Amelie", "Chloe"]
    definition["match"] = "all"
    assert names(definition) == []
    assert count(definition) == 0


def test_erased_contacts_never_match(people):
    Contact.objects.filter(first_name="Bob").update(erased_at=timezone.now())
    assert names(one({"field": "language", "op": "equals", "value": "en"})) == ["Chloe"]


def test_the_catalogue_offers_every_field_with_its_operators(people, make_campaign):
    import json

    from campaigns.segments import catalogue
    from campaigns.segments.definition import FIELD_OPS

    launched = make_campaign(name="Spring sale")
    launched.frozen_at = timezone.now()
    launched.save()
    offered = {entry["field"]: entry for entry in catalogue.fields()}
    json.dumps(offered)  # JSON-ready
    assert list(offered) == list(FIELD_OPS)
    assert offered["attribute"]["needs_key"] is True
    assert offered["consent"]["ops"] == ["is", "is_not"]
    assert ["SMS", "SMS"] in offered["consent"]["channels"]
    assert offered["list"]["choices"] == [[people["vip"].pk, "VIP"]]
    assert offered["engagement"]["choices"] == [[launched.pk, "Spring sale"]]
    assert ["FR", "France (FR)"] in offered["country"]["choices"]
    assert catalogue.attribute_keys() == ["joined", "points", "tier"]


SHARED_CODES = (1, 7, 39, 44, 47, 61, 262, 290, 358, 590, 599)


def _shared_code_numbers() -> list[str]:
    """Example numbers of every region on a shared calling code, and a
    number on each of those regions' prefixes and exceptions."""
    import phonenumbers
    from phonenumbers import PhoneNumberFormat, PhoneNumberType

    numbers = set()
    for code in SHARED_CODES:
        for region in phonenumbers.COUNTRY_CODE_TO_REGION_CODE[code]:
            for kind in (PhoneNumberType.FIXED_LINE, PhoneNumberType.MOBILE):
                example = phonenumbers.example_number_for_type(region, kind)
                if example is not None:
                    numbers.add(
                        phonenumbers.format_number(example, PhoneNumberFormat.E164)
                    )
            prefixes, exceptions = countries.country_prefixes(region)
            for prefix in (*prefixes, *exceptions):
                numbers.add((prefix + "23456789012")[:13])
    return sorted(numbers)


def test_every_region_of_a_shared_code_counts_exactly_its_numbers(make_contact):
    """The database reads a country's prefixes and exceptions (the US has
    some ninety, Canada some sixty prefixes) exactly as the prefix rule says,
    for every region sharing a calling code, alone and together."""
    import phonenumbers

    numbers = _shared_code_numbers()
    contact_of = {number: make_contact(number).pk for number in numbers}

    def by_rule(region_codes):
        found = set()
        for region in region_codes:
            prefixes, exceptions = countries.country_prefixes(region)
            found |= {
                contact_of[n]
                for n in numbers
                if any(n.startswith(p) for p in prefixes)
                and not any(n.startswith(e) for e in exceptions)
            }
        return found

    def by_database(condition):
        return set(matching_contacts(one(condition)).values_list("pk", flat=True))

    checked = 0
    for code in SHARED_CODES:
        regions = phonenumbers.COUNTRY_CODE_TO_REGION_CODE[code]
        for region in regions:
            condition = {"field": "country", "op": "equals", "value": region}
            assert by_database(condition) == by_rule([region]), region
            checked += bool(by_rule([region]))
        together = {"field": "country", "op": "in", "value": list(regions[:3])}
        assert by_database(together) == by_rule(regions[:3]), regions[:3]
    not_us = {"field": "country", "op": "not_equals", "value": "US"}
    assert by_database(not_us) == set(contact_of.values()) - by_rule(["US"])
    assert checked > 40  # most regions have numbers here
