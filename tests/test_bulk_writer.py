"""Rows written with config.lib.bulk.TableWriter read back exactly as given,
constants and defaults included (COPY on PostgreSQL, INSERT on SQLite)."""

import threading
from datetime import UTC, datetime, timedelta

import pytest
from django.db import (
    IntegrityError,
    OperationalError,
    connection,
    connections,
    transaction,
)
from django.utils import timezone

from config.lib import bulk, lookups
from config.lib.bulk import TableWriter
from contacts.models import ChannelIdentity, Contact


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


@pytest.mark.skipif(connection.vendor != "sqlite", reason="SQLite's literals")
def test_constants_are_written_into_sqlite_statements_as_sqlite_quotes_them(db):
    values = [None, True, False, 0, -42, 2**40, "", "plain", "it's 'quoted'", "ünï\t"]
    with connection.cursor() as cursor:
        cursor.execute("SELECT " + ", ".join(["quote(%s)"] * len(values)), values)
        quoted = list(cursor.fetchone())
    assert [bulk._sqlite_literal(v) for v in values] == quoted
    with pytest.raises(TypeError):
        bulk._sqlite_literal(1.5)


def test_columns_every_row_shares_are_left_to_the_tables_defaults_on_postgresql(
    make_campaign,
):
    # A launch writes a million recipients: on PostgreSQL, the values that
    # are the same in every row (and are the table's defaults) are not sent
    # and parsed again for each.
    from campaigns.models import Recipient

    campaign = make_campaign(name="Spring")
    long_ago = datetime(2020, 1, 1, tzinfo=UTC)
    writer = TableWriter(
        Recipient,
        ["identity", "status"],
        {"campaign_id": campaign.pk},
        now=long_ago,
    )
    before = timezone.now()
    writer.insert([("+33612345678", "EXCLUDED"), ("+33612345679", "PENDING")])
    rows = list(Recipient.objects.order_by("pk"))
    assert [(r.identity, r.status, r.campaign_id) for r in rows] == [
        ("+33612345678", "EXCLUDED", campaign.pk),
        ("+33612345679", "PENDING", campaign.pk),
    ]
    for row in rows:
        assert (row.is_test, row.fallback_identities, row.switched_channel) == (
            False,
            [],
            False,
        )
        assert (row.failure_code, row.message_id, row.delivered_channel) == ("", "", "")
        assert row.created_at == row.updated_at
        if connection.vendor == "postgresql":
            assert row.created_at >= before - timedelta(seconds=5)  # the table's
        else:
            assert row.created_at == long_ago  # written as given


def test_the_recipients_table_has_the_defaults_a_launch_relies_on(make_campaign):
    campaign = make_campaign(name="Spring")
    with connection.cursor() as cursor:
        cursor.execute(
            "INSERT INTO campaigns_recipient (campaign_id, identity, parameters, "
            "status, reason) VALUES (%s, '+33612345678', '{}', 'EXCLUDED', 'x')",
            [campaign.pk],
        )
    from campaigns.models import Recipient

    row = Recipient.objects.get()
    assert (row.is_test, row.fallback_identities, row.variant) == (False, [], "")
    assert row.created_at is not None
    assert row.updated_at is not None


def test_many_rows_made_as_they_are_sent_all_arrive_in_order(db, monkeypatch):
    # On PostgreSQL the rows go to the server a piece at a time, each made
    # only when its piece is sent; every row arrives, escapes and all.
    monkeypatch.setattr(bulk, "COPY_PIECE_ROWS", 7)
    now = timezone.now()
    writer = TableWriter(Contact, ["first_name", "external_id"], now=now)
    made = []

    def rows():
        for i in range(40):
            made.append(i)
            yield (f"Name {i}\tx\\y", f"ext-{i}")

    sent_after = []  # on PostgreSQL: how many rows were made at each send
    if connection.vendor == "postgresql":
        import psycopg

        write = psycopg.Copy.write

        def counting_write(copy, data):
            sent_after.append(len(made))
            return write(copy, data)

        monkeypatch.setattr(psycopg.Copy, "write", counting_write)
    writer.insert(rows())
    assert made == list(range(40))
    if connection.vendor == "postgresql":
        assert sent_after == [7, 14, 21, 28, 35, 40]
    assert list(
        Contact.objects.order_by("pk").values_list("first_name", "external_id")
    ) == [(f"Name {i}\tx\\y", f"ext-{i}") for i in range(40)]


