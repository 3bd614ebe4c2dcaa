"""The pre-send check reads the next chunk of members in a thread while it
checks the current one (campaigns.authoring.read_ahead), and finds exactly
what it finds reading them in line."""

import threading
from pathlib import Path

import pytest

from campaigns.authoring import audience, presend
from campaigns.authoring.read_ahead import read_ahead
from contacts.models import ConsentState

IN, OUT = ConsentState.OPTED_IN, ConsentState.OPTED_OUT


@pytest.fixture
def spring(make_template, make_audience, make_contact, make_campaign):
    """Eleven members over four chunks of three: opted in, opted out, a
    duplicate number (across chunks), a missing value and an invalid number."""
    template = make_template("Spring", "Hi ${first_name}!")
    customers = make_audience(
        "Customers",
        6,
        phone="+1415555080{}",
        opted_out=["+14155550900", "+14155550901"],
    )
    # The first number again, written differently.
    make_contact("+1 415 555 0800", consent=IN, lists=[customers])
    make_contact("+14155550810", consent=IN, lists=[customers], first_name="")
    make_contact("+12", consent=IN, lists=[customers])
    return make_campaign(template, [customers], "Spring")


@pytest.fixture
def threads_reading(monkeypatch):
    """The names of the threads that read member rows, one per chunk."""
    names = []
    real = audience.member_rows

    def member_rows(*args, **kwargs):
        for rows in real(*args, **kwargs):
            names.append(threading.current_thread().name)
            yield rows

    monkeypatch.setattr(audience, "member_rows", member_rows)
    return names


def checked(campaign) -> tuple[dict, str]:
    result = presend.run_presend_check(campaign, chunk_size=3)
    return result.summary, Path(result.csv_path).read_text(encoding="utf-8")


@pytest.mark.django_db(transaction=True)
def test_members_read_ahead_in_a_thread_give_the_same_check_as_read_in_line(
    spring, threads_reading, monkeypatch
):
    ahead = checked(spring)
    assert threads_reading == ["read-ahead"] * 4
    monkeypatch.setattr(presend, "read_ahead", lambda chunks: chunks())
    in_line = checked(spring)
    assert threads_reading[4:] == ["MainThread"] * 4
    assert ahead == in_line
    summary, rows = ahead
    assert (summary["audience"], summary["ok"], summary["blocking"]) == (11, 6, 2)
    assert summary["excluded_by_reason"] == {"duplicate identity": 1, "opted out": 2}
    # Without the contact ids (PostgreSQL's go on counting between tests).
    assert [line.split(",", 1)[1] for line in rows.splitlines()[7:]] == [
        "+14155550900,EXCLUDED,opted out,,,",
        "+14155550901,EXCLUDED,opted out,,,",
        "+14155550800,EXCLUDED,duplicate identity,,,",
        "+14155550810,BLOCKING,no value for ${first_name},,,",
        "'+12,BLOCKING,invalid SMS identity,,,",
    ]


def test_inside_a_transaction_members_are_read_in_line(spring, threads_reading):
    """A test's transaction (or a caller's): another connection would not see
    the members, so no thread reads them."""
    summary, _ = checked(spring)
    assert threads_reading == ["MainThread"] * 4
    assert summary["audience"] == 11


def test_an_error_while_reading_ahead_is_raised_to_the_check():
    def chunks():
        yield [1]
        raise RuntimeError("the database went away")

    reader = read_ahead(chunks)
    assert next(reader) == [1]  # what was read before the error comes first
    with pytest.raises(RuntimeError, match="went away"):
        next(reader)


def test_a_check_that_stops_early_stops_the_reading_thread():
    produced = []

    def chunks():
        for n in range(1000):
            produced.append(n)
            yield [n]

    reader = read_ahead(chunks, depth=2)
    assert next(reader) == [0]
    reader.close()  # the check failed: the loop is left
    assert not any(t.name == "read-ahead" for t in threading.enumerate())
    assert len(produced) <= 4  # a chunk or two ahead, never the whole walk


def test_the_check_pauses_cyclic_garbage_collection_while_it_walks(spring, monkeypatch):
    """Collection costs a fifth of a large check (config.lib.collector)."""
    import gc

    during = []
    real = audience.member_rows

    def member_rows(*args, **kwargs):
        for rows in real(*args, **kwargs):
            during.append(gc.isenabled())
            yield rows

    monkeypatch.setattr(audience, "member_rows", member_rows)
    assert gc.isenabled()
    summary, _ = checked(spring)
    assert during == [False] * 4
    assert gc.isenabled()
    assert summary["audience"] == 11
