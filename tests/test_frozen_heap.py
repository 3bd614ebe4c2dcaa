"""Long bulk runs leave the heap alive before them out of the garbage
collector's full passes (config.lib.collector), and give it back afterwards."""

import gc
from types import SimpleNamespace

import pytest

from campaigns.dispatch import drain, freeze
from config.lib.collector import frozen_heap


class Stop(Exception):
    pass


def test_the_heap_is_frozen_during_the_run_and_given_back_after_it():
    assert gc.get_freeze_count() == 0
    with frozen_heap():
        assert gc.get_freeze_count() > 0
    assert gc.get_freeze_count() == 0


def test_a_run_inside_another_leaves_the_outer_run_frozen():
    with frozen_heap():
        with frozen_heap():
            pass
        # Still frozen (a frozen object freed meanwhile lowers the count).
        assert gc.get_freeze_count() > 0
    assert gc.get_freeze_count() == 0


def test_the_heap_is_given_back_when_the_run_fails():
    with pytest.raises(Stop), frozen_heap():
        raise Stop
    assert gc.get_freeze_count() == 0


def _stopper(seen):
    def stop(*args, **kwargs):
        seen.append(gc.get_freeze_count())
        raise Stop

    return stop


def test_an_import_writes_its_rows_with_the_heap_frozen(db, monkeypatch, tmp_path):
    from contacts.importing import importer
    from contacts.models import ImportJob

    seen: list[int] = []
    monkeypatch.setattr(importer.Importer, "_process", _stopper(seen))
    job = ImportJob.objects.create(
        original_name="people.csv",
        file_path=str(tmp_path / "people.csv"),
        headers=["phone"],
        mapping={"phone": "phone"},
    )
    done = importer.run_import(job, dry_run=False)
    assert len(seen) == 1
    assert seen[0] > 0
    assert "Stop" in done.error  # the run failed where the stopper was
    assert gc.get_freeze_count() == 0


def test_a_launch_s_freeze_and_its_drain_loops_run_frozen(
    monkeypatch,
):
    seen: list[int] = []
    stop = _stopper(seen)
    objects = SimpleNamespace(select_related=stop)
    monkeypatch.setattr(freeze.Campaign, "objects", objects)
    monkeypatch.setattr(drain.settlement, "settle_uncertain_batches", stop)
    for run in (
        lambda: freeze.freeze_recipients(1),
        lambda: drain.run_dispatcher(1),
    ):
        with pytest.raises(Stop):
            run()
    assert len(seen) == 2
    assert all(count > 0 for count in seen)
    assert gc.get_freeze_count() == 0
