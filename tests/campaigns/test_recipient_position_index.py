"""A batched recipient's position is unique in its batch, and only batched
recipients are in the index that says so.

A launch of a million writes hundreds of thousands of excluded recipients (no
consent, opted out, over the frequency cap): in no batch, at no position.
Keeping them out of the (batch, index) index saves the launch writing an
entry for each; two of them never clashed anyway.
"""

import pytest
from django.db import IntegrityError, connection, transaction

from campaigns.models import Batch, Recipient
from tests.campaigns.test_segment_recipient_index import sql_of_migration


@pytest.fixture
def batch(make_campaign):
    campaign = make_campaign(name="Spring")
    return Batch.objects.create(campaign=campaign, sequence=1, metadata_key="spring-1")


def recipient(batch, index, **fields):
    return Recipient.objects.create(
        campaign=batch.campaign,
        batch=fields.pop("in_batch", batch),
        index=index,
        identity=f"+3361234567{index or 0}",
        **fields,
    )


def position_index_sql() -> str:
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute(
                "SELECT indexdef FROM pg_indexes WHERE indexname = 'recipient_position'"
            )
        else:
            cursor.execute(
                "SELECT sql FROM sqlite_master WHERE name = 'recipient_position'"
            )
        return cursor.fetchone()[0]


def test_two_recipients_cannot_share_a_position_in_a_batch(batch):
    recipient(batch, 0)
    with pytest.raises(IntegrityError), transaction.atomic():
        recipient(batch, 0)
    recipient(batch, 1)
    assert Recipient.objects.filter(batch=batch).count() == 2


def test_excluded_recipients_are_in_no_batch_and_never_clash(batch):
    for _ in range(3):
        recipient(batch, None, in_batch=None, status="EXCLUDED", reason="opted out")
    assert Recipient.objects.filter(batch__isnull=True).count() == 3


def test_the_position_index_holds_batched_recipients_only(db):
    definition = position_index_sql()
    assert "UNIQUE INDEX" in definition
    assert '("batch_id", "index")' in definition or "(batch_id, index)" in definition
    assert "WHERE" in definition
    assert "IS NOT NULL" in definition
    with connection.cursor() as cursor:
        found = connection.introspection.get_constraints(cursor, "campaigns_recipient")
    # The table-wide constraint it replaces is gone.
    assert "recipient_position_unique" not in found


def test_a_recipient_is_found_by_its_position_through_the_index(batch):
    Batch.objects.filter(pk=batch.pk).update(sinch_batch_id="01SPRING")
    ann = recipient(batch, 0)
    recipient(batch, None, in_batch=None, status="EXCLUDED", reason="opted out")
    rows = Recipient.objects.filter(
        batch__sinch_batch_id__in=["01SPRING"], index__in=[0]
    ).values_list("id", flat=True)
    assert list(rows) == [ann.pk]
    sql, params = Recipient.objects.filter(batch=batch, index=0).query.sql_with_params()
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute("SET LOCAL enable_seqscan = off")
            cursor.execute(f"EXPLAIN {sql}", params)
        else:
            cursor.execute(f"EXPLAIN QUERY PLAN {sql}", params)
        plan = " ".join(str(row) for row in cursor.fetchall())
    # The position is sought in the partial index: the batch named implies
    # that the recipient is in one.
    assert "recipient_position" in plan


def test_the_index_is_built_before_the_old_constraint_goes_without_blocking_writes(
    transactional_db,
):
    # On a large PostgreSQL the build takes minutes; a plain CREATE UNIQUE
    # INDEX would stop launches, dispatch and receipts for as long.
    sql = sql_of_migration("0024")
    assert 'WHERE "batch_id" IS NOT NULL' in sql
    if connection.vendor == "postgresql":
        built = sql.index('CREATE UNIQUE INDEX CONCURRENTLY "recipient_position"')
        dropped = sql.index('DROP CONSTRAINT "recipient_position_unique"')
        assert "BEGIN;" not in sql  # not inside a transaction
    else:
        built = sql.index('CREATE UNIQUE INDEX "recipient_position"')
        dropped = sql.index('DROP TABLE "campaigns_recipient"')  # rebuilt without it
    assert built < dropped
