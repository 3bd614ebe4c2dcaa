"""Who may have lost the right to a message since a time: every way consent,
an identity or a person can change is seen (contacts.services.changes)."""

from datetime import timedelta

from django.utils import timezone

from contacts.importing.importer import run_import
from contacts.importing.jobs import create_import_job
from contacts.models import ChannelIdentity, ImportJob
from contacts.services.changes import changed_since
from contacts.services.consent import Evidence, record_consent
from contacts.services.erasure import erase_contact
from contacts.services.identities import replace_identity


def test_nothing_changed_since_now(make_contact):
    make_contact(consent="OPTED_IN")
    changes = changed_since(timezone.now())
    assert not changes
    assert changes.contact_ids == set()


def test_a_stop_reply_or_an_admin_opt_out_names_its_contact(make_contact):
    kept, leaver = make_contact(consent="OPTED_IN"), make_contact(consent="OPTED_IN")
    since = timezone.now()
    record_consent(
        identity=leaver.identities.get(),
        kind="OPT_OUT",
        purpose="MARKETING",
        source="INBOUND_KEYWORD",
        evidence=Evidence(wording="STOP"),
    )
    assert changed_since(since).contact_ids == {leaver.pk}
    assert kept.pk in changed_since(since - timedelta(minutes=1)).contact_ids


def test_an_import_that_opts_people_out_names_them(make_contact, write_csv):
    leaver = make_contact("+4915123456789", consent="OPTED_IN")
    make_contact("+4915123456780", consent="OPTED_IN")
    since = timezone.now()
    job = create_import_job(
        path=write_csv([["phone", "consent"], ["+4915123456789", "no"]]),
        original_name="crm.csv",
        actor=None,
        target_list=None,
        default_channel="SMS",
        purpose="MARKETING",
        consent_mode=ImportJob.ConsentMode.COLUMN,
        consent_source="IMPORT",
        consent_evidence="Unsubscribes from the CRM",
    )
    run_import(job, dry_run=False, actor=None)
    assert changed_since(since).contact_ids == {leaver.pk}


def test_a_replaced_number_names_its_contact(make_contact, sender):
    contact = make_contact("+14155550001", consent="OPTED_IN")
    since = timezone.now()
    replace_identity(
        ChannelIdentity.objects.get(identity="+14155550001"),
        "+14155550002",
        actor=sender,
    )
    assert changed_since(since).contact_ids == {contact.pk}


def test_an_erasure_means_everyone_must_be_checked_again(
    make_contact, compliance_admin
):
    erased = make_contact(consent="OPTED_IN")
    since = timezone.now()
    erase_contact(contact=erased, actor=compliance_admin)
    assert changed_since(since).everyone
    assert not changed_since(timezone.now()).everyone
