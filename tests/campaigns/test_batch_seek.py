"""The drain's statements on one batch's recipients (the re-check before it
goes to Sinch, its acceptance, failure or cancellation) find that batch's
rows by index, whatever the database's statistics say: a launch's batches
each cost the same, not in proportion to everything still waiting.

Between launches hardly any recipient is PENDING, so statistics taken then
make PENDING look rare; during a launch hundreds of thousands are."""

import re

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from campaigns.authoring import recheck
from campaigns.models import Batch, Recipient
from campaigns.models.states import FILLING

R = Recipient.Status
# A plan's line reading one of the recipients' indexes.
RECIPIENT_INDEX = re.compile(
    r"(Index Scan using|Index Only Scan using|Bitmap Index Scan on) recipient_"
)


@pytest.fixture
def mid_launch(make_campaign):
    """Yesterday's campaign delivered, then statistics taken; now a launch
    with two full batches still PENDING."""
    yesterday = make_campaign(name="Yesterday")
    today = make_campaign(name="Today")
    batches = []
    for campaign, sequence, status in (
        (yesterday, 1, R.DELIVERED),
        (yesterday, 2, R.DELIVERED),
        (yesterday, 3, R.DELIVERED),
        (today, 1, R.PENDING),
        (today, 2, R.PENDING),
    ):
        batch = Batch.objects.create(
            campaign=campaign,
            sequence=sequence,
            metadata_key=f"{campaign.pk}-{sequence}",
            not_before=FILLING,
        )
        Recipient.objects.bulk_create(
            Recipient(
                campaign=campaign,
                batch=batch,
                index=i,
                identity=f"+3361{sequence}{i:06d}",
                status=R.DELIVERED,
            )
            for i in range(1000)
        )
        batches.append((batch, status))
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE campaigns_recipient")  # nobody PENDING yet
    for batch, status in batches:
        Recipient.objects.filter(batch=batch).update(status=status)
    return batches[-1][0]


def plan_of(sql: str, params=()) -> str:
    explain = "EXPLAIN" if connection.vendor == "postgresql" else "EXPLAIN QUERY PLAN"
    with connection.cursor() as cursor:
        cursor.execute(f"{explain} {sql}", params)
        return "\n".join(str(row) for row in cursor.fetchall())


def assert_sought_by_batch(plan: str) -> None:
    if connection.vendor == "postgresql":
        # The batch is part of the recipients' index condition, not a filter
        # applied to every PENDING row the index gives, and so is the index's
        # first column (without it the whole index is read).
        assert "Seq Scan on campaigns_recipient" not in plan, plan
        lines = plan.splitlines()
        scans = [i for i, line in enumerate(lines) if RECIPIENT_INDEX.search(line)]
        assert scans, plan
        for i in scans:
            assert "Index Cond" in lines[i + 1], plan
            assert "batch_id" in lines[i + 1], plan
            if "recipient_by_campaign" in lines[i]:
                assert "campaign_id" in lines[i + 1], plan
        assert "Filter: (batch_id" not in plan, plan
    else:
        assert "batch_id=?" in plan, plan


def test_a_batchs_pending_recipients_are_sought_by_their_batch(mid_launch):
    pending = Recipient.in_batch(mid_launch, R.PENDING)
    assert pending.count() == 1000
    assert_sought_by_batch(plan_of(*pending.query.sql_with_params()))


def test_the_recheck_before_sending_seeks_its_batch_too(mid_launch):
    with CaptureQueriesContext(connection) as queries:
        entries, dropped = recheck.recheck_batch(mid_launch.campaign, mid_launch.pk)
    # (No contacts behind these rows: each is dropped, all are read.)
    assert len(entries) + sum(len(ids) for ids in dropped.values()) == 1000
    sql = next(q["sql"] for q in queries if "r.identity" in q["sql"])
    assert_sought_by_batch(plan_of(sql))
