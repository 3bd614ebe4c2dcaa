"""CSV import into existing data: merging, consent rules, evidence, attributes."""

import io
import re
from datetime import timedelta

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.utils import timezone

from contacts.importing.importer import run_import
from contacts.importing.jobs import ImportSetupError, create_import_job
from contacts.models import (
    ChannelIdentity,
    ConsentEvent,
    ConsentState,
    Contact,
    ImportJob,
)
from contacts.services.consent import Evidence, record_consent

PHONE = "+4915123456789"
OTHER = "+4915123456780"
EVIDENCE = "Paper forms from the spring fair, signed"
PLACEHOLDER_KEY = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


@pytest.fixture
def run_csv(db):
    def run(path, *, dry_run=False, **options):
        options = {
            "original_name": "crm-export.csv",
            "actor": None,
            "target_list": None,
            "default_channel": "SMS",
            "purpose": "MARKETING",
            "consent_mode": ImportJob.ConsentMode.NONE,
            "consent_source": "IMPORT",
            "consent_evidence": "",
            **options,
        }
        job = create_import_job(path=path, **options)
        return run_import(job, dry_run=dry_run, actor=options["actor"])

    return run


def _state(phone=PHONE, channel="SMS"):
    identity = ChannelIdentity.objects.get(channel=channel, identity=phone)
    return identity.marketing_consent


# --- merging -------------------------------------------------------------------


def test_an_existing_identity_merges_into_its_contact(
    make_contact, make_list, write_csv, run_csv
):
    spring = make_list("Spring")
    contact = make_contact(
        PHONE,
        first_name="Old",
        last_name="Name",
        language="de",
        attributes={"tier": "gold", "city": "Berlin"},
    )
    path = write_csv(
        [
            ["phone", "first_name", "last_name", "tier", "shoe size"],
            ["0049 151 2345 6789", "New", "", "platinum", "42"],
        ]
    )
    job = run_csv(path, target_list=spring)

    assert (job.rows_ok, job.contacts_created, job.contacts_merged) == (1, 0, 1)
    assert Contact.objects.count() == 1
    contact.refresh_from_db()
    assert contact.first_name == "New"
    assert contact.last_name == "Name"  # an empty cell does not erase a value
    assert contact.language == "de"
    assert contact.attributes == {
        "tier": "platinum",
        "city": "Berlin",
        "shoe_size": "42",
    }
    assert list(spring.contacts.all()) == [contact]
    assert ChannelIdentity.objects.count() == 1


def test_a_new_identity_joins_the_contact_named_by_its_external_id(
    make_contact, write_csv, run_csv
):
    contact = make_contact(PHONE, external_id="CRM-1")
    path = write_csv(
        [
            ["phone", "channel", "customer_id", "first_name"],
            [PHONE, "WHATSAPP", "CRM-1", "Eva"],
        ]
    )
    job = run_csv(path)
    assert (job.contacts_created, job.contacts_merged) == (0, 1)
    assert set(contact.identities.values_list("channel", flat=True)) == {
        "SMS",
        "WHATSAPP",
    }
    contact.refresh_from_db()
    assert contact.first_name == "Eva"


def test_an_identity_whose_external_id_is_another_contact_is_rejected(
    make_contact, write_csv, run_csv
):
    owner = make_contact(PHONE, first_name="Owner", external_id="CRM-1")
    other = make_contact(OTHER, first_name="Other")
    path = write_csv(
        [["phone", "external_id", "first_name"], [OTHER, "CRM-1", "Hijack"]]
    )
    job = run_csv(path)
    assert (job.rows_ok, job.rows_bad) == (0, 1)
    problem = job.sample_errors[0]
    assert problem["line"] == 2
    assert f"belongs to contact #{other.pk}" in problem["problem"]
    assert f"'CRM-1' is contact #{owner.pk}" in problem["problem"]
    other.refresh_from_db()
    owner.refresh_from_db()
    assert (other.first_name, other.external_id) == ("Other", "")
    assert owner.first_name == "Owner"
    assert other.identities.count() == owner.identities.count() == 1


def test_a_merge_records_the_external_id_on_a_contact_that_had_none(
    make_contact, write_csv, run_csv
):
    """Otherwise the id in the file is dropped silently, and the next file with
    that id and another number creates a second contact for the same person."""
    contact = make_contact(PHONE, first_name="Eva")
    run_csv(write_csv([["phone", "external_id"], [PHONE, "CRM-9"]]))
    contact.refresh_from_db()
    assert contact.external_id == "CRM-9"


def test_rows_sharing_an_external_id_become_one_contact(write_csv, run_csv):
    path = write_csv(
        [
            ["phone", "channel", "external_id", "first_name"],
            [PHONE, "SMS", "CRM-7", "Ann"],
            [PHONE, "WHATSAPP", "CRM-7", "Anne"],
        ]
    )
    job = run_csv(path)
    assert job.contacts_created == 1
    contact = Contact.objects.get()
    assert contact.external_id == "CRM-7"
    assert contact.first_name == "Anne"
    assert contact.identities.count() == 2


