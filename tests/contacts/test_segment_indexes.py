"""The indexes that keep a segment's live count fast at 1,000,000 contacts
exist where they should and are the ones the count reads."""

from django.core.management import call_command
from django.db import connection

from campaigns.segments.evaluate import matching_contacts
from contacts.segment_indexes import SQLITE_ATTRIBUTES_INDEX

GOLD = {
    "match": "all",
    "groups": [
        {
            "match": "all",
            "conditions": [
                {"field": "attribute", "key": "tier", "op": "equals", "value": "gold"}
            ],
        }
    ],
}
FRANCE = {
    "match": "all",
    "groups": [
        {
            "match": "all",
            "conditions": [{"field": "country", "op": "equals", "value": "FR"}],
        }
    ],
}


def contact_indexes() -> set[str]:
    with connection.cursor() as cursor:
        found = connection.introspection.get_constraints(cursor, "contacts_contact")
    return {name for name, info in found.items() if info["index"]}


def plan_of(definition) -> str:
    sql, params = matching_contacts(definition).values("pk").query.sql_with_params()
    with connection.cursor() as cursor:
        cursor.execute(f"EXPLAIN QUERY PLAN {sql}", params)
        return " ".join(str(row) for row in cursor.fetchall())


def test_the_facts_index_exists_and_a_country_count_reads_it(db, make_contact):
    make_contact("+33612345678", consent="OPTED_IN")
    assert "contact_facts" in contact_indexes()
    if connection.vendor == "sqlite":
        assert "COVERING INDEX contact_facts" in plan_of(FRANCE)


def test_attribute_conditions_read_a_narrow_index_on_sqlite_only(db, make_contact):
    make_contact("+33612345678", attributes={"tier": "gold"})
    if connection.vendor == "sqlite":
        assert SQLITE_ATTRIBUTES_INDEX in contact_indexes()
        assert f"COVERING INDEX {SQLITE_ATTRIBUTES_INDEX}" in plan_of(GOLD)
    else:
        # A b-tree would refuse a contact with attributes over 2,704 bytes.
        assert SQLITE_ATTRIBUTES_INDEX not in contact_indexes()


def test_the_sqlite_index_comes_back_after_a_migrate(db):
    if connection.vendor == "sqlite":
        with connection.cursor() as cursor:
            cursor.execute(f'DROP INDEX "{SQLITE_ATTRIBUTES_INDEX}"')
    assert SQLITE_ATTRIBUTES_INDEX not in contact_indexes()
    call_command("migrate", verbosity=0)
    assert (SQLITE_ATTRIBUTES_INDEX in contact_indexes()) == (
        connection.vendor == "sqlite"
    )
