"""On PostgreSQL an import resolves the next chunk (its lookups, locks and
ids) on a second connection while a thread writes and commits the chunk
before: what the chunk being written creates is known to the next, a chunk
the database refuses is written row by row with the next resolved again, and
a run that stops leaves only committed chunks behind."""

import threading
import time

import pytest
from django.db import connection, connections, transaction

from contacts.importing import importer, pipeline, plan
from contacts.importing.importer import Importer, run_import
from contacts.models import ChannelIdentity, ConsentEvent, Contact, ImportJob

pytestmark = [
    pytest.mark.skipif(
        connection.vendor != "postgresql", reason="the pipeline is PostgreSQL's"
    ),
    # Committed for real: the second connection sees only what is committed.
    pytest.mark.django_db(transaction=True),
]

HEADER = ["phone", "first_name", "customer_id", "consent"]
NUMBER = "+4915123000777"  # stored before the import, on SMS


class Killed(BaseException):
    """The worker process dies here: no `except Exception` sees it."""


@pytest.fixture(autouse=True)
def chunks_of_three(monkeypatch):
    monkeypatch.setattr(importer, "CHUNK_ROWS", 3)


@pytest.fixture
def import_rows(column_consent_import):
    def run(rows):
        return run_import(column_consent_import([HEADER, *rows]), dry_run=False)

    return run


def person(n, customer=None, phone=None):
    return [phone or f"+4915123{n:06d}", f"P{n}", customer or f"C{n}", "yes"]


def _backends() -> int:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()"
        )
        return cursor.fetchone()[0]


def _backends_settle_at(count: int) -> int:
    """The backends of this database once closed ones have gone (a server
    process ends a moment after its client closes)."""
    deadline = time.monotonic() + 5
    while (now := _backends()) != count and time.monotonic() < deadline:
        time.sleep(0.05)
    return now


@pytest.fixture
def first_write_held(monkeypatch):
    """The first chunk's writes wait (at most 5 s) until the second chunk has
    been resolved; the list says whether it was, when they went out."""
    resolved = threading.Event()
    saw = []
    prepare, init = plan.ChunkPlan.prepare, plan.ChunkPlan.__init__

    def watched_init(self, importer, rows, **options):
        init(self, importer, rows, **options)
        if rows[0].line > 4:  # the second chunk
            resolved.set()

    def held_first_write(self):
        write = prepare(self)
        if self.importer.created_in_flight:
            return write  # not the first chunk

        def first():
            # Serially the second chunk is resolved only after this commits.
            saw.append(resolved.wait(timeout=5))
            write()

        return first

    monkeypatch.setattr(plan.ChunkPlan, "__init__", watched_init)
    monkeypatch.setattr(plan.ChunkPlan, "prepare", held_first_write)
    return saw


def test_the_next_chunk_is_resolved_while_the_one_before_is_written(
    import_rows, first_write_held
):
    before = _backends()
    job = import_rows([person(n) for n in range(9)])

    assert job.status == ImportJob.Status.DONE, job.error
    assert first_write_held == [True]
    assert (job.rows_ok, job.rows_bad, job.contacts_created) == (9, 0, 9)
    assert ChannelIdentity.objects.count() == ConsentEvent.objects.count() == 9
    assert job.checkpoint["line"] == 10
    assert _backends_settle_at(before) == before  # its second connections closed


def test_a_contact_the_chunk_being_written_creates_takes_the_next_chunks_rows(
    import_rows, first_write_held, monkeypatch
):
    # C1's second number is in the second chunk, resolved before the first
    # committed C1: it is merged into that contact, not refused as a second C1.
    one_by_one = []
    row_by_row = Importer.row_by_row
    monkeypatch.setattr(
        Importer,
        "row_by_row",
        lambda self, rows: one_by_one.append(rows) or row_by_row(self, rows),
    )
    rows = [person(1), person(2), person(3)]
    rows += [person(4), person(5, customer="C1", phone="+4915129999999"), person(6)]
    job = import_rows(rows)

    assert job.status == ImportJob.Status.DONE, job.error
    assert first_write_held == [True]
    assert one_by_one == []
    assert (job.rows_ok, job.contacts_created, job.contacts_merged) == (6, 5, 1)
    c1 = Contact.objects.get(external_id="C1")
    assert sorted(c1.identities.values_list("identity", flat=True)) == [
        "+4915123000001",
        "+4915129999999",
    ]
    assert c1.first_name == "P5"  # the later row's name


@pytest.fixture
def number_taken_meanwhile(monkeypatch):
    """Between the first chunk's resolution and its writes, another session
    creates one of its numbers (for contact OTHER): the chunk's INSERT fails."""
    taken = "+4915123000002"
    prepare = plan.ChunkPlan.prepare

    def prepare_then_take(self):
        write = prepare(self)
        if not Contact.objects.filter(external_id="OTHER").exists():

            def elsewhere():
                other = Contact.objects.create(external_id="OTHER")
                ChannelIdentity.objects.create(
                    contact=other, channel="SMS", identity=taken
                )
                connections.close_all()

            thread = threading.Thread(target=elsewhere)
            thread.start()
            thread.join()
        return write

    monkeypatch.setattr(plan.ChunkPlan, "prepare", prepare_then_take)
    return taken


