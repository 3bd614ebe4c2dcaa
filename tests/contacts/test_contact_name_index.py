"""No contact index holds a name, on either database: an import on SQLite
paid 13 % of its time for it, and on PostgreSQL it kept a re-import from
rewriting a contact in place (migration contacts/0017). The admin's sort by
name reads the table instead."""

from django.db import connection
from django.urls import reverse


def name_indexes() -> list[str]:
    with connection.cursor() as cursor:
        found = connection.introspection.get_constraints(cursor, "contacts_contact")
    return [
        name
        for name, info in found.items()
        if info["index"] and {"first_name", "last_name"} & set(info["columns"])
    ]


def test_no_contact_index_holds_a_name(db):
    assert name_indexes() == []


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
