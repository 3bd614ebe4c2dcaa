"""While the database writes one chunk of an import, the next chunk is read
and validated (the writes run in a thread, in the chunk's transaction); a row
the database refuses during those writes is still reported alone, and the
rest of its chunk imported."""

import threading

import pytest

from contacts.importing import importer, plan, reader
from contacts.importing.importer import run_import
from contacts.models import ChannelIdentity, ConsentEvent, Contact, ImportJob

HEADER = ["phone", "first_name", "customer_id", "consent"]


@pytest.fixture
def run_csv(column_consent_import):
    def run(rows):
        return run_import(column_consent_import([HEADER, *rows]), dry_run=False)

    return run


def people(first, count):
    return [
        [f"+4915123{first + i:06d}", f"P{first + i}", f"C{first + i}", "yes"]
        for i in range(count)
    ]


def test_the_next_chunk_is_read_while_the_database_writes_this_one(
    run_csv, monkeypatch
):
    monkeypatch.setattr(importer, "CHUNK_ROWS", 3)
    monkeypatch.setattr(importer, "SQLITE_CHUNK_ROWS", 3)
    reads_during_writes = []
    fetch = reader.ReadAhead.fetch

    def watched(self):
        writing = any(t.name == "database-work" for t in threading.enumerate())
        reads_during_writes.append(writing)
        fetch(self)

    monkeypatch.setattr(reader.ReadAhead, "fetch", watched)
    job = run_csv(people(0, 9))

    assert job.status == ImportJob.Status.DONE, job.error
    assert (job.rows_ok, job.rows_bad) == (9, 0)
    # The first chunk was read before any write; each chunk's writes had the
    # next read beside them (the third's found the end of the file).
    assert reads_during_writes[0] is False
    assert reads_during_writes.count(True) == 3
    assert ChannelIdentity.objects.count() == 9
    assert ConsentEvent.objects.count() == 9
    assert sorted(Contact.objects.values_list("first_name", flat=True)) == sorted(
        f"P{i}" for i in range(9)
    )


def test_a_row_the_database_refuses_during_the_writes_is_reported_alone(
    run_csv, make_contact, monkeypatch
):
    monkeypatch.setattr(importer, "CHUNK_ROWS", 3)
    monkeypatch.setattr(importer, "SQLITE_CHUNK_ROWS", 3)
    # Line 3's number belongs to a contact without a customer id; the file
    # gives it C1, which someone else takes while the chunk is written.
    make_contact("+4915123000001", first_name="Known", external_id="")
    merge = plan.prepare_merge
    threads = []

    def taken_meanwhile(merged, now):
        send = merge(merged, now)
        if send is None:  # nobody to merge into
            return None

        def taken_then_sent():
            threads.append(threading.current_thread().name)
            if any(r.external_id == "C1" for rows in merged.values() for r in rows):
                Contact.objects.create(first_name="Other", external_id="C1")
            send()

        return taken_then_sent

    monkeypatch.setattr(plan, "prepare_merge", taken_meanwhile)
    job = run_csv(people(0, 6))

    assert job.status == ImportJob.Status.DONE, job.error
    # Refused in the writes' thread; then row by row in the importer's own.
    assert threads[0] == "database-work"
    assert (job.rows_ok, job.rows_bad) == (5, 1)
    assert [e["line"] for e in job.sample_errors] == [3]
    assert job.sample_errors[0]["problem"].startswith("could not be saved")
    # Its chunk's other rows and the later chunk are imported, nothing twice.
    assert ChannelIdentity.objects.count() == 6
    assert ConsentEvent.objects.count() == 5
    assert not Contact.objects.filter(first_name="Other").exists()
