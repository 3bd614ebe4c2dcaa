"""The contacts' name index: on PostgreSQL only (an import on SQLite paid 13 %
of its time for it; the admin's sort by name stays within 300 ms without it)."""

from django.db import connection
from django.urls import reverse


def name_indexes() -> list[str]:
    with connection.cursor() as cursor:
        found = connection.introspection.get_constraints(cursor, "contacts_contact")
    return [
        name
        for name, info in found.items()
        if info["index"] and info["columns"][:1] == ["last_name"]
    ]


def test_the_name_index_is_kept_on_postgresql_and_dropped_on_sqlite(db):
    expected = 1 if connection.vendor == "postgresql" else 0
    assert len(name_indexes()) == expected


def test_contacts_sort_by_last_name_with_or_without_the_index(
    admin_client, make_contact
):
    for first, last in [("Grace", "Hopper"), ("Ada", "Lovelace"), ("Alan", "Babbage")]:
        make_contact(first_name=first, last_name=last)
    page = admin_client.get(reverse("admin:contacts_contact_changelist") + "?o=1")
    assert page.status_code == 200
    text = page.content.decode()
    assert (
        text.index("Alan Babbage")
        < text.index("Grace Hopper")
        < text.index("Ada Lovelace")
    )