def test_a_bad_row_in_a_later_piece_stores_none_of_the_rows(db, monkeypatch):
    # All or nothing, however many pieces went to the server before it.
    monkeypatch.setattr(bulk, "COPY_PIECE_ROWS", 5)
    writer = TableWriter(Contact, ["first_name", "external_id"], now=timezone.now())
    rows = [
        (f"P{i}", f"same-{min(i, 20)}") for i in range(25)
    ]  # rows 20 to 24 repeat an id
    with pytest.raises(IntegrityError), transaction.atomic():
        writer.insert(rows)
    assert not Contact.objects.exists()


def test_lookups_by_many_values_find_exactly_the_stored_ones(db):
    # External ids are whatever a file holds: quotes, commas, braces,
    # backslashes, JSON-looking text, non-ASCII. More than one query's worth.
    odd = ['a"b', "c,d", "{e}", "f\\g", '["h"]', "ïñ ü", "NULL", " j ", "k'l"]
    stored = odd + [f"x{i}" for i in range(lookups._PG_VALUES_PER_LOOKUP + 10)]
    writer = TableWriter(Contact, ["external_id"], now=timezone.now())
    writer.insert([(value,) for value in stored])
    ids = dict(Contact.objects.values_list("external_id", "pk"))
    wanted = [*odd, "x0", f"x{lookups._PG_VALUES_PER_LOOKUP + 9}", "absent", "a", "x"]
    found = dict(lookups.matching(Contact, "external_id", wanted, non_blank=True))
    assert found == {value: ids[value] for value in wanted if value in ids}
    # The rows themselves, by the values, in one read; times as the ORM reads
    # them (aware, the same instant), also on PostgreSQL's own loader.
    Contact.objects.filter(external_id="x0").update(erased_at=timezone.now())
    columns = ("external_id", "id", "created_at", "erased_at")
    by_value = lookups.rows_by(Contact, columns, "external_id", wanted)
    assert sorted(by_value) == sorted(
        Contact.objects.filter(external_id__in=wanted).values_list(*columns)
    )
    assert {row[0] for row in by_value} == set(found)
    assert all(row[2].utcoffset() == timedelta(0) for row in by_value)


def test_an_update_finds_each_row_by_its_key_whatever_the_statistics_say(db):
    # During an import the table's statistics lag far behind it: PostgreSQL
    # then hashed the whole table to join it with a chunk's staged rows, a
    # cost that grew with every chunk. Each staged row is looked up instead.
    now = timezone.now()
    TableWriter(Contact, ["first_name"], now=now).insert(
        [(f"P{i}",) for i in range(3000)]
    )
    ids = list(Contact.objects.order_by("pk").values_list("pk", flat=True))
    plans = []
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SHOW jit")
            (jit_before,) = cursor.fetchone()

    def explain_the_update(execute, sql, params, many, context):
        if sql.startswith("UPDATE") and connection.vendor == "postgresql":
            with context["connection"].cursor() as cursor:
                cursor.execute("EXPLAIN " + sql, params)
                plans.append("\n".join(row[0] for row in cursor.fetchall()))
        return execute(sql, params, many, context)

    with transaction.atomic(), connection.execute_wrapper(explain_the_update):
        writer = TableWriter(Contact, ["id", "first_name"], now=now)
        writer.prepare_update([(pk, f"Q{pk}") for pk in ids[:2000]])()
    names = dict(Contact.objects.values_list("pk", "first_name"))
    assert [names[pk] for pk in ids] == [f"Q{pk}" for pk in ids[:2000]] + [
        f"P{i}" for i in range(2000, 3000)
    ]
    if connection.vendor == "postgresql":
        assert len(plans) == 1
        assert "Index Scan using contacts_contact_pkey" in plans[0], plans[0]
        assert "Hash" not in plans[0], plans[0]
        assert "Merge" not in plans[0], plans[0]
        # Not compiled just in time: the plans it must not choose cost so
        # much that the server thought compiling worth it (190 ms a chunk).
        assert "JIT" not in plans[0], plans[0]
    with connection.cursor() as cursor:  # the planner's settings are back
        if connection.vendor == "postgresql":
            cursor.execute("SHOW enable_hashjoin")
            assert cursor.fetchone() == ("on",)
            cursor.execute("SHOW jit")
            assert cursor.fetchone() == (jit_before,)


