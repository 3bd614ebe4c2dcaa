"""The drain writes only what changed, batch after batch.

On SQLite every write, even an UPDATE that changes no row, waits for the one
write lock, which a launch's freeze holds while it writes each chunk: the
re-check of a batch that everyone may still receive, and "Sinch answered" while
no outage is recorded, must not write. When there is something to write,
they still do.
"""

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from campaigns import counters
from campaigns.dispatch import drain
from campaigns.models import Batch, Recipient
from contacts.services.consent import Evidence, record_opt_out_for_contacts
from sinch.models import Outage, note_outage, note_reachable

WRITES = ("INSERT", "UPDATE", "DELETE", "SAVEPOINT", "BEGIN", "RELEASE")


def writes(queries) -> list[str]:
    return [q["sql"] for q in queries if q["sql"].lstrip().upper().startswith(WRITES)]


@pytest.fixture
def first_batch(make_launchable, small_batches, launched_campaign):
    """A launched campaign's first batch of three, frozen and not yet sent."""
    campaign = launched_campaign(make_launchable(), dispatch=False)
    return (
        Batch.objects.select_related("campaign")
        .filter(campaign=campaign)
        .order_by("sequence")
        .first()
    )


def test_the_recheck_of_a_batch_everyone_may_still_receive_writes_nothing(
    first_batch,
):
    context = drain.SubmitContext(first_batch.campaign)
    with CaptureQueriesContext(connection) as queries:
        entries = drain.exclude_no_longer_eligible(first_batch, context)
    assert len(entries) == 3
    assert writes(queries) == []


def test_the_recheck_still_excludes_who_opted_out_since_the_launch(first_batch, sender):
    late = Recipient.objects.filter(batch=first_batch).order_by("index").last()
    record_opt_out_for_contacts(
        contacts=[late.contact_id],
        purposes=["MARKETING"],
        evidence=Evidence(wording="Asked by phone"),
        actor=sender,
    )
    context = drain.SubmitContext(first_batch.campaign)
    entries = drain.exclude_no_longer_eligible(first_batch, context)
    assert late.pk not in [entry.pk for entry in entries]
    assert len(entries) == 2
    late.refresh_from_db()
    assert (late.status, late.reason, late.batch_id) == (
        Recipient.Status.EXCLUDED,
        "opted out after launch",
        None,
    )


def test_sinch_answering_writes_nothing_while_no_outage_is_recorded(db):
    with CaptureQueriesContext(connection) as queries:
        assert note_reachable() is False
    assert writes(queries) == []
    assert not Outage.objects.exists()


def test_sinch_answering_ends_a_recorded_outage(db):
    assert note_outage(ConnectionError("connection refused")) is not None
    assert note_reachable() is True
    outage = Outage.objects.get(pk=1)
    assert outage.down_since is None
    assert outage.back_at is not None
    with CaptureQueriesContext(connection) as queries:
        assert note_reachable() is False  # over already: nothing to write
    assert writes(queries) == []


def test_a_batch_sinch_accepts_moves_its_counts_in_one_statement(sinch, first_batch):
    # Moved from "not submitted yet" to "handed to Sinch" together: the drain
    # does this for every batch it sends.
    context = drain.SubmitContext(first_batch.campaign)
    claimed = drain.claim_next(first_batch.campaign_id)
    assert claimed.pk == first_batch.pk
    with CaptureQueriesContext(connection) as queries:
        assert drain.submit(claimed, context) == Batch.Status.ACCEPTED
    counts = [q["sql"] for q in queries if "campaigns_campaigncount" in q["sql"]]
    assert len(counts) == 1
    assert counters.counts(first_batch.campaign_id)[Recipient.Status.SUBMITTED] == 3
    assert counters.counts(first_batch.campaign_id) == counters.actual(
        first_batch.campaign_id
    )
