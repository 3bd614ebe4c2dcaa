"""The indexes that keep a segment's live count fast at 1,000,000 contacts
exist where they should and are the ones the count reads."""

import pytest
from django.core.management import call_command
from django.db import connection

from campaigns.segments.evaluate import condition_q, count, matching_contacts
from contacts.models import Contact
from contacts.segment_indexes import SQLITE_ATTRIBUTES_INDEX, SQLITE_INDEXES

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


def test_on_sqlite_a_country_count_reads_the_facts_index(db, make_contact):
    make_contact("+33612345678", consent="OPTED_IN")
    if connection.vendor == "sqlite":
        assert "contact_facts" in contact_indexes()
        assert "COVERING INDEX contact_facts" in plan_of(FRANCE)
    else:
        # Its planner would read all of it rather than seek the facts found.
        assert "contact_facts" not in contact_indexes()
    assert matching_contacts(FRANCE).count() == 1


def test_attribute_conditions_read_a_narrow_index_on_sqlite_only(db, make_contact):
    make_contact("+33612345678", attributes={"tier": "gold"})
    if connection.vendor == "sqlite":
        assert SQLITE_ATTRIBUTES_INDEX in contact_indexes()
        assert f"COVERING INDEX {SQLITE_ATTRIBUTES_INDEX}" in plan_of(GOLD)
    else:
        # A b-tree would refuse a contact with attributes over 2,704 bytes.
        assert SQLITE_ATTRIBUTES_INDEX not in contact_indexes()


def test_the_sqlite_indexes_come_back_after_a_migrate(db):
    # A migration that rebuilds the contacts table on SQLite drops them.
    if connection.vendor == "sqlite":
        with connection.cursor() as cursor:
            for name in SQLITE_INDEXES:
                cursor.execute(f'DROP INDEX "{name}"')
    assert not set(SQLITE_INDEXES) & contact_indexes()
    call_command("migrate", verbosity=0)
    expected = set(SQLITE_INDEXES) if connection.vendor == "sqlite" else set()
    assert set(SQLITE_INDEXES) & contact_indexes() == expected


def test_the_attributes_index_keeps_contacts_in_id_order_and_replaces_the_old(db):
    # In the order of the attributes' text, each imported contact landed on a
    # page of its own; in id order new contacts are added at the end.
    if connection.vendor != "sqlite":
        pytest.skip("the attributes index is SQLite's only")
    with connection.cursor() as cursor:
        cursor.execute(f'PRAGMA index_info("{SQLITE_ATTRIBUTES_INDEX}")')
        columns = [row[2] for row in cursor.fetchall()]
        # What an older release made: dropped by the next migrate.
        cursor.execute(
            'CREATE INDEX "contact_attributes" ON "contacts_contact" '
            '("erased_at", "attributes")'
        )
    assert columns == ["erased_at", "id", "attributes"]
    call_command("migrate", verbosity=0)
    indexes = contact_indexes()
    assert "contact_attributes" not in indexes
    assert SQLITE_ATTRIBUTES_INDEX in indexes


def test_beside_a_language_condition_the_facts_are_tested_on_its_rows(db, make_contact):
    make_contact("+33612345678", consent="OPTED_IN", language="fr")
    french_opted_in = {
        "match": "all",
        "groups": [
            {
                "match": "all",
                "conditions": [
                    {"field": "language", "op": "equals", "value": "fr"},
                    *FRANCE["groups"][0]["conditions"],
                ],
            }
        ],
    }
    if connection.vendor == "sqlite":
        # Not the facts index: it would fetch most contacts' rows one by one.
        assert "INDEX contact_language" in plan_of(french_opted_in)
    assert matching_contacts(french_opted_in).count() == 1


@pytest.mark.parametrize(
    "condition",
    [
        {"field": "country", "op": "in", "value": ["FR", "CA"]},
        {"field": "country", "op": "not_equals", "value": "FR"},
        {"field": "country", "op": "is_empty"},
        {"field": "country", "op": "is_not_empty"},
        {
            "field": "consent",
            "channel": "SMS",
            "purpose": "MARKETING",
            "op": "is",
            "value": "OPTED_IN",
        },
        {
            "field": "consent",
            "channel": "SMS",
            "purpose": "MARKETING",
            "op": "is_not",
            "value": "OPTED_IN",
        },
    ],
    ids=lambda c: f"{c['field']}-{c['op']}",
)
def test_facts_read_from_the_index_or_the_rows_match_the_same_people(
    db, make_contact, condition
):
    make_contact("+33612345678", consent="OPTED_IN")
    make_contact("+12042345678", consent="OPTED_OUT")  # Canada
    make_contact("+14155550100")
    make_contact("someone@example.com", channel="EMAIL")
    live = Contact.objects.filter(erased_at=None)
    from_index = live.filter(condition_q(condition, facts_indexed=True))
    from_rows = live.filter(condition_q(condition, facts_indexed=False))
    assert 0 < from_index.count() < live.count()
    assert set(from_index.values_list("pk", flat=True)) == set(
        from_rows.values_list("pk", flat=True)
    )


def test_a_count_of_lists_leaves_the_planner_as_it_was(db, make_contact, make_list):
    newsletter, vip = make_list("Newsletter"), make_list("VIP")
    make_contact(lists=[newsletter])
    make_contact(lists=[newsletter, vip])
    make_contact(lists=[vip])
    definition = {
        "match": "all",
        "groups": [
            {
                "match": "all",
                "conditions": [
                    {"field": "list", "op": "in", "value": [newsletter.pk]},
                    {"field": "list", "op": "not_in", "value": [vip.pk]},
                ],
            }
        ],
    }
    settings = ("enable_hashjoin", "max_parallel_workers_per_gather")
    before = planner_settings(settings)
    assert count(definition) == 1
    # Merge joins, without parallel workers, for that count only.
    assert planner_settings(settings) == before
    if connection.vendor == "postgresql":
        assert before["enable_hashjoin"] == "on"


def planner_settings(names) -> dict:
    if connection.vendor != "postgresql":
        return {}
    with connection.cursor() as cursor:
        found = {}
        for name in names:
            cursor.execute(f"SHOW {name}")
            found[name] = cursor.fetchone()[0]
        return found
