"""What segments count from on the contact row (Contact.segment_facts) stays
equal to what the identities say, whichever path changes them, and holds no
number, name or text."""

import random
import re

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db.models import Exists, OuterRef, Q
from django.utils import timezone

from campaigns.segments.evaluate import matching_contacts
from contacts import countries, segment_facts
from contacts.importing.importer import run_import
from contacts.importing.jobs import create_import_job
from contacts.models import ChannelIdentity, ConsentState, Contact, ImportJob
from contacts.services.consent import (
    Evidence,
    record_consent,
    record_opt_out_for_contacts,
)
from contacts.services.erasure import erase
from contacts.services.identities import replace_identity
from sinch.channels import PHONE_CHANNELS

IN, OUT, UNKNOWN = (
    ConsentState.OPTED_IN,
    ConsentState.OPTED_OUT,
    ConsentState.UNKNOWN,
)


def facts(contact) -> str:
    return Contact.objects.get(pk=contact.pk).segment_facts


def assert_fresh():
    assert segment_facts.drift() == []


def opt(identity, kind="OPT_IN", purpose="MARKETING"):
    record_consent(
        identity=identity,
        kind=kind,
        purpose=purpose,
        source="FORM",
        evidence=Evidence(wording="Ticked the box"),
    )


# --- each path that changes an identity keeps the facts fresh --------------------


def test_a_new_contact_with_a_number_has_its_country_and_unknown_consent(
    make_contact,
):
    amelie = make_contact("+33612345678")
    assert facts(amelie) == ("|@+|@FR|SMS:MARKETING:UNKNOWN|SMS:TRANSACTIONAL:UNKNOWN|")
    assert_fresh()


def test_recording_consent_updates_the_facts(make_contact):
    bob = make_contact("+14155550101")
    identity = bob.identities.get()
    opt(identity)
    assert "|SMS:MARKETING:OPTED_IN|" in facts(bob)
    opt(identity, "OPT_OUT")
    assert "|SMS:MARKETING:OPTED_OUT|" in facts(bob)
    assert "OPTED_IN" not in facts(bob)
    assert_fresh()


def test_the_admin_opt_out_of_contacts_updates_the_facts(make_contact, admin_user):
    people = [make_contact(consent=IN), make_contact(consent=IN)]
    record_opt_out_for_contacts(
        contacts=Contact.objects.filter(pk__in=[p.pk for p in people]),
        purposes=["MARKETING"],
        evidence=Evidence(wording="Asked by phone"),
        actor=admin_user,
    )
    for person in people:
        assert "|SMS:MARKETING:OPTED_OUT|" in facts(person)
    assert_fresh()


def test_replacing_a_number_moves_the_country_and_forgets_the_old_consent(
    make_contact, admin_user
):
    amelie = make_contact("+33612345678", consent=IN)
    replace_identity(amelie.identities.get(), "+4915112345678", actor=admin_user)
    assert facts(amelie) == ("|@+|@DE|SMS:MARKETING:UNKNOWN|SMS:TRANSACTIONAL:UNKNOWN|")
    assert_fresh()


def test_retiring_or_deleting_identities_in_bulk_updates_the_facts(make_contact):
    amelie = make_contact("+33612345678", consent=IN)
    ChannelIdentity.objects.filter(contact=amelie).update(retired_at=timezone.now())
    assert facts(amelie) == ""
    bob = make_contact("+14155550101")
    ChannelIdentity.objects.filter(contact=bob).delete()
    assert facts(bob) == ""
    assert_fresh()


def test_an_import_writes_the_facts_of_new_and_merged_contacts(make_contact, write_csv):
    known = make_contact("+4915123456789")
    path = write_csv(
        [
            ["phone", "first_name", "consent"],
            ["+4915123456789", "Known", "yes"],
            ["+33612345678", "New", "yes"],
            ["+12042345678", "Winnipeg", "no"],
        ]
    )
    job = create_import_job(
        path=path,
        original_name="crm.csv",
        actor=None,
        target_list=None,
        default_channel="SMS",
        purpose="MARKETING",
        consent_mode=ImportJob.ConsentMode.COLUMN,
        consent_source="IMPORT",
        consent_evidence="Paper forms from the spring fair, signed",
    )
    job = run_import(job, dry_run=False, actor=None)
    assert job.rows_ok == 3, job.__dict__
    assert "|@DE|" in facts(known)
    assert "|SMS:MARKETING:OPTED_IN|" in facts(known)
    new = Contact.objects.get(first_name="New")
    assert "|@FR|" in facts(new)
    assert "|SMS:MARKETING:OPTED_IN|" in facts(new)
    winnipeg = Contact.objects.get(first_name="Winnipeg")
    assert "|@CA|" in facts(winnipeg)
    assert "|SMS:MARKETING:OPTED_OUT|" in facts(winnipeg)
    assert_fresh()


