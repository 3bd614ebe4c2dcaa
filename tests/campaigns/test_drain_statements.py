"""The drain's statements written in SQL give the answers of the querysets
they stand for (campaigns.dispatch.statements), on SQLite and PostgreSQL."""

from datetime import timedelta
from itertools import count

import pytest
from django.db.models import F, Q, Sum
from django.utils import timezone

from campaigns import counters
from campaigns.dispatch import drain, statements
from campaigns.models import Batch, Campaign, Recipient
from campaigns.models.states import REMOTE_DONE

B = Batch.Status
R = Recipient.Status
_sequences = count(100)


@pytest.fixture
def campaign(make_launchable, small_batches, launched_campaign):
    """A launched campaign (SUBMITTING) with three frozen batches of three,
    not sent yet."""
    return launched_campaign(make_launchable(), dispatch=False)


def add_batch(campaign, **fields) -> Batch:
    sequence = next(_sequences)
    return Batch.objects.create(
        campaign=campaign, sequence=sequence, metadata_key=f"k{sequence}", **fields
    )


def fields_of(batch: Batch) -> dict:
    return {f.attname: getattr(batch, f.attname) for f in Batch._meta.concrete_fields}


def test_the_campaign_status_is_read_as_the_orm_reads_it(campaign):
    assert statements.campaign_status(campaign.pk) == campaign.status
    Campaign.objects.filter(pk=campaign.pk).update(status=Campaign.Status.PAUSED)
    assert statements.campaign_status(campaign.pk) == Campaign.Status.PAUSED
    assert statements.campaign_status(campaign.pk + 1000) is None


def test_messages_in_flight_are_counted_as_the_orm_counts_them(campaign):
    now = timezone.now()
    done = sorted(REMOTE_DONE)[0]
    for size, remote, send_after, wave_at in [
        (10, "", None, None),  # sent now, not processed yet
        (20, "QUEUED", now - timedelta(minutes=1), None),
        (40, "", now + timedelta(seconds=10), now),  # a wave due about now
        (80, "SCHEDULED", now + timedelta(hours=2), now + timedelta(hours=2)),
        (160, done, None, None),  # processed at Sinch
    ]:
        add_batch(
            campaign,
            status=B.ACCEPTED,
            size=size,
            remote_status=remote,
            send_after=send_after,
            wave_at=wave_at,
        )
    add_batch(campaign, status=B.SUBMITTING, size=320)  # not accepted yet

    def orm(until, without_waves):
        batches = (
            Batch.objects.filter(status=B.ACCEPTED)
            .exclude(remote_status__in=REMOTE_DONE)
            .filter(Q(send_after__isnull=True) | Q(send_after__lte=until))
        )
        if without_waves:
            batches = batches.filter(wave_at__isnull=True)
        return batches.aggregate(n=Sum("size"))["n"] or 0

    answers = {}
    for until in (now, now + timedelta(seconds=30), now + timedelta(days=1)):
        for without_waves in (False, True):
            expected = orm(until, without_waves)
            got = statements.in_flight_size(until, without_waves=without_waves)
            assert got == expected
            answers[until, without_waves] = got
    assert answers[now, False] == 30
    assert answers[now + timedelta(days=1), False] == 150
    assert answers[now + timedelta(days=1), True] == 30
    Batch.objects.filter(status=B.ACCEPTED).delete()
    assert statements.in_flight_size(now) == 0


def test_the_due_batches_are_those_the_orm_finds_in_the_same_order(campaign):
    now = timezone.now()
    due = add_batch(campaign, not_before=now - timedelta(seconds=1))
    add_batch(campaign, not_before=now + timedelta(minutes=5))  # backing off
    add_batch(campaign, is_test=True)  # a test send's: never claimed here
    add_batch(campaign, status=B.ACCEPTED)
    Batch.objects.filter(campaign=campaign, sequence=1).update(
        not_before=now + timedelta(seconds=1)
    )
    expected = list(
        Batch.objects.filter(campaign_id=campaign.pk, is_test=False, status=B.PENDING)
        .filter(Q(not_before__isnull=True) | Q(not_before__lte=now))
        .order_by("sequence")
        .values_list("pk", flat=True)[: statements.CANDIDATES]
    )
    got = statements.due_batches(campaign.pk, now)
    assert got == expected
    by_sequence = dict(
        Batch.objects.filter(campaign=campaign).values_list("sequence", "pk")
    )
    assert got == [by_sequence[2], by_sequence[3], due.pk]
    assert statements.due_batches(campaign.pk + 1000, now) == []


