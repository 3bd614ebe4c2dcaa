"""A campaign's recipients by status, kept up to date as they move.

Every code path that changes the status of (non-test) Recipient rows reports
the move here, with the number of rows its UPDATE changed, inside the same
transaction; the dashboard then reads a few CampaignCount rows. `recount`
rebuilds the figures from the recipients themselves: the reconciliation runs
it to heal any drift, and the tests compare the two.
"""

from collections import Counter
from collections.abc import Mapping

from django.db import connection, transaction
from django.db.models import Count

from campaigns.models import CampaignCount, Recipient


def add(campaign_id: int, deltas: Mapping[str, int]) -> None:
    """Add `deltas` (status -> change, may be negative) to the campaign's
    counts, in one statement (the drain moves a batch's counts with each
    batch it sends). Rows are taken in the statuses' order, the same for
    every writer, so that two of them never wait for each other in turn."""
    changes = sorted((status, n) for status, n in deltas.items() if n)
    if not changes:
        return
    table = CampaignCount._meta.db_table
    rows = ", ".join(["(%s, %s, %s)"] * len(changes))
    with connection.cursor() as cursor:
        cursor.execute(
            f"INSERT INTO {table} (campaign_id, status, count) VALUES {rows} "
            f"ON CONFLICT (campaign_id, status) DO UPDATE "
            f"SET count = {table}.count + excluded.count",
            [value for status, n in changes for value in (campaign_id, status, n)],
        )


def moved(campaign_id: int, old: str, new: str, n: int) -> None:
    """`n` recipients went from status `old` to status `new`."""
    if n and old != new:
        add(campaign_id, {old: -n, new: n})


def counts(campaign_id: int) -> dict[str, int]:
    """The campaign's recipients by status (statuses with none are left out)."""
    return {
        status: n
        for status, n in CampaignCount.objects.filter(
            campaign_id=campaign_id
        ).values_list("status", "count")
        if n
    }


def actual(campaign_id: int) -> dict[str, int]:
    """The same figures counted from the recipients (a full count)."""
    return dict(
        Recipient.objects.filter(campaign_id=campaign_id, is_test=False)
        .values_list("status")
        .annotate(n=Count("id"))
        .values_list("status", "n")
    )


def recount(campaign_id: int) -> dict[str, int]:
    """Rebuild the counts from the recipients; returns what changed."""
    with transaction.atomic():
        now = actual(campaign_id)
        before = counts(campaign_id)
        drift = Counter(now)
        drift.subtract(before)
        CampaignCount.objects.filter(campaign_id=campaign_id).delete()
        CampaignCount.objects.bulk_create(
            [
                CampaignCount(campaign_id=campaign_id, status=status, count=n)
                for status, n in now.items()
            ]
        )
    return {status: n for status, n in drift.items() if n}