def test_erasure_leaves_no_country_and_nothing_personal(make_contact, admin_user):
    amelie = make_contact(
        "+33612345678", consent=IN, first_name="Amelie", last_name="Roy"
    )
    assert "|@FR|" in facts(amelie)
    erase(contact=amelie, actor=admin_user, reason="Asked by e-mail")
    after = facts(amelie)
    assert "@" not in after  # no number left, hence no country
    assert "Amelie" not in after
    assert "612345678" not in after
    assert after == "|SMS:MARKETING:OPTED_OUT|SMS:TRANSACTIONAL:OPTED_OUT|"
    assert_fresh()


def test_the_facts_hold_only_countries_channels_and_states(make_contact):
    make_contact("+33612345678", first_name="Amelie", consent=IN)
    make_contact("+14155550101", channel="WHATSAPP", first_name="Bob")
    token = r"(@\+|@[A-Z]{2}|[A-Z_]+:(MARKETING|TRANSACTIONAL):[A-Z_]+)"
    for text in Contact.objects.values_list("segment_facts", flat=True):
        assert re.fullmatch(rf"\|({token}\|)+", text), text


def test_a_contact_saved_from_an_old_copy_keeps_its_fresh_facts(make_contact):
    bob = make_contact("+14155550101")
    stale = Contact.objects.get(pk=bob.pk)  # e.g. an admin form opened earlier
    opt(bob.identities.get())
    stale.first_name = "Robert"
    stale.save()
    assert "|SMS:MARKETING:OPTED_IN|" in facts(bob)
    assert Contact.objects.get(pk=bob.pk).first_name == "Robert"
    assert_fresh()


def test_the_command_reports_drift_and_rebuilds(make_contact):
    bob = make_contact("+14155550101", consent=IN)
    call_command("rebuild_segment_facts", "--check")
    Contact.objects.filter(pk=bob.pk).update(segment_facts="")  # as raw SQL would
    with pytest.raises(CommandError, match="1 contact"):
        call_command("rebuild_segment_facts", "--check")
    call_command("rebuild_segment_facts")
    assert "|SMS:MARKETING:OPTED_IN|" in facts(bob)
    call_command("rebuild_segment_facts", "--check")


# --- the count from the facts equals the count from the identities ----------------


def _reference_country(condition) -> Q:
    """The former evaluation: a live phone identity by prefix, read from the
    identities."""
    op, value = condition["op"], condition.get("value")
    phones = ChannelIdentity.objects.filter(
        retired_at=None, channel__in=PHONE_CHANNELS, contact=OuterRef("pk")
    )
    if op in ("is_empty", "is_not_empty"):
        held = Exists(phones.filter(identity__startswith="+"))
        return ~Q(held) if op == "is_empty" else Q(held)
    inside = Q(pk__in=[])
    for country in value if op == "in" else [value]:
        prefixes, exceptions = countries.country_prefixes(country)
        one = Q(pk__in=[])
        for prefix in prefixes:
            one |= Q(identity__startswith=prefix)
        for exception in exceptions:
            one &= ~Q(identity__startswith=exception)
        inside |= one
    held = Q(Exists(phones.filter(inside)))
    return ~held if op == "not_equals" else held


def _reference_consent(condition) -> Q:
    field = f"{condition['purpose'].lower()}_consent"
    held = Q(
        Exists(
            ChannelIdentity.objects.filter(
                contact=OuterRef("pk"),
                channel=condition["channel"],
                retired_at=None,
                **{field: condition["value"]},
            )
        )
    )
    return ~held if condition["op"] == "is_not" else held


