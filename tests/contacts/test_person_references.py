"""Contacts and identities are erased, never deleted, so the references an
import writes for every line (identity to contact, list membership to
contact, ledger entry to identity) carry no database constraint
(contacts.references.never_deleted): Django still applies their on_delete rules,
a contact list (which can be deleted) keeps its constraint, and what an
import writes points at rows that exist."""

import pytest
from django.db import connection
from django.db.models import ProtectedError

from contacts.importing.importer import run_import
from contacts.models import (
    ChannelIdentity,
    ConsentEvent,
    Contact,
    ImportJob,
    ListMembership,
)

HEADER = ["external_id", "first_name", "phone", "channel", "consent"]


def _foreign_keys(table: str) -> dict[tuple, tuple]:
    with connection.cursor() as cursor:
        found = connection.introspection.get_constraints(cursor, table)
    return {
        tuple(c["columns"]): c["foreign_key"]
        for c in found.values()
        if c["foreign_key"]
    }


@pytest.mark.django_db
def test_the_references_an_import_writes_per_line_are_not_checked_at_commit():
    assert ("contact_id",) not in _foreign_keys("contacts_channelidentity")
    assert ("identity_id",) not in _foreign_keys("contacts_consentevent")
    members = _foreign_keys("contacts_listmembership")
    assert ("contact_id",) not in members
    assert members[("contact_list_id",)] == ("contacts_contactlist", "id")


def test_a_contact_with_an_identity_cannot_be_deleted(make_contact):
    contact = make_contact()
    with pytest.raises(ProtectedError):
        contact.delete()
    assert Contact.objects.filter(pk=contact.pk).exists()


def test_an_identity_with_ledger_entries_cannot_be_deleted(make_contact):
    identity = make_contact(consent="OPTED_IN").identities.get()
    with pytest.raises(ProtectedError):
        identity.delete()
    with pytest.raises(ProtectedError):
        ChannelIdentity.objects.filter(pk=identity.pk).delete()
    assert ConsentEvent.objects.filter(identity=identity).count() == 1


def test_deleting_a_list_deletes_its_memberships_and_keeps_the_people(
    make_contact, make_list
):
    kept, gone = make_list(), make_list()
    contact = make_contact(lists=[kept, gone])
    gone.delete()
    assert list(contact.memberships.values_list("contact_list", flat=True)) == [kept.pk]


def _orphans() -> dict[str, int]:
    return {
        "identities without their contact": ChannelIdentity.objects.exclude(
            contact_id__in=Contact.objects.values("pk")
        ).count(),
        "memberships without their contact": ListMembership.objects.exclude(
            contact_id__in=Contact.objects.values("pk")
        ).count(),
        "ledger entries without their identity": ConsentEvent.objects.exclude(
            identity_id__in=ChannelIdentity.objects.values("pk")
        ).count(),
    }


def test_what_imports_write_points_at_rows_that_exist(column_consent_import, make_list):
    target = make_list()

    def run(rows, name):
        job = column_consent_import([HEADER, *rows], name, target_list=target)
        job = run_import(job, dry_run=False, actor=None)
        assert job.status == ImportJob.Status.DONE, job.error

    run(
        [
            ["C1", "Anna", "+4915123456789", "SMS", "yes"],
            ["C1", "Anna", "+4915123456789", "WHATSAPP", "yes"],
            ["C2", "Ben", "+4915123456780", "SMS", "no"],
            ["", "Chloé", "+33612345678", "SMS", "yes"],
        ],
        "first.csv",
    )
    # Again, changed: a merge by external id, a new identity of a known
    # contact, an opt-out, a new person.
    run(
        [
            ["C1", "Anna-Lena", "+4915123456789", "SMS", "no"],
            ["C2", "Ben", "+4915123456781", "SMS", "yes"],
            ["C3", "Dana", "+4915123456782", "SMS", "yes"],
        ],
        "second.csv",
    )
    assert Contact.objects.count() == 4
    assert ChannelIdentity.objects.count() == 6
    assert ConsentEvent.objects.count() == 7
    assert ListMembership.objects.filter(contact_list=target).count() == 4
    assert _orphans() == dict.fromkeys(_orphans(), 0)


@pytest.mark.django_db
def test_the_orphan_count_sees_a_reference_to_a_missing_row():
    # What the database no longer refuses, the count above would show.
    ChannelIdentity.objects.create(
        contact_id=10**9, channel="SMS", identity="+4915123450000"
    )
    assert _orphans()["identities without their contact"] == 1
