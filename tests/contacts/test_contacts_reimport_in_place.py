"""A re-import rewrites the contacts and identities it names in place on
PostgreSQL (HOT updates): no index holds a contact's name
(test_contact_name_index.py), and the pages keep room for each row's new
version, so no index entry is written for them."""

import pytest
from django.db import connection

from contacts.importing.importer import run_import
from contacts.models import Contact, ImportJob

pytestmark = pytest.mark.skipif(
    connection.vendor != "postgresql", reason="HOT updates are PostgreSQL's"
)
PEOPLE = 400  # several pages of each table
HEADER = ["external_id", "first_name", "last_name", "phone", "consent", "city"]


def updates_so_far(table: str) -> tuple[int, int]:
    """(rows updated, of which HOT) in `table` by this transaction (a test
    runs in one)."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT n_tup_upd, n_tup_hot_upd FROM pg_stat_xact_user_tables "
            "WHERE relname = %s",
            [table],
        )
        return cursor.fetchone()


def test_a_reimport_rewrites_contacts_and_identities_in_place(column_consent_import):
    def people(name, city):
        return [
            [f"C{i}", f"{name}{i}", f"Family{i}", f"+4915123{i:06d}", "yes", city]
            for i in range(PEOPLE)
        ]

    def import_file(rows, name):
        job = run_import(column_consent_import([HEADER, *rows], name), dry_run=False)
        assert job.status == ImportJob.Status.DONE, job.error
        return job

    import_file(people("Anna", "Berlin"), "spring.csv")
    before = {
        t: updates_so_far(t) for t in ("contacts_contact", "contacts_channelidentity")
    }
    job = import_file(people("Annabel", "Hamburg"), "autumn.csv")

    assert job.contacts_merged == PEOPLE
    assert Contact.objects.filter(
        first_name="Annabel7", attributes__city="Hamburg"
    ).exists()
    for table, (updated, hot) in before.items():
        updated_now, hot_now = updates_so_far(table)
        # Every contact (new names and city) and every identity (its
        # repeated opt-in moves its consent time) was rewritten, in place.
        assert updated_now - updated >= PEOPLE, table
        assert hot_now - hot == updated_now - updated, table


def test_the_pages_keep_room_for_new_row_versions(db):
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT relname, reloptions FROM pg_class WHERE relname IN "
            "('contacts_contact', 'contacts_channelidentity')"
        )
        assert dict(cursor.fetchall()) == {
            "contacts_contact": ["fillfactor=50"],
            "contacts_channelidentity": ["fillfactor=50"],
        }