# --- consent -------------------------------------------------------------------


@pytest.fixture
def opted_out(make_contact):
    contact = make_contact(PHONE)
    record_consent(
        identity=contact.identities.get(),
        kind="OPT_OUT",
        purpose="MARKETING",
        source="INBOUND_KEYWORD",
        evidence=Evidence(note="STOP"),
        occurred_at=timezone.now() - timedelta(days=30),
    )
    return contact


@pytest.mark.parametrize("source", ["IMPORT", "FORM", "API", "ADMIN"])
def test_a_declared_opt_in_import_never_resubscribes_an_opt_out(
    opted_out, write_csv, run_csv, source
):
    before_at = opted_out.identities.get().marketing_consent_at
    path = write_csv([["phone", "first_name"], [PHONE, "Back"], [OTHER, "New"]])
    job = run_csv(
        path,
        consent_mode=ImportJob.ConsentMode.DECLARED_OPT_IN,
        consent_source=source,
        consent_evidence=EVIDENCE,
    )
    assert job.kept_opted_out == 1
    assert job.opt_ins == 1  # only the new number
    identity = opted_out.identities.get()
    assert identity.marketing_consent == ConsentState.OPTED_OUT
    assert identity.marketing_consent_at == before_at
    assert not identity.consent_events.filter(kind="OPT_IN").exists()
    assert _state(OTHER) == ConsentState.OPTED_IN


def test_a_consent_column_opt_in_dated_after_the_opt_out_keeps_it_opted_out(
    opted_out, write_csv, run_csv
):
    yesterday = (timezone.now() - timedelta(days=1)).date().isoformat()
    path = write_csv([["phone", "consent", "consent_date"], [PHONE, "yes", yesterday]])
    job = run_csv(
        path, consent_mode=ImportJob.ConsentMode.COLUMN, consent_evidence=EVIDENCE
    )
    assert (job.rows_ok, job.kept_opted_out, job.opt_ins) == (1, 1, 0)
    assert _state() == ConsentState.OPTED_OUT
    assert opted_out.identities.get().consent_events.count() == 1


def test_the_import_command_never_resubscribes_an_opt_out(opted_out, write_csv):
    out = io.StringIO()
    call_command(
        "import_contacts",
        write_csv([["phone"], [PHONE]]),
        "--declare-opt-in",
        "--evidence",
        EVIDENCE,
        stdout=out,
    )
    assert "1 kept opted out" in out.getvalue()
    assert _state() == ConsentState.OPTED_OUT


def test_an_import_can_opt_out(make_contact, write_csv, run_csv):
    contact = make_contact(PHONE, consent=ConsentState.OPTED_IN)
    path = write_csv([["phone", "consent"], [PHONE, "unsubscribed"]])
    job = run_csv(
        path, consent_mode=ImportJob.ConsentMode.COLUMN, consent_evidence=EVIDENCE
    )
    assert job.opt_outs == 1
    assert contact.identities.get().marketing_consent == ConsentState.OPTED_OUT


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("yes", ConsentState.OPTED_IN),
        ("Y", ConsentState.OPTED_IN),
        ("TRUE", ConsentState.OPTED_IN),
        ("1", ConsentState.OPTED_IN),
        ("opt_in", ConsentState.OPTED_IN),
        ("Opt In", ConsentState.OPTED_IN),
        ("opt-in", ConsentState.OPTED_IN),
        ("subscribed", ConsentState.OPTED_IN),
        ("no", ConsentState.OPTED_OUT),
        ("N", ConsentState.OPTED_OUT),
        ("false", ConsentState.OPTED_OUT),
        ("0", ConsentState.OPTED_OUT),
        ("opt_out", ConsentState.OPTED_OUT),
        ("Opt-Out", ConsentState.OPTED_OUT),
        ("STOP", ConsentState.OPTED_OUT),
        ("unsubscribed", ConsentState.OPTED_OUT),
        ("", ConsentState.UNKNOWN),
        ("  ", ConsentState.UNKNOWN),
    ],
)
def test_consent_comes_from_the_column(write_csv, run_csv, value, expected):
    path = write_csv([["phone", "subscribed"], [PHONE, value]])
    job = run_csv(
        path, consent_mode=ImportJob.ConsentMode.COLUMN, consent_evidence=EVIDENCE
    )
    assert job.rows_ok == 1
    assert _state() == expected
    assert ConsentEvent.objects.count() == (expected != ConsentState.UNKNOWN)


