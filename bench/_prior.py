"""Earlier marketing campaigns, for the benchmarks that run with the frequency cap.

`add_prior_marketing(last_contact, every)` records two marketing campaigns
that Sinch accepted and delivered: the first, three days ago, to four in
every `every` contacts (ids with id % every < 4), the second, two days ago,
to one in every `every` (id % every == 0). Under the default cap (2/7d,1/1d)
the contacts of the second are over it (a share of 1 / `every`); those who
had only the first are under it but still looked up. The rows are written
as the freeze and the dispatcher would have left them: batches of 1000,
ACCEPTED with a Sinch batch id, recipients DELIVERED.
"""

import uuid
from datetime import UTC, datetime, timedelta

from _common import insert_rows, say

BATCH = 1000
RECIPIENT_COLUMNS = (
    'campaign_id, batch_id, "index", contact_id, is_test, identity, '
    "fallback_identities, parameters, status, reason, failure_code, "
    "switched_channel, delivered_channel, message_id, created_at, updated_at"
)


def is_capped(contact_id: int, every: int) -> bool:
    """Whether a contact got both earlier campaigns (so is over the cap)."""
    return every > 0 and contact_id % every == 0


def add_prior_marketing(last_contact: int, every: int) -> int:
    """Write the two earlier campaigns up to contact `last_contact`; returns
    the number of recipient rows written (nothing when `every` is 0)."""
    if not every:
        return 0
    now = datetime.now(UTC)
    first = [i for i in range(1, last_contact + 1) if i % every < 4]
    second = [i for i in range(1, last_contact + 1) if i % every == 0]
    written = 0
    for name, days, contacts in (
        ("Winter sale", 3, first),
        ("Flash offer", 2, second),
    ):
        written += _campaign(name, now - timedelta(days=days), contacts)
        say(f"earlier campaign {name!r}: {len(contacts):,} recipients, {days} days ago")
    return written


def _campaign(name: str, sent_at: datetime, contacts: list[int]) -> int:
    from django.db import connection, transaction

    from campaigns.models import Batch, Campaign, MessageTemplate

    template = MessageTemplate.objects.create(name=name, text="Hi ${first_name}!")
    campaign = Campaign.objects.create(
        name=name,
        template=template,
        status=Campaign.Status.COMPLETED,
        launched_at=sent_at,
        frozen_at=sent_at,
    )
    vendor = connection.vendor
    for sequence, start in enumerate(range(0, len(contacts), BATCH), 1):
        part = contacts[start : start + BATCH]
        with transaction.atomic():
            batch = Batch.objects.create(
                campaign=campaign,
                sequence=sequence,
                size=len(part),
                metadata_key=uuid.uuid4().hex,
                status=Batch.Status.ACCEPTED,
                sinch_batch_id=uuid.uuid4().hex,
                remote_status="PROCESSED",
                attempts=1,
                submitted_at=sent_at,
            )
            rows = [
                (
                    campaign.pk,
                    batch.pk,
                    index,
                    contact,
                    False,
                    f"+1{2012000000 + contact}",
                    "[]",
                    "{}",
                    "DELIVERED",
                    "",
                    "",
                    False,
                    "SMS",
                    uuid.uuid4().hex,
                    sent_at,
                    sent_at,
                )
                for index, contact in enumerate(part)
            ]
            with connection.cursor() as cur:
                insert_rows(cur, vendor, "campaigns_recipient", RECIPIENT_COLUMNS, rows)
    with connection.cursor() as cur:
        cur.execute("ANALYZE")
    return len(contacts)
