"""Rows written with config.lib.bulk.TableWriter read back exactly as given,
constants and defaults included (COPY on PostgreSQL, INSERT on SQLite)."""

from django.utils import timezone

from config.lib.bulk import TableWriter
from contacts.models import Contact


def test_rows_and_their_constants_and_defaults_read_back_as_written(db):
    now = timezone.now().replace(microsecond=123456)
    writer = TableWriter(
        Contact,
        ["first_name", "attributes"],
        {"language": "fr", "external_id": ""},
        now=now,
    )
    odd = "Tab\there, back\\slash, new\nline, quote ' \" and ünïcödé"
    writer.insert(
        [
            ("Anna", writer.prep("attributes", {"tier": "gold", "n": 3})),
            (odd, writer.prep("attributes", {})),
        ]
    )
    writer.insert([("Ben", writer.prep("attributes", {"tags": ["a\tb"]}))])
    constant_json = TableWriter(
        Contact, ["first_name"], {"attributes": {"k": "v\tw'"}}, now=now
    )
    constant_json.insert([("Cleo",)])
    default_json = TableWriter(Contact, ["first_name", "erased_at"], now=now)
    default_json.insert([("Dan", None), ("Eve", now)])
    rows = list(Contact.objects.order_by("pk"))
    assert [(c.first_name, c.attributes) for c in rows] == [
        ("Anna", {"tier": "gold", "n": 3}),
        (odd, {}),
        ("Ben", {"tags": ["a\tb"]}),
        ("Cleo", {"k": "v\tw'"}),
        ("Dan", {}),
        ("Eve", {}),
    ]
    assert [c.language for c in rows] == ["fr", "fr", "fr", "", "", ""]
    assert {(c.time_zone, c.created_at, c.updated_at) for c in rows} == {("", now, now)}
    assert [c.erased_at for c in rows] == [None] * 5 + [now]
