"""config.lib.shared_connection.run_beside: database work in a second thread,
in the caller's transaction, while the caller does something else."""

import sys
import threading

import pytest
from django.db import IntegrityError, connection, transaction

from config.lib.shared_connection import (
    SWITCH_INTERVAL_S,
    run_beside,
    run_streamed_beside,
)
from contacts.models import Contact


def test_the_work_is_in_the_callers_transaction_and_runs_beside_it(db):
    before = sys.getswitchinterval()
    seen = {}
    written = threading.Event()

    def work():
        seen["work"] = threading.current_thread().name
        seen["switch"] = sys.getswitchinterval()
        Contact.objects.create(first_name="Written", external_id="W1")
        written.set()

    def meanwhile():
        seen["meanwhile"] = threading.current_thread().name
        seen["beside"] = written.wait(timeout=10)  # not after it

    with transaction.atomic():
        run_beside(work, meanwhile)
        assert Contact.objects.filter(external_id="W1").exists()
        transaction.set_rollback(True)
    # Rolled back with the caller's transaction: it was the caller's.
    assert not Contact.objects.filter(external_id="W1").exists()
    assert seen == {
        "work": "database-work",
        "meanwhile": "MainThread",
        "beside": True,
        # The lock handed over quickly while both ran, as before afterwards.
        "switch": SWITCH_INTERVAL_S,
    }
    assert sys.getswitchinterval() == before
    assert not [t for t in threading.enumerate() if t.name == "database-work"]
    assert connection.allow_thread_sharing is False


def test_what_the_work_raises_is_raised_here_after_meanwhile_is_done(db):
    Contact.objects.create(external_id="TAKEN")
    done = []

    def work():
        Contact.objects.create(external_id="TAKEN")

    with pytest.raises(IntegrityError), transaction.atomic():
        run_beside(work, lambda: done.append(True))
    assert done == [True]
    # The connection goes on serving this thread.
    assert Contact.objects.filter(external_id="TAKEN").count() == 1
    assert connection.allow_thread_sharing is False


def test_streamed_pieces_run_in_order_each_while_the_next_is_made(db):
    ran, made = [], []
    first_written = threading.Event()

    def piece(name):
        def write():
            Contact.objects.create(first_name=name, external_id=name)
            ran.append((name, threading.current_thread().name))
            first_written.set()

        made.append(name)
        return write

    def pieces():
        yield piece("A")
        # The second piece is made only once the first was written beside.
        assert first_written.wait(timeout=10)
        yield piece("B")

    meanwhile = []
    with transaction.atomic():
        run_streamed_beside(pieces(), lambda: meanwhile.append(list(made)))
    assert ran == [("A", "database-work"), ("B", "database-work")]
    assert [c.external_id for c in Contact.objects.order_by("pk")] == ["A", "B"]
    assert meanwhile == [["A", "B"]]  # once every piece was made
    assert connection.allow_thread_sharing is False


def test_a_piece_that_cannot_be_made_stops_the_work_and_is_raised(db):
    def pieces():
        yield lambda: Contact.objects.create(external_id="MADE")
        raise ValueError("cannot be made")

    with pytest.raises(ValueError, match="cannot be made"), transaction.atomic():
        run_streamed_beside(pieces(), lambda: None)
    assert not Contact.objects.exists()  # rolled back with the transaction
    assert not [t for t in threading.enumerate() if t.name == "database-work"]
