"""A number is a fact, not a field (issue 11, deliverable 1).

A stored identity's value never changes: a new number is a new identity with
no consent, and the old one, retired, keeps its ledger and its opt-out and is
never sent to again.
"""

import pytest
from django.contrib.admin.models import LogEntry
from django.urls import reverse

from contacts.importing.importer import run_import
from contacts.importing.jobs import create_import_job
from contacts.models import (
    AuditEvent,
    ChannelIdentity,
    ConsentState,
    Contact,
    ImmutableIdentityError,
    ImportJob,
)
from contacts.services.consent import Evidence, record_consent
from contacts.services.identities import IdentityTaken, replace_identity
from contacts.services.suppression import SuppressedIdentityError, is_suppressed

OLD, NEW = "+12012501005", "+12012509999"
IN, OUT, UNKNOWN = ConsentState.OPTED_IN, ConsentState.OPTED_OUT, ConsentState.UNKNOWN


def _inline_post(contact: Contact, identity: ChannelIdentity, value: str) -> dict:
    """The contact change form as the browser posts it, the identity edited."""
    return {
        "first_name": contact.first_name,
        "last_name": contact.last_name,
        "external_id": contact.external_id,
        "language": "",
        "time_zone": "",
        "attributes": "{}",
        "identities-TOTAL_FORMS": "1",
        "identities-INITIAL_FORMS": "1",
        "identities-MIN_NUM_FORMS": "0",
        "identities-MAX_NUM_FORMS": "1000",
        "identities-0-id": str(identity.pk),
        "identities-0-contact": str(contact.pk),
        "identities-0-channel": "SMS",
        "identities-0-identity": value,
        "memberships-TOTAL_FORMS": "0",
        "memberships-INITIAL_FORMS": "0",
        "memberships-MIN_NUM_FORMS": "0",
        "memberships-MAX_NUM_FORMS": "1000",
    }


# --- the model refuses every other path ---------------------------------------


def test_saving_an_identity_with_another_number_is_refused(make_contact):
    identity = make_contact(OLD, consent=IN).identities.get()
    identity.identity = NEW
    with pytest.raises(ImmutableIdentityError):
        identity.save()
    assert ChannelIdentity.objects.get(pk=identity.pk).identity == OLD


def test_bulk_writes_cannot_change_a_number_either(make_contact):
    identity = make_contact(OLD).identities.get()
    with pytest.raises(ImmutableIdentityError):
        ChannelIdentity.objects.filter(pk=identity.pk).update(identity=NEW)
    identity.identity = NEW
    with pytest.raises(ImmutableIdentityError):
        ChannelIdentity.objects.bulk_update([identity], ["identity"])
    assert ChannelIdentity.objects.get(pk=identity.pk).identity == OLD


def test_saving_other_fields_of_an_identity_still_works(make_contact):
    identity = make_contact(OLD).identities.get()
    identity.origin_line = 7
    identity.save()
    assert ChannelIdentity.objects.get(pk=identity.pk).origin_line == 7


# --- the admin ----------------------------------------------------------------


def test_an_edited_number_does_not_inherit_consent(
    client, compliance_admin, make_contact
):
    """Found problem 1: editing the inline kept the row, so the new number got
    the old one's opt-in. The stored row is read-only now: the post changes
    nothing, and no identity is created by it."""
    person = make_contact(OLD, consent=IN)
    identity = person.identities.get()
    client.force_login(compliance_admin)
    url = reverse("admin:contacts_contact_change", args=[person.pk])

    page = client.get(url).content.decode()
    assert 'name="identities-0-identity"' not in page  # shown, not an input
    assert OLD in page
    response = client.post(url, _inline_post(person, identity, "(201) 250-9999"))

    assert response.status_code == 302
    assert list(person.identities.values_list("identity", "marketing_consent")) == [
        (OLD, IN)
    ]
    assert not ChannelIdentity.objects.filter(identity=NEW).exists()


def test_the_contact_page_offers_replace_number_for_each_live_identity(
    client, compliance_admin, make_contact
):
    person = make_contact(OLD, consent=IN)
    identity = person.identities.get()
    client.force_login(compliance_admin)
    page = client.get(reverse("admin:contacts_contact_change", args=[person.pk]))
    replace = reverse(
        "admin:contacts_contact_replace_identity", args=[person.pk, identity.pk]
    )
    assert replace in page.content.decode()


def test_replace_number_needs_a_post_and_is_audited(
    client, compliance_admin, make_contact
):
    person = make_contact(OLD, consent=IN)
    old = person.identities.get()
    url = reverse("admin:contacts_contact_replace_identity", args=[person.pk, old.pk])
    client.force_login(compliance_admin)

    form = client.get(url, {"new_identity": NEW, "retire": "on"})
    assert form.status_code == 200
    assert person.identities.count() == 1  # a GET changes nothing

    response = client.post(
        url, {"new_identity": "(201) 250-9999", "retire": "on", "note": "ticket 42"}
    )

    assert response.status_code == 302
    old.refresh_from_db()
    new = person.identities.get(retired_at__isnull=True)
    assert (new.identity, new.marketing_consent) == (NEW, UNKNOWN)
    assert (old.identity, old.marketing_consent) == (OLD, IN)
    assert old.retired_at is not None
    audit = AuditEvent.objects.filter(action=AuditEvent.Action.IDENTITY).get()
    assert audit.actor == compliance_admin
    assert "+1201•••1005" in audit.summary
    assert "+1201•••9999" in audit.summary
    assert OLD not in audit.summary
    assert NEW not in audit.summary
    assert "ticket 42" in audit.summary
    log = LogEntry.objects.get(object_id=str(person.pk))
    assert "+1201•••9999" in log.get_change_message()


