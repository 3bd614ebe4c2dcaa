"""Rows written with config.lib.bulk.TableWriter read back exactly as given,
constants and defaults included (COPY on PostgreSQL, INSERT on SQLite)."""

from datetime import UTC, datetime, timedelta

from django.db import connection
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
