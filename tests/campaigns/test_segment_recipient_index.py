"""A segment's engagement and "not messaged in N days" conditions find the
contacts a campaign reached through the recipients' campaign index (campaign,
batch), reading each one's status from its row (no index holds the status,
so that a status change writes no index entry): the live count of such a
segment stays fast at 1,000,000 contacts. Test sends never count."""

import pytest
from django.db import connection
from django.utils import timezone

from campaigns.models import Batch, Recipient
from campaigns.segments.evaluate import count, matching_contacts


def only(condition: dict) -> dict:
    return {"match": "all", "groups": [{"match": "all", "conditions": [condition]}]}


@pytest.fixture
def reached(make_contact, make_campaign):
    """Ann got last week's campaign; Bob only its test send; Cy nothing."""
    ann, bob, cy = (
        make_contact(phone, consent="OPTED_IN")
        for phone in ("+33612345678", "+33612345679", "+33612345670")
    )
    campaign = make_campaign(name="Last week")
    sent = Batch.objects.create(
        campaign=campaign, sequence=1, metadata_key="sent", submitted_at=timezone.now()
    )
    test = Batch.objects.create(
        campaign=campaign,
        sequence=2,
        metadata_key="test",
        submitted_at=timezone.now(),
        is_test=True,
    )
    for batch, contact, is_test in ((sent, ann, False), (test, bob, True)):
        Recipient.objects.create(
            campaign=campaign,
            batch=batch,
            index=0,
            contact=contact,
            identity="x",
            status="DELIVERED",
            is_test=is_test,
        )
    return {"campaign": campaign, "people": (ann, bob, cy)}


def plan_of(definition) -> str:
    sql, params = matching_contacts(definition).values("pk").query.sql_with_params()
    with connection.cursor() as cursor:
        cursor.execute(f"EXPLAIN QUERY PLAN {sql}", params)
        return " ".join(str(row) for row in cursor.fetchall())


def recipient_indexes() -> set[str]:
    with connection.cursor() as cursor:
        found = connection.introspection.get_constraints(cursor, "campaigns_recipient")
    return {name for name, info in found.items() if info["index"]}


def test_who_got_a_campaign_is_read_through_the_campaign_index(reached):
    delivered = only(
        {
            "field": "engagement",
            "op": "delivered",
            "campaign": reached["campaign"].pk,
        }
    )
    ann, _, _ = reached["people"]
    assert "recipient_by_campaign" in recipient_indexes()
    assert list(matching_contacts(delivered).values_list("pk", flat=True)) == [ann.pk]
    assert count(delivered) == 1
    if connection.vendor == "sqlite":
        assert "INDEX recipient_by_campaign (campaign_id=?" in plan_of(delivered)


def test_who_was_not_messaged_lately_is_read_through_the_campaign_index(reached):
    not_messaged = only({"field": "last_messaged", "op": "not_in_days", "value": 7})
    _, bob, cy = reached["people"]
    # Bob's test send does not count as a message.
    assert set(matching_contacts(not_messaged).values_list("pk", flat=True)) == {
        bob.pk,
        cy.pk,
    }
    assert count(not_messaged) == 2
    if connection.vendor == "sqlite":
        # Led by the recent batches' campaigns, then their batches.
        assert "INDEX recipient_by_campaign (campaign_id=? AND batch_id=?)" in plan_of(
            not_messaged
        )


def sql_of_migration(name: str) -> str:
    from io import StringIO

    from django.core.management import call_command

    out = StringIO()
    call_command("sqlmigrate", "campaigns", name, stdout=out)
    return out.getvalue()


@pytest.mark.parametrize(
    ("migration", "built", "dropped"),
    [
        ("0022", "recipient_by_status", ["recipient_sent", "campaigns_r_campaig"]),
        ("0023", "recipient_by_campaign", ["recipient_by_status"]),
    ],
)
def test_the_index_is_built_without_blocking_writes_to_recipients(
    transactional_db, migration, built, dropped
):
    # On a large PostgreSQL the build takes minutes; a plain CREATE INDEX
    # would stop launches, dispatch and receipts for as long. The indexes it
    # replaces go only once it is built, and without blocking writes either.
    sql = sql_of_migration(migration)
    assert "CREATE INDEX" in sql
    positions = [sql.index(built)] + [sql.index(name) for name in dropped]
    assert positions == sorted(positions)
    if connection.vendor == "postgresql":
        assert sql.count("CREATE INDEX CONCURRENTLY") == 1
        assert sql.count("DROP INDEX CONCURRENTLY") == len(dropped)
        assert "BEGIN;" not in sql  # not inside a transaction
    else:
        assert "CONCURRENTLY" not in sql


def test_a_launch_writes_each_recipient_into_three_indexes_besides_its_key(db):
    # (campaign, batch), (contact, batch) and (batch, index) of batched
    # recipients (test_recipient_position_index): one index per question the
    # product asks, none that another already answers, none that holds the
    # status.
    with connection.cursor() as cursor:
        found = connection.introspection.get_constraints(cursor, "campaigns_recipient")
    assert {
        name
        for name, info in found.items()
        if (info["index"] or info["unique"]) and not info["primary_key"]
    } == {
        "recipient_by_campaign",
        "recipient_contact_batch",
        "recipient_position",
    }