NUMBERS = [
    "+33612345678",
    "+4915112345678",
    "+14155550101",
    "+12042345678",  # Canada
    "+18762345678",  # Jamaica
    "+13102345678",  # US, next to a Canadian exception
    "+441534456789",  # Jersey
    "+447400123456",  # GB
    "+77012345678",  # Kazakhstan
    "+74951234567",  # Russia
]
CHANNELS = ["SMS", "WHATSAPP", "RCS", "MESSENGER"]
STATES = [IN, OUT, UNKNOWN]


def _random_population(rng):
    people = []
    for n in range(60):
        contact = Contact.objects.create(first_name=f"P{n}")
        for k in range(rng.choice([0, 1, 1, 2, 3])):
            channel = rng.choice(CHANNELS)
            value = (
                f"psid-{n}-{k}"
                if channel == "MESSENGER"
                else rng.choice(NUMBERS)[:-3] + f"{n:02d}{k}"
            )
            identity = ChannelIdentity.objects.create(
                contact=contact,
                channel=channel,
                identity=value,
                marketing_consent=rng.choice(STATES),
                transactional_consent=rng.choice(STATES),
            )
            if rng.random() < 0.2:
                ChannelIdentity.objects.filter(pk=identity.pk).update(
                    retired_at=timezone.now()
                )
        people.append(contact)
    return people


def _random_condition(rng):
    if rng.random() < 0.5:
        op = rng.choice(["equals", "not_equals", "in", "is_empty", "is_not_empty"])
        codes = ["US", "CA", "JM", "FR", "DE", "GB", "JE", "KZ", "RU"]
        value = rng.sample(codes, 2) if op == "in" else rng.choice(codes)
        condition = {"field": "country", "op": op, "value": value}
        return condition, _reference_country(condition)
    condition = {
        "field": "consent",
        "channel": rng.choice(CHANNELS[:3]),
        "purpose": rng.choice(["MARKETING", "TRANSACTIONAL"]),
        "op": rng.choice(["is", "is_not"]),
        "value": rng.choice(STATES),
    }
    return condition, _reference_consent(condition)


def test_random_definitions_count_as_the_identities_say(db):
    rng = random.Random(14)
    _random_population(rng)
    assert_fresh()
    for _ in range(80):
        parts = [_random_condition(rng) for _ in range(rng.randint(1, 3))]
        match = rng.choice(["all", "any"])
        definition = {
            "match": "all",
            "groups": [{"match": match, "conditions": [c for c, _ in parts]}],
        }
        expected = parts[0][1]
        for _, q in parts[1:]:
            expected = expected & q if match == "all" else expected | q
        reference = set(
            Contact.objects.filter(erased_at=None)
            .filter(expected)
            .values_list("pk", flat=True)
        )
        found = set(matching_contacts(definition).values_list("pk", flat=True))
        assert found == reference, definition


def test_every_country_prefix_fits_in_the_head_regions_are_read_from():
    from phonenumbers import COUNTRY_CODE_TO_REGION_CODE

    longest = max(
        len(prefix)
        for regions in COUNTRY_CODE_TO_REGION_CODE.values()
        for region in regions
        for prefix in sum(countries.country_prefixes(region), ())
    )
    assert longest <= segment_facts.HEAD


def test_an_identity_moved_to_another_contact_moves_its_facts(make_contact):
    amelie = make_contact("+33612345678", consent=IN)
    other = Contact.objects.create(first_name="Other")
    ChannelIdentity.objects.filter(contact=amelie).update(contact=other)
    assert facts(amelie) == ""
    assert "|@FR|" in facts(other)
    assert_fresh()


def test_the_facts_of_a_one_identity_contact_are_those_of_the_general_rule():
    # facts_of_one is the import's shortcut (cached by region); it must give
    # exactly what facts_of gives for the same single identity.
    numbers = ["+4915112345678", "+14155550123", "+447700900123", "+33612345678"]
    numbers += ["+5511987654321", "+919812345678", "+12425550123", "+3906698000"]
    values = ["someone@example.com", "psid-123", *numbers]
    states = [IN, OUT, UNKNOWN]
    checked = 0
    for channel in ["SMS", "WHATSAPP", "MESSENGER", "RCS"]:
        for value in values:
            for marketing in states:
                for transactional in states:
                    one = (channel, value, str(marketing), str(transactional))
                    expected = segment_facts.facts_of([one])
                    assert segment_facts.facts_of_one(*one) == expected, one
                    checked += 1
    assert checked == 4 * len(values) * 9