def test_a_batch_is_claimed_once_and_read_back_as_the_orm_reads_it(campaign):
    first = Batch.objects.filter(campaign=campaign).order_by("sequence").first()
    now = timezone.now()
    assert statements.claim(first.pk, now, "host-a:1") is True
    assert statements.claim(first.pk, now, "host-b:2") is False  # taken already
    claimed = statements.batch(first.pk)
    assert fields_of(claimed) == fields_of(Batch.objects.get(pk=first.pk))
    assert (claimed.status, claimed.claimed_at, claimed.claimed_by) == (
        B.SUBMITTING,
        now,
        "host-a:1",
    )
    assert claimed.attempts == first.attempts + 1
    with pytest.raises(Batch.DoesNotExist):
        statements.batch(first.pk + 1000)


def test_an_outcome_is_written_only_under_the_claim_it_answers(campaign):
    first = Batch.objects.filter(campaign=campaign).order_by("sequence").first()
    now = timezone.now()
    statements.claim(first.pk, now, "host-a:1")
    claim = statements.batch(first.pk).claimed_at  # as the drain reads it back
    outcome = {"status": B.ACCEPTED, "sinch_batch_id": "01ABC", "send_after": None}
    # Another claim's answer, or one for a batch that moved on, changes nothing.
    assert not statements.settle_claim(first.pk, claim - timedelta(seconds=1), outcome)
    assert not statements.settle_claim(first.pk, None, outcome)
    assert statements.settle_claim(first.pk, claim, {**outcome, "submitted_at": now})
    assert not statements.settle_claim(first.pk, claim, outcome)  # ACCEPTED now
    first.refresh_from_db()
    assert (first.status, first.sinch_batch_id, first.submitted_at) == (
        B.ACCEPTED,
        "01ABC",
        now,
    )
    # A batch never claimed (claimed_at empty) that is UNCERTAIN.
    other = add_batch(campaign, status=B.UNCERTAIN)
    assert statements.settle_claim(other.pk, None, {"last_error": "settled"})
    other.refresh_from_db()
    assert other.last_error == "settled"


def test_a_batch_s_recipients_move_as_the_orm_moves_them(campaign):
    first, second = Batch.objects.filter(campaign=campaign).order_by("sequence")[:2]
    now = timezone.now()
    moved = statements.move_recipients(first, R.PENDING, R.SUBMITTED, updated_at=now)
    expected = Recipient.in_batch(second, R.PENDING).update(
        status=R.SUBMITTED, updated_at=now
    )
    assert moved == expected == 3
    counters.moved(campaign.pk, R.PENDING, R.SUBMITTED, moved + expected)
    for batch in (first, second):
        assert set(
            Recipient.objects.filter(batch=batch).values_list("status", "updated_at")
        ) == {(R.SUBMITTED, now)}
    assert statements.move_recipients(first, R.PENDING, R.SUBMITTED) == 0
    assert Recipient.in_batch(first, R.SUBMITTED).count() == 3


def test_the_drain_claims_through_these_statements_as_it_did(campaign):
    # claim_next: the first due batch, claimed by this worker, one attempt more.
    first = Batch.objects.filter(campaign=campaign).order_by("sequence").first()
    Batch.objects.filter(pk=first.pk).update(attempts=F("attempts") + 2)
    claimed = drain.claim_next(campaign.pk)
    assert claimed.pk == first.pk
    assert (claimed.status, claimed.attempts) == (B.SUBMITTING, 3)
    assert claimed.claimed_by == drain.worker_name()
    assert drain.claim_next(campaign.pk).sequence == 2
