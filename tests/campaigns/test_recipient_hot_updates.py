"""A recipient's status moves without writing any index entry.

A large launch moves a million recipients to SUBMITTED, and every receipt
moves one again. No recipient index holds the status, so PostgreSQL can
rewrite such a row in place on its page (a HOT update); the recipients' pages
are left 40 % empty by a fill factor of 60, so that a batch's new row
versions fit beside the old ones. On SQLite the same UPDATE then writes the
table alone.
"""

import pytest
from django.db import connection

from campaigns.dispatch import drain
from campaigns.models import Batch, Recipient
from campaigns.tracking import dashboard
from contacts.services.consent import Evidence, record_opt_out_for_contacts
from tests.campaigns.test_receipts import process, receipt

R = Recipient.Status
postgresql_only = pytest.mark.skipif(
    connection.vendor != "postgresql", reason="HOT updates are PostgreSQL's"
)


def recipient_index_columns() -> dict[str, list[str]]:
    with connection.cursor() as cursor:
        found = connection.introspection.get_constraints(cursor, "campaigns_recipient")
    return {
        name: info["columns"]
        for name, info in found.items()
        if info["index"] or info["unique"] or info["primary_key"]
    }


def updates_so_far() -> tuple[int, int]:
    """(rows updated, of which HOT) in the recipients' table by this
    transaction (a test runs in one)."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT n_tup_upd, n_tup_hot_upd FROM pg_stat_xact_user_tables "
            "WHERE relname = 'campaigns_recipient'"
        )
        return cursor.fetchone()


def test_no_recipient_index_holds_the_status(db):
    indexes = recipient_index_columns()
    assert "recipient_by_campaign" in indexes
    assert [name for name, columns in indexes.items() if "status" in columns] == []


@postgresql_only
def test_the_recipients_pages_keep_room_for_new_row_versions(db):
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT reloptions FROM pg_class WHERE relname = 'campaigns_recipient'"
        )
        assert cursor.fetchone()[0] == ["fillfactor=60"]


@postgresql_only
def test_accepting_batches_and_their_receipts_rewrite_recipients_in_place(
    sinch, small_batches, launched_campaign
):
    campaign = launched_campaign()  # three batches, sent to the simulator
    submitted = Recipient.objects.filter(campaign=campaign, status=R.SUBMITTED)
    assert submitted.count() == 7  # Olga, opted out, was never in a batch
    updated, hot = updates_so_far()
    assert updated >= 7
    assert hot == updated

    for recipient in submitted.select_related("batch")[:3]:
        receipt(recipient, "DELIVERED")
    process()
    assert Recipient.objects.filter(campaign=campaign, status=R.DELIVERED).count() == 3
    after, hot_after = updates_so_far()
    assert after >= updated + 3
    assert hot_after == after


def test_the_exclusion_breakdown_finds_every_excluded_recipient_in_no_batch(
    small_batches, make_launchable, launched_campaign, sender
):
    # The breakdown seeks a campaign's excluded recipients as those in no
    # batch (no index holds the status): excluded at the freeze (Olga, opted
    # out) or at the re-check before their batch is sent (a late opt-out).
    campaign = launched_campaign(make_launchable(), dispatch=False)
    late = Recipient.objects.filter(campaign=campaign, status=R.PENDING).last()
    record_opt_out_for_contacts(
        contacts=[late.contact_id],
        purposes=["MARKETING"],
        evidence=Evidence(wording="Asked by phone"),
        actor=sender,
    )
    batch = Batch.objects.select_related("campaign").get(pk=late.batch_id)
    drain.exclude_no_longer_eligible(batch, drain.SubmitContext(batch.campaign))

    excluded = Recipient.objects.filter(campaign=campaign, status=R.EXCLUDED)
    assert list(excluded.values_list("batch_id", flat=True)) == [None, None]
    breakdown = dashboard.exclusion_breakdown(campaign, excluded.count())
    assert {row["reason"]: row["count"] for row in breakdown["rows"]} == {
        "opted out": 1,
        "opted out after launch": 1,
    }
