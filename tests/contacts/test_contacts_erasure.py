"""Erasure forgets the person, keeps them suppressed and keeps the ledger."""

import json
from datetime import timedelta

import pytest
from django.utils import timezone

from contacts.importing.importer import run_import
from contacts.importing.jobs import create_import_job
from contacts.models import (
    AuditEvent,
    ChannelIdentity,
    ConsentEvent,
    ConsentState,
    Contact,
    ImportJob,
    ListMembership,
)
from contacts.services.consent import Evidence, record_consent
from contacts.services.erasure import ERASED_PREFIX, erase_contact, erased_identity

PHONE = "+4915123456789"


@pytest.fixture
def person(make_contact, make_list):
    newsletter, vip = make_list("Newsletter"), make_list("VIP")
    contact = make_contact(
        PHONE,
        first_name="Erika",
        last_name="Mustermann",
        language="de",
        time_zone="Europe/Berlin",
        external_id="CRM-4711",
        attributes={"city": "Berlin", "tier": "gold"},
        lists=[newsletter, vip],
    )
    sms = contact.identities.get()
    whatsapp = ChannelIdentity.objects.create(
        contact=contact, channel="WHATSAPP", identity=PHONE
    )
    evidence = Evidence(
        wording="Ja, ich möchte Angebote per SMS",
        ip="203.0.113.77",
        user_agent="Mozilla/5.0 (Erika's phone)",
        note="Form at shop.example, Erika Mustermann",
    )
    at = timezone.now() - timedelta(days=10)
    record_consent(
        identity=sms,
        kind="OPT_IN",
        purpose="MARKETING",
        source="FORM",
        evidence=evidence,
        occurred_at=at,
    )
    record_consent(
        identity=whatsapp,
        kind="OPT_IN",
        purpose="TRANSACTIONAL",
        source="API",
        evidence=evidence,
        occurred_at=at,
    )
    record_consent(
        identity=whatsapp,
        kind="OPT_OUT",
        purpose="MARKETING",
        source="INBOUND_KEYWORD",
        evidence=Evidence(note="STOP"),
        occurred_at=at + timedelta(days=1),
    )
    return contact


def test_erasure_removes_personal_data(person, compliance_admin):
    erased = erase_contact(contact=person, actor=compliance_admin)
    fresh = Contact.objects.get(pk=person.pk)
    assert fresh.erased_at is not None
    assert erased.erased_at == fresh.erased_at
    for name in ("first_name", "last_name", "language", "time_zone", "external_id"):
        assert getattr(fresh, name) == "", name
    assert fresh.attributes == {}
    assert not ListMembership.objects.filter(contact=person).exists()
    assert str(fresh) == f"Erased contact #{person.pk}"


def test_erasure_replaces_identities_with_the_keyed_hash_opted_out(
    person, compliance_admin
):
    erase_contact(contact=person, actor=compliance_admin)
    identities = {i.channel: i for i in ChannelIdentity.objects.filter(contact=person)}
    assert set(identities) == {"SMS", "WHATSAPP"}
    for channel, identity in identities.items():
        assert identity.identity == erased_identity(channel, PHONE)
        assert identity.identity.startswith(ERASED_PREFIX)
        assert "4915123456789" not in identity.identity
        assert identity.marketing_consent == ConsentState.OPTED_OUT
        assert identity.transactional_consent == ConsentState.OPTED_OUT
    assert not ChannelIdentity.objects.filter(identity=PHONE).exists()


def test_the_erasure_hash_is_keyed(settings):
    settings.ERASURE_HASH_KEY = "key-one"
    one = erased_identity("SMS", PHONE)
    settings.ERASURE_HASH_KEY = "key-two"
    assert erased_identity("SMS", PHONE) != one
    assert erased_identity("SMS", PHONE) == erased_identity("SMS", PHONE)
    # A phone number is suppressed on every phone channel at once; other ids
    # only on their own channel.
    assert erased_identity("SMS", PHONE) == erased_identity("WHATSAPP", PHONE)
    assert erased_identity("MESSENGER", "psid-1") != erased_identity(
        "TELEGRAM", "psid-1"
    )


def test_erasure_keeps_the_ledger_without_personal_evidence(person, compliance_admin):
    before = set(
        ConsentEvent.objects.filter(identity__contact=person).values_list(
            "pk", "kind", "purpose", "source", "occurred_at"
        )
    )
    erase_contact(contact=person, actor=compliance_admin)
    events = ConsentEvent.objects.filter(identity__contact=person)
    after = set(events.values_list("pk", "kind", "purpose", "source", "occurred_at"))
    assert before <= after
    assert len(after) >= len(before)
    for event in events:
        assert event.evidence_ip is None
        assert event.evidence_user_agent == ""
        assert event.evidence_wording == ""
        assert event.evidence_note.startswith("[erased; sha256 of original evidence ")
        assert "Erika" not in event.evidence_note
    # Every purpose not yet opted out got an erasure opt-out in the ledger.
    erasure_events = events.filter(source="ERASURE")
    assert set(erasure_events.values_list("identity__channel", "purpose")) == {
        ("SMS", "MARKETING"),
        ("SMS", "TRANSACTIONAL"),
        ("WHATSAPP", "TRANSACTIONAL"),
    }
    assert set(erasure_events.values_list("kind", flat=True)) == {"OPT_OUT"}


