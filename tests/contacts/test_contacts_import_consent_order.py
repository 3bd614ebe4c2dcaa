"""Imports carrying consent dates older than what the ledger knows, erased
numbers on other phone channels, and uploaded files after the import."""

import os
from datetime import timedelta

import pytest
from django.conf import settings
from django.utils import timezone

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
from contacts.services.consent import Evidence, derive_state, record_consent
from contacts.services.erasure import erase_contact

PHONE = "+4915123456789"


def _import(path, **options):
    job = create_import_job(
        path=path,
        original_name="file.csv",
        actor=None,
        target_list=None,
        default_channel=options.pop("channel", "SMS"),
        purpose="MARKETING",
        consent_mode=options.pop("mode", ImportJob.ConsentMode.COLUMN),
        consent_source="FORM",
        consent_evidence="Signed paper forms",
    )
    return run_import(job, dry_run=False)


def _stored_equals_ledger(identity):
    identity.refresh_from_db()
    folded = derive_state(ConsentEvent.objects.filter(identity=identity))
    assert (identity.marketing_consent, identity.marketing_consent_at) == folded[
        "MARKETING"
    ]


def test_an_older_opt_out_in_a_file_does_not_override_a_newer_form_opt_in(
    make_contact, write_csv
):
    contact = make_contact(PHONE)
    identity = contact.identities.get()
    record_consent(
        identity=identity,
        kind="OPT_IN",
        purpose="MARKETING",
        source="FORM",
        evidence=Evidence(note="web form"),
        occurred_at=timezone.now(),
    )
    old = (timezone.now() - timedelta(days=30)).date().isoformat()
    job = _import(write_csv([["phone", "consent", "consent_at"], [PHONE, "no", old]]))
    assert job.opt_outs == 1
    identity.refresh_from_db()
    assert identity.marketing_consent == ConsentState.OPTED_IN
    _stored_equals_ledger(identity)


def test_a_file_opt_in_dated_before_a_stop_keeps_the_person_opted_out(
    make_contact, write_csv
):
    contact = make_contact(PHONE)
    identity = contact.identities.get()
    record_consent(
        identity=identity,
        kind="OPT_OUT",
        purpose="MARKETING",
        source="INBOUND_KEYWORD",
        evidence=Evidence(wording="STOP"),
        occurred_at=timezone.now() - timedelta(days=1),
    )
    older = (timezone.now() - timedelta(days=10)).date().isoformat()
    newer = timezone.now().isoformat()
    for when in (older, newer):
        job = _import(
            write_csv([["phone", "consent", "consent_at"], [PHONE, "yes", when]])
        )
        assert job.kept_opted_out == 1
        identity.refresh_from_db()
        assert identity.marketing_consent == ConsentState.OPTED_OUT
        _stored_equals_ledger(identity)


@pytest.mark.parametrize("channel", ["WHATSAPP", "RCS", "SMS"])
def test_an_erased_number_stays_suppressed_on_every_phone_channel(
    make_contact, write_csv, channel
):
    erase_contact(contact=make_contact(PHONE, channel="SMS"), actor=None)
    job = _import(
        write_csv([["phone", "channel"], [PHONE, channel]]),
        mode=ImportJob.ConsentMode.NONE,
    )
    assert job.rows_ok == 0
    assert "erased" in job.sample_errors[0]["problem"]
    assert not ChannelIdentity.objects.filter(identity=PHONE).exists()


@pytest.mark.parametrize("clock_behind", [timedelta(0), timedelta(minutes=9)])
def test_a_number_erased_while_the_import_runs_is_refused_in_the_chunks_after(
    make_contact, write_csv, monkeypatch, clock_behind
):
    # The import holds the erased numbers it found at its start and tops them
    # up before each chunk: an erasure between two chunks counts at once, also
    # when the erasing machine's clock is behind (within the margin).
    monkeypatch.setattr(importer, "CHUNK_ROWS", 2)
    monkeypatch.setattr(importer, "SQLITE_CHUNK_ROWS", 2)
    late = "+4915123450009"
    owner = make_contact(late, channel="SMS")
    erase_contact(contact=make_contact(PHONE, channel="SMS"), actor=None)

    def erase_after_first_chunk(job):
        if owner.erased_at is None:
            erase_contact(contact=owner, actor=None)
            owner.erased_at = timezone.now() - clock_behind
            Contact.objects.filter(pk=owner.pk).update(erased_at=owner.erased_at)

    monkeypatch.setattr(importer, "after_chunk", erase_after_first_chunk)
    rows = [["phone", "channel"], ["+4915123450001", "SMS"], [PHONE, "WHATSAPP"]]
    rows += [["+4915123450002", "SMS"], [late, "WHATSAPP"]]
    job = _import(write_csv(rows), mode=ImportJob.ConsentMode.NONE)
    assert job.rows_ok == 2
    assert [e["line"] for e in job.sample_errors] == [3, 5]
    assert all("erased" in e["problem"] for e in job.sample_errors)
    assert not ChannelIdentity.objects.filter(identity__in=[PHONE, late]).exists()


def test_an_uploaded_file_is_deleted_once_imported_but_a_command_line_file_is_kept(
    db, write_csv
):
    kept = write_csv([["phone"], [PHONE]])
    _import(kept, mode=ImportJob.ConsentMode.NONE)
    assert os.path.exists(kept)

    folder = os.path.join(settings.MEDIA_ROOT, "imports")
    os.makedirs(folder, exist_ok=True)
    uploaded = os.path.join(folder, "upload-test.csv")
    with open(uploaded, "w") as f:
        f.write("phone\n+4915123456780\n")
    job = _import(uploaded, mode=ImportJob.ConsentMode.NONE)
    assert job.status == ImportJob.Status.DONE
    assert not os.path.exists(uploaded)