@pytest.mark.skipif(connection.vendor != "postgresql", reason="row locks")
@pytest.mark.django_db(transaction=True)
def test_rows_read_by_value_with_a_lock_stay_locked_until_the_commit():
    Contact.objects.create(external_id="held")
    Contact.objects.create(external_id="free")
    seen = {}

    def other_session(value):
        try:
            lookups.rows_by(
                Contact, ("id",), "external_id", [value], lock=True, nowait=True
            )
            seen[value] = "locked it"
        except OperationalError as exc:
            seen[value] = exc.__cause__.sqlstate  # 55P03: lock_not_available
        finally:
            connections.close_all()

    with transaction.atomic():
        lookups.rows_by(Contact, ("id",), "external_id", ["held"], lock=True)
        for value in ("held", "free"):
            thread = threading.Thread(target=other_session, args=(value,))
            thread.start()
            thread.join()
    assert seen == {"held": "55P03", "free": "locked it"}


def test_rows_read_by_value_carry_fields_of_the_rows_they_point_at(db):
    # A re-import finds each number's contact and that contact's external id
    # in one read, instead of looking the external ids up again.
    known = Contact.objects.create(external_id="E1")
    blank = Contact.objects.create()
    for contact, number in ((known, "+12015550101"), (blank, "+12015550102")):
        ChannelIdentity.objects.create(contact=contact, channel="SMS", identity=number)
    wanted = ["+12015550101", "+12015550102", "+12015550199"]
    found = lookups.rows_by(
        ChannelIdentity,
        ("identity", "contact_id", "contact__external_id", "contact__created_at"),
        "identity",
        wanted,
    )
    assert sorted(row[:3] for row in found) == [
        ("+12015550101", known.pk, "E1"),
        ("+12015550102", blank.pk, ""),
    ]
    assert {row[3] for row in found} == {known.created_at, blank.created_at}


@pytest.mark.skipif(connection.vendor != "postgresql", reason="row locks")
@pytest.mark.django_db(transaction=True)
def test_a_locked_read_locks_the_rows_found_not_those_they_point_at():
    contact = Contact.objects.create(external_id="E1")
    ChannelIdentity.objects.create(
        contact=contact, channel="SMS", identity="+12015550101"
    )
    seen = {}

    def other_session(model, key, value):
        try:
            lookups.rows_by(model, ("id",), key, [value], lock=True, nowait=True)
            seen[model.__name__] = "locked it"
        except OperationalError as exc:
            seen[model.__name__] = exc.__cause__.sqlstate  # 55P03
        finally:
            connections.close_all()

    with transaction.atomic():
        lookups.rows_by(
            ChannelIdentity,
            ("id", "contact__external_id"),
            "identity",
            ["+12015550101"],
            lock=True,
        )
        for args in (
            (ChannelIdentity, "identity", "+12015550101"),
            (Contact, "external_id", "E1"),
        ):
            thread = threading.Thread(target=other_session, args=args)
            thread.start()
            thread.join()
    assert seen == {"ChannelIdentity": "55P03", "Contact": "locked it"}