def test_consent_events_from_an_import_carry_the_evidence(
    write_csv, run_csv, compliance_admin
):
    path = write_csv(
        [
            ["phone", "consent", "consent_at"],
            [PHONE, "yes", "2024-03-01T09:30:00Z"],
            [OTHER, "no", "2024-03-02"],
        ]
    )
    job = run_csv(
        path,
        consent_mode=ImportJob.ConsentMode.COLUMN,
        consent_evidence=EVIDENCE,
        actor=compliance_admin,
    )
    events = {e.identity.identity: e for e in ConsentEvent.objects.all()}
    assert set(events) == {PHONE, OTHER}
    for line, phone in ((2, PHONE), (3, OTHER)):
        event = events[phone]
        assert event.evidence_wording == EVIDENCE
        assert event.evidence_note == f"crm-export.csv, line {line}"
        assert event.source == "IMPORT"
        assert event.import_job == job
        assert event.actor == compliance_admin
        assert event.actor_label == f"import #{job.pk} by carla"
    assert events[PHONE].kind == "OPT_IN"
    assert events[PHONE].occurred_at.isoformat() == "2024-03-01T09:30:00+00:00"
    assert events[OTHER].kind == "OPT_OUT"
    assert events[OTHER].occurred_at.isoformat() == "2024-03-02T00:00:00+00:00"
    identity = ChannelIdentity.objects.get(identity=PHONE)
    assert identity.marketing_consent_at == events[PHONE].occurred_at


def test_a_declared_opt_in_covers_every_row_with_its_evidence(write_csv, run_csv):
    path = write_csv([["phone"], [PHONE], [OTHER]])
    job = run_csv(
        path,
        consent_mode=ImportJob.ConsentMode.DECLARED_OPT_IN,
        consent_source="FORM",
        consent_evidence=EVIDENCE,
        purpose="TRANSACTIONAL",
    )
    assert job.opt_ins == 2
    for identity in ChannelIdentity.objects.all():
        assert identity.transactional_consent == ConsentState.OPTED_IN
        assert identity.marketing_consent == ConsentState.UNKNOWN
        event = identity.consent_events.get()
        assert (event.kind, event.source, event.purpose) == (
            "OPT_IN",
            "FORM",
            "TRANSACTIONAL",
        )
        assert event.evidence_wording == EVIDENCE


@pytest.mark.parametrize(
    "mode", [ImportJob.ConsentMode.COLUMN, ImportJob.ConsentMode.DECLARED_OPT_IN]
)
@pytest.mark.parametrize("evidence", ["", "   \n"])
def test_consent_without_evidence_cannot_start(write_csv, run_csv, mode, evidence):
    path = write_csv([["phone", "consent"], [PHONE, "yes"]])
    with pytest.raises(ImportSetupError, match="evidence"):
        run_csv(path, consent_mode=mode, consent_evidence=evidence)
    assert ImportJob.objects.count() == 0


def test_the_command_needs_evidence_for_consent(write_csv, db):
    with pytest.raises(CommandError, match="evidence"):
        call_command(
            "import_contacts",
            write_csv([["phone"], [PHONE]]),
            "--declare-opt-in",
            stdout=io.StringIO(),
        )
    assert ImportJob.objects.count() == 0


def test_an_import_without_consent_records_no_events(write_csv, run_csv):
    path = write_csv([["phone", "consent"], [PHONE, "yes"]])
    job = run_csv(path, consent_mode=ImportJob.ConsentMode.NONE)
    assert job.rows_ok == 1
    assert ConsentEvent.objects.count() == 0
    assert _state() == ConsentState.UNKNOWN


# --- attributes -----------------------------------------------------------------


def test_other_columns_become_attributes_with_placeholder_safe_keys(write_csv, run_csv):
    headers = [
        "phone",
        "Loyalty Tier",
        "2nd Choice",
        "Größe",
        "e-mail address",
        "  Favourite colour  ",
        "Points (2024)",
    ]
    path = write_csv(
        [headers, [PHONE, "Gold", "Tea", "XL", "a@example.com", "blue", "1200"]]
    )
    job = run_csv(path)
    assert job.rows_ok == 1
    attributes = Contact.objects.get().attributes
    assert attributes == {
        "loyalty_tier": "Gold",
        "_2nd_choice": "Tea",
        "gr_e": "XL",
        "e_mail_address": "a@example.com",
        "favourite_colour": "blue",
        "points_2024": "1200",
    }
    for key in attributes:
        assert PLACEHOLDER_KEY.fullmatch(key), key


def test_empty_cells_add_no_attributes(write_csv, run_csv):
    run_csv(write_csv([["phone", "tier", "city"], [PHONE, "", "Bonn"]]))
    assert Contact.objects.get().attributes == {"city": "Bonn"}


def test_two_columns_with_the_same_attribute_key_lose_no_value(write_csv, run_csv):
    """The headers "Loyalty Tier" and "loyalty-tier" both give loyalty_tier."""
    path = write_csv(
        [["phone", "Loyalty Tier", "loyalty-tier"], [PHONE, "Gold", "Silver"]]
    )
    try:
        run_csv(path)
    except ImportSetupError:
        return  # refusing the mapping up front is a fine answer
    values = set(Contact.objects.get().attributes.values())
    assert {"Gold", "Silver"} <= values
