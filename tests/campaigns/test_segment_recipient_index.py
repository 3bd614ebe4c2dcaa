"""A segment's engagement and "not messaged in N days" conditions find the
contacts a campaign reached from the recipients' status index (campaign,
status, batch, contact, is_test), not from the recipients' rows: the live count of
such a segment stays fast at 1,000,000 contacts. Test sends never count."""

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


def test_who_got_a_campaign_is_read_from_the_status_index(reached):
    delivered = only(
        {
            "field": "engagement",
            "op": "delivered",
            "campaign": reached["campaign"].pk,
        }
    )
    ann, _, _ = reached["people"]
    assert "recipient_by_status" in recipient_indexes()
    assert list(matching_contacts(delivered).values_list("pk", flat=True)) == [ann.pk]
    assert count(delivered) == 1
    if connection.vendor == "sqlite":
        assert (
            "COVERING INDEX recipient_by_status (campaign_id=? AND status=?"
            in plan_of(delivered)
        )


def test_who_was_not_messaged_lately_is_read_from_the_status_index(reached):
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
        assert (
            "COVERING INDEX recipient_by_status "
            "(campaign_id=? AND status=? AND batch_id=?)" in plan_of(not_messaged)
        )


def test_the_index_is_built_without_blocking_writes_to_recipients(transactional_db):
    # On a large PostgreSQL the build takes minutes; a plain CREATE INDEX
    # would stop launches, dispatch and receipts for as long. The index it
    # replaces go only once it is built, and without blocking writes either.
    from io import StringIO

    from django.core.management import call_command

    out = StringIO()
    call_command("sqlmigrate", "campaigns", "0022", stdout=out)
    sql = out.getvalue()
    built = sql.index("recipient_by_status")
    assert "CREATE INDEX" in sql
    assert built < sql.index("recipient_sent") < sql.index("campaigns_r_campaig")
    if connection.vendor == "postgresql":
        assert sql.count("CREATE INDEX CONCURRENTLY") == 1
        assert sql.count("DROP INDEX CONCURRENTLY") == 2
        assert "BEGIN;" not in sql  # not inside a transaction
    else:
        assert "CONCURRENTLY" not in sql


def test_a_launch_writes_each_recipient_into_three_indexes_besides_its_key(db):
    # (campaign, status, ...), (contact, batch) and (batch, index): one index
    # per question the product asks, none that another already answers.
    with connection.cursor() as cursor:
        found = connection.introspection.get_constraints(cursor, "campaigns_recipient")
    assert {
        name
        for name, info in found.items()
        if (info["index"] or info["unique"]) and not info["primary_key"]
    } == {
        "recipient_by_status",
        "recipient_contact_batch",
        "recipient_position_unique",
    }