def test_replace_number_is_for_those_who_may_change_contacts(
    client, marketer, make_contact
):
    person = make_contact(OLD)
    old = person.identities.get()
    url = reverse("admin:contacts_contact_replace_identity", args=[person.pk, old.pk])
    client.force_login(marketer)
    assert client.post(url, {"new_identity": NEW, "retire": "on"}).status_code == 403
    assert person.identities.count() == 1


def test_the_identity_page_shows_a_stored_number_read_only(
    client, compliance_admin, make_contact
):
    identity = make_contact(OLD).identities.get()
    client.force_login(compliance_admin)
    url = reverse("admin:contacts_channelidentity_change", args=[identity.pk])
    response = client.post(url, {"channel": "SMS", "identity": NEW})
    assert response.status_code == 302
    identity.refresh_from_db()
    assert identity.identity == OLD


# --- the service --------------------------------------------------------------


def test_a_replaced_number_keeps_its_ledger_and_its_opt_out(
    compliance_admin, make_contact
):
    person = make_contact(OLD, consent=OUT)
    old = person.identities.get()
    events = old.consent_events.count()

    new = replace_identity(old, NEW, actor=compliance_admin)

    old.refresh_from_db()
    assert old.consent_events.count() == events
    assert old.marketing_consent == OUT
    assert old.retired_at is not None
    assert new.consent_events.count() == 0
    assert new.marketing_consent == UNKNOWN
    # The old number stays suppressed: it cannot come back with fresh consent.
    assert is_suppressed("SMS", OLD)
    with pytest.raises(SuppressedIdentityError):
        replace_identity(new, OLD, actor=compliance_admin)


def test_a_number_stored_on_another_contact_is_not_taken_over(
    compliance_admin, make_contact
):
    make_contact(NEW)
    old = make_contact(OLD).identities.get()
    with pytest.raises(IdentityTaken):
        replace_identity(old, "(201) 250-9999", actor=compliance_admin)
    old.refresh_from_db()
    assert old.retired_at is None


def test_a_retired_identity_cannot_be_opted_in(compliance_admin, make_contact):
    old = make_contact(OLD, consent=OUT).identities.get()
    replace_identity(old, NEW, actor=compliance_admin)
    old.refresh_from_db()
    with pytest.raises(SuppressedIdentityError):
        record_consent(
            identity=old,
            kind="OPT_IN",
            purpose="MARKETING",
            source="ADMIN",
            evidence=Evidence(note="by phone"),
        )
    old.refresh_from_db()
    assert old.marketing_consent == OUT


def test_replacing_without_retiring_keeps_both_numbers(compliance_admin, make_contact):
    old = make_contact(OLD, consent=IN).identities.get()
    new = replace_identity(old, NEW, actor=compliance_admin, retire=False)
    old.refresh_from_db()
    assert old.retired_at is None
    assert new.retired_at is None


# --- the importer -------------------------------------------------------------


def _import(write_csv, rows, consent_mode=ImportJob.ConsentMode.DECLARED_OPT_IN):
    path = write_csv([["phone", "external_id", "first_name"], *rows])
    job = create_import_job(
        path=path,
        original_name="crm.csv",
        actor=None,
        target_list=None,
        default_channel="SMS",
        purpose="MARKETING",
        consent_mode=consent_mode,
        consent_source="IMPORT",
        consent_evidence="CRM export",
    )
    return run_import(job, dry_run=False)


def test_an_import_with_a_new_number_for_a_known_contact_adds_an_identity(
    make_contact, write_csv
):
    person = make_contact(OLD, consent=OUT, external_id="CRM-1")

    job = _import(write_csv, [[NEW, "CRM-1", "Ada"]])

    assert job.rows_ok == 1
    numbers = dict(person.identities.values_list("identity", "marketing_consent"))
    assert numbers == {OLD: OUT, NEW: IN}


def test_an_import_cannot_bring_back_a_replaced_number(
    compliance_admin, make_contact, write_csv
):
    """Found problem 1: an opted-out number edited away came back, opted in,
    with the next import. Now it stays retired and opted out."""
    person = make_contact(OLD, consent=OUT)
    replace_identity(person.identities.get(), NEW, actor=compliance_admin)
    contacts = Contact.objects.count()

    job = _import(write_csv, [["(201) 250-1005", "", "Comeback"]])

    assert (job.rows_ok, job.rows_bad) == (0, 1)
    assert "retired" in job.sample_errors[0]["problem"]
    assert Contact.objects.count() == contacts
    old = ChannelIdentity.objects.get(identity=OLD)
    assert old.marketing_consent == OUT
    assert old.retired_at is not None