def test_erasure_is_in_the_audit_trail(person, compliance_admin):
    erase_contact(contact=person, actor=compliance_admin)
    audit = AuditEvent.objects.get(action=AuditEvent.Action.ERASURE)
    assert audit.actor == compliance_admin
    assert audit.actor_label == "carla"
    assert audit.target_type == "contact"
    assert audit.target_id == str(person.pk)
    assert "Erika" not in audit.summary
    assert PHONE not in audit.summary


def test_erasing_twice_is_harmless(person, compliance_admin):
    erase_contact(contact=person, actor=compliance_admin)
    identities = list(
        ChannelIdentity.objects.filter(contact=person).values().order_by("pk")
    )
    events = ConsentEvent.objects.count()
    audits = AuditEvent.objects.count()
    first = Contact.objects.get(pk=person.pk)

    again = erase_contact(contact=person, actor=compliance_admin)

    assert again.erased_at == first.erased_at
    assert (
        list(ChannelIdentity.objects.filter(contact=person).values().order_by("pk"))
        == identities
    )
    assert ConsentEvent.objects.count() == events
    assert AuditEvent.objects.count() <= audits + 1


def _reimport(write_csv, rows, *, dry_run=False):
    path = write_csv([["phone", "first_name", "email"], *rows])
    job = create_import_job(
        path=path,
        original_name="comeback.csv",
        actor=None,
        target_list=None,
        default_channel="SMS",
        purpose="MARKETING",
        consent_mode=ImportJob.ConsentMode.DECLARED_OPT_IN,
        consent_source="IMPORT",
        consent_evidence="Trade fair sign-up sheet",
    )
    return run_import(job, dry_run=dry_run)


@pytest.mark.parametrize("written", [PHONE, "+49 (0)151 2345 6789", "0049151-23456789"])
def test_reimporting_an_erased_number_is_rejected_and_stays_suppressed(
    person, compliance_admin, write_csv, written
):
    erase_contact(contact=person, actor=compliance_admin)
    contacts = Contact.objects.count()
    identities = ChannelIdentity.objects.count()
    events = ConsentEvent.objects.count()

    job = _reimport(
        write_csv,
        [[written, "Erika", "erika@example.com"], ["+4915123456780", "Other", ""]],
    )

    assert job.status == ImportJob.Status.DONE
    assert (job.rows_ok, job.rows_bad) == (1, 1)
    assert job.sample_errors[0]["line"] == 2
    assert "erased" in job.sample_errors[0]["problem"]
    assert "suppressed" in job.sample_errors[0]["problem"]
    assert Contact.objects.count() == contacts + 1  # only the other row
    assert ChannelIdentity.objects.count() == identities + 1
    assert not ChannelIdentity.objects.filter(identity=PHONE).exists()
    assert not Contact.objects.filter(first_name="Erika").exists()
    # The one new event is the other row's opt-in; nothing for the erased number.
    assert ConsentEvent.objects.count() == events + 1
    assert not ConsentEvent.objects.filter(
        identity__contact=person, kind="OPT_IN", recorded_at__gt=job.started_at
    ).exists()
    for identity in ChannelIdentity.objects.filter(contact=person):
        assert identity.marketing_consent == ConsentState.OPTED_OUT


def test_a_dry_run_reports_the_erased_number_too(person, compliance_admin, write_csv):
    erase_contact(contact=person, actor=compliance_admin)
    job = _reimport(write_csv, [[PHONE, "Erika", ""]], dry_run=True)
    assert job.status == ImportJob.Status.VALIDATED
    assert job.rows_bad == 1
    assert "erased" in job.sample_errors[0]["problem"]


def test_a_rejected_reimport_keeps_the_erased_persons_data_out_of_the_report(
    person, compliance_admin, write_csv
):
    erase_contact(contact=person, actor=compliance_admin)
    job = _reimport(
        write_csv,
        [
            ["+49 151 23456789", "Erika", "erika@example.com"],
            ["+4915123456780", "O", ""],
        ],
    )
    with open(job.report_file, encoding="utf-8") as report:
        text = report.read()
    assert "2," in text  # the line is reported, as every rejected line is
    assert "erased person" in text
    for trace in ("23456789", "Erika", "erika@example.com"):
        assert trace not in text
    assert "23456789" not in json.dumps(job.sample_errors)


def test_files_under_media_root_lose_the_persons_rows_and_other_mentions_go(
    person, compliance_admin, settings, tmp_path
):
    settings.MEDIA_ROOT = str(tmp_path / "media")
    folder = tmp_path / "media" / "imports"
    folder.mkdir(parents=True)
    upload = folder / "pending.csv"
    upload.write_text(
        "name;phone;city\nErika M.;0151 23456789;Berlin\nOtto;0151 99999999;Bonn\n",
        encoding="utf-8",
    )
    note = folder / "notes.json"
    note.write_text('{"called": "4915123456789"}', encoding="utf-8")
    other = folder / "other.json"
    other.write_text('{"called": "4915199999999"}', encoding="utf-8")

    erase_contact(contact=person, actor=compliance_admin)

    assert upload.read_text(encoding="utf-8").splitlines() == [
        "name;phone;city",
        "Otto;0151 99999999;Bonn",
    ]
    assert not note.exists()
    assert other.exists()
