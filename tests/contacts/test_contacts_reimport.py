"""Importing a changed export of the same people again (the fast set-based
path): names, attributes and consent follow the file, opt-outs stay, every
consent line of the file is in the ledger with its evidence, and the
segment facts match a recomputation."""

import pytest

from contacts import segment_facts
from contacts.importing import importer
from contacts.importing.importer import run_import
from contacts.importing.jobs import create_import_job
from contacts.models import (
    ChannelIdentity,
    ConsentEvent,
    ConsentState,
    Contact,
    ImportJob,
)

EVIDENCE = "Sign-up form: 'Send me offers by text', 2025"
HEADER = ["external_id", "first_name", "phone", "channel", "consent", "city"]


@pytest.fixture
def import_file(db, write_csv):
    def run(rows, name):
        path = write_csv([HEADER, *rows], name=name)
        job = create_import_job(
            path=path,
            original_name=name,
            actor=None,
            target_list=None,
            default_channel="SMS",
            purpose="MARKETING",
            consent_mode=ImportJob.ConsentMode.COLUMN,
            consent_source="IMPORT",
            consent_evidence=EVIDENCE,
        )
        job = run_import(job, dry_run=False, actor=None)
        assert job.status == ImportJob.Status.DONE, job.error
        return job

    return run


def _state(phone):
    return ChannelIdentity.objects.get(identity=phone).marketing_consent


def test_a_changed_file_imported_again_updates_people_and_keeps_opt_outs(
    import_file,
):
    import_file(
        [
            ["C1", "Anna", "+4915123456789", "SMS", "yes", "Berlin"],
            ["C2", "Ben", "+4915123456780", "SMS", "yes", "Köln"],
            ["C3", "Chloé", "+33612345678", "SMS", "no", "Paris"],
        ],
        "spring.csv",
    )
    job = import_file(
        [
            ["C1", "Annabel", "+4915123456789", "SMS", "yes", "Hamburg"],
            ["C2", "Benjamin", "+4915123456780", "SMS", "no", "Bonn"],
            ["C3", "Chloé", "+33612345678", "SMS", "yes", "Lyon"],
        ],
        "autumn.csv",
    )

    assert job.contacts_created == 0
    assert job.contacts_merged == 3
    assert Contact.objects.count() == 3
    anna = Contact.objects.get(external_id="C1")
    assert anna.first_name == "Annabel"
    assert anna.attributes == {"city": "Hamburg"}
    assert Contact.objects.get(external_id="C2").first_name == "Benjamin"
    assert Contact.objects.get(external_id="C3").attributes == {"city": "Lyon"}
    # Ben opted out in the new file; Chloé's old opt-out beats the file's yes.
    assert _state("+4915123456780") == ConsentState.OPTED_OUT
    assert _state("+33612345678") == ConsentState.OPTED_OUT
    assert _state("+4915123456789") == ConsentState.OPTED_IN
    assert job.opt_outs == 1
    assert job.kept_opted_out == 1
    # Each consent line of the second file is in the ledger, with its
    # evidence and its line (the kept opt-in changes nothing and is counted).
    events = ConsentEvent.objects.filter(import_job=job).order_by("evidence_note")
    assert [(e.identity.identity, e.kind, e.evidence_note) for e in events] == [
        ("+4915123456789", "OPT_IN", "autumn.csv, line 2"),
        ("+4915123456780", "OPT_OUT", "autumn.csv, line 3"),
    ]
    assert {e.evidence_wording for e in events} == {EVIDENCE}
    # Segments count from the facts: Ben's opt-out is there, nothing drifted.
    ben = Contact.objects.get(external_id="C2")
    assert "|SMS:MARKETING:OPTED_OUT|" in ben.segment_facts
    assert "|SMS:MARKETING:OPTED_IN|" not in ben.segment_facts
    assert segment_facts.drift() == []


def test_new_contacts_get_the_facts_a_recomputation_gives(import_file, monkeypatch):
    # One row per chunk: Dora is created in one chunk and gets her WhatsApp
    # number in a later one, where she is an existing contact.
    monkeypatch.setattr(importer, "CHUNK_ROWS", 1)
    monkeypatch.setattr(importer, "SQLITE_CHUNK_ROWS", 1)
    import_file(
        [
            ["D1", "Dora", "+4915123456781", "SMS", "yes", ""],
            ["D1", "Dora", "+4915123456781", "WHATSAPP", "no", ""],
            ["E1", "Emil", "+12042345678", "SMS", "", ""],
            ["", "Fay", "+447400123456", "SMS", "yes", ""],
        ],
        "new.csv",
    )
    dora = Contact.objects.get(external_id="D1")
    assert "|WHATSAPP:MARKETING:OPTED_OUT|" in dora.segment_facts
    assert "|SMS:MARKETING:OPTED_IN|" in dora.segment_facts
    assert "|@CA|" in Contact.objects.get(external_id="E1").segment_facts
    assert "|@GB|" in Contact.objects.get(first_name="Fay").segment_facts
    assert segment_facts.drift() == []


def test_a_file_imported_twice_unchanged_changes_no_contact(import_file):
    rows = [["G1", "Greta", "+4915123456782", "SMS", "yes", "Ulm"]]
    import_file(rows, "once.csv")
    before = Contact.objects.values_list("updated_at", flat=True).get()
    job = import_file(rows, "twice.csv")
    assert job.rows_ok == 1
    assert job.contacts_merged == 1
    assert Contact.objects.values_list("updated_at", flat=True).get() == before
    # The second file's consent line is still in the ledger.
    assert ConsentEvent.objects.filter(import_job=job).count() == 1