def test_a_chunk_the_database_refuses_is_written_row_by_row_and_the_next_resolved_again(
    import_rows, number_taken_meanwhile
):
    # The first chunk's rows are written one by one (the taken number joins
    # OTHER), and the second chunk, resolved against the contacts the first
    # was to create (C1 among them), is rolled back and resolved again
    # against what was committed.
    rows = [person(1), person(2), person(3)]
    rows += [person(4, customer="C1", phone="+4915129999999"), person(5), person(6)]
    job = import_rows(rows)

    assert job.status == ImportJob.Status.DONE, job.error
    assert (job.rows_ok, job.rows_bad) == (6, 0)
    assert job.contacts_created == 4  # C1, C3, C5, C6
    taken = ChannelIdentity.objects.get(identity=number_taken_meanwhile)
    assert taken.contact.external_id == "OTHER"
    c1 = Contact.objects.get(external_id="C1")
    assert sorted(c1.identities.values_list("identity", flat=True)) == [
        "+4915123000001",
        "+4915129999999",
    ]
    assert ConsentEvent.objects.count() == 6
    assert not Contact.objects.filter(external_id__in=["C2", "C4"]).exists()


def test_the_next_chunk_does_not_wait_for_a_number_the_chunk_before_holds(
    column_consent_import, number_taken_meanwhile
):
    # The first chunk locks a stored SMS number; the second names it on
    # WhatsApp, and finds its identities (by number) locked. Waiting there
    # would never end once the first chunk is refused: its rows are written
    # again by the thread that waits. The second is resolved after the first.
    known = Contact.objects.create(external_id="KNOWN")
    ChannelIdentity.objects.create(contact=known, channel="SMS", identity=NUMBER)
    cancelled = []

    def cancel_lock_waits():
        with connections["default"].cursor() as cursor:
            cursor.execute(
                "SELECT pg_cancel_backend(pid) FROM pg_stat_activity "
                "WHERE datname = current_database() AND wait_event_type = 'Lock'"
            )
            cancelled.extend(cursor.fetchall())
        connections.close_all()

    watchdog = threading.Timer(10, cancel_lock_waits)
    watchdog.start()
    rows = [["phone", "first_name", "customer_id", "consent", "channel"]]
    rows += [[*person(n), "SMS"] for n in (1, 2)] + [[NUMBER, "K", "KNOWN", "yes", ""]]
    rows += [[NUMBER, "K", "KNOWN", "yes", "WHATSAPP"], [*person(5), "SMS"]]
    try:
        job = run_import(column_consent_import(rows), dry_run=False)
    finally:
        watchdog.cancel()

    assert cancelled == []
    assert job.status == ImportJob.Status.DONE, job.error
    assert (job.rows_ok, job.rows_bad) == (5, 0)
    assert sorted(known.identities.values_list("channel", flat=True)) == [
        "SMS",
        "WHATSAPP",
    ]


def test_a_run_killed_after_a_chunk_leaves_the_resolved_next_one_unwritten(
    column_consent_import, monkeypatch
):
    seen = []

    def die_after_first(job):
        seen.append(job.checkpoint["line"])
        raise Killed

    monkeypatch.setattr(importer, "after_chunk", die_after_first)
    job = column_consent_import([HEADER, *[person(n) for n in range(9)]])
    before = _backends()
    with pytest.raises(Killed):
        run_import(job, dry_run=False)

    assert seen == [4]
    assert ChannelIdentity.objects.count() == ConsentEvent.objects.count() == 3
    assert _backends_settle_at(before) == before
    job.refresh_from_db()
    assert job.status == ImportJob.Status.RUNNING
    assert job.checkpoint["line"] == 4


def test_a_file_that_cannot_be_read_on_keeps_and_counts_the_chunk_being_written(
    column_consent_import, tmp_path
):
    # The error comes while the last chunk before it is being written: that
    # chunk is committed, and counted, as serially.
    people = "".join(f"+4915123{n:06d},P{n},C{n},yes\n" for n in range(2600))
    path = tmp_path / "late.csv"
    path.write_bytes(
        (",".join(HEADER) + "\n" + people).encode()
        + "+4915129999999,Ren\xe9,C9,yes\n".encode("latin-1")
    )
    job = column_consent_import([HEADER, person(0)])
    ImportJob.objects.filter(pk=job.pk).update(
        file_path=str(path), encoding="utf-8-sig"
    )
    job.refresh_from_db()
    job = run_import(job, dry_run=False)

    assert job.status == ImportJob.Status.FAILED
    assert "not UTF-8" in job.error
    assert job.rows_total > 2000
    assert Contact.objects.count() == job.rows_ok == job.rows_total
    assert job.checkpoint["counts"]["rows_ok"] == job.rows_ok


def test_a_run_whose_lease_was_taken_over_commits_nothing_more(
    column_consent_import, monkeypatch
):
    def taken_over(job):
        ImportJob.objects.filter(pk=job.pk).update(claim_token="another-worker")

    monkeypatch.setattr(importer, "after_chunk", taken_over)
    job = column_consent_import([HEADER, *[person(n) for n in range(9)]])
    run_import(job, dry_run=False)

    job.refresh_from_db()
    assert job.claim_token == "another-worker"
    assert job.status == ImportJob.Status.RUNNING
    assert job.checkpoint["line"] == 4
    assert ConsentEvent.objects.count() == 3  # the first chunk only


def test_an_import_inside_a_callers_transaction_is_written_serially(
    column_consent_import,
):
    job = column_consent_import([HEADER, person(1)])
    with transaction.atomic():
        assert not pipeline.usable()
        run_import(job, dry_run=False)
        # The caller's transaction holds it: a second connection would not
        # have seen the job.
        assert Contact.objects.filter(external_id="C1").exists()
    assert pipeline.usable()
