"""The cyclic garbage collector is paused during a whole-audience walk and
comes back afterwards (config.lib.collector)."""

import gc
import threading
import weakref

import pytest

from config.lib import collector


@pytest.fixture(autouse=True)
def collector_on():
    gc.enable()
    yield
    gc.enable()


def test_the_collector_is_paused_during_a_walk_and_back_on_after_it():
    with collector.paused():
        assert not gc.isenabled()
    assert gc.isenabled()


def test_the_collector_comes_back_after_a_walk_that_failed():
    with pytest.raises(RuntimeError), collector.paused():
        raise RuntimeError("the database went away")
    assert gc.isenabled()


def test_overlapping_walks_leave_it_paused_until_the_last_one_ends():
    first_inside, first_done = threading.Event(), threading.Event()

    def first_walk():
        with collector.paused():
            first_inside.set()
            first_done.wait(5)

    thread = threading.Thread(target=first_walk)
    thread.start()
    first_inside.wait(5)
    with collector.paused():
        first_done.set()
        thread.join()
        assert not gc.isenabled()  # the first walk ended, this one goes on
    assert gc.isenabled()


def test_a_collector_turned_off_before_the_walk_stays_off():
    gc.disable()
    with collector.paused():
        pass
    assert not gc.isenabled()


def test_a_cycle_made_during_a_walk_is_collected_after_its_chunk():
    class Node:
        pass

    with collector.paused():
        node = Node()
        node.itself = node  # a cycle: reference counting never frees it
        gone = weakref.ref(node)
        del node
        assert gone() is not None
        collector.collect_young()
        assert gone() is None
