"""Every task path the product queues or schedules imports: django-q2 would
only find a typo when the task runs."""

import re
from pathlib import Path

import pytest
from django.utils.module_loading import import_string

from campaigns.schedules import schedules

ROOT = Path(__file__).resolve().parents[1]
QUEUED = re.compile(r"[\"']((?:campaigns|contacts)\.tasks\.\w+)[\"']")


def _queued_paths() -> set[str]:
    paths = set()
    for package in ("campaigns", "contacts"):
        for path in (ROOT / package).rglob("*.py"):
            paths.update(QUEUED.findall(path.read_text()))
    return paths


def test_the_product_queues_tasks_by_these_paths():
    assert {
        "campaigns.tasks.dispatch_campaign",
        "campaigns.tasks.freeze_recipients",
        "campaigns.tasks.presend_check",
        "campaigns.tasks.process_webhook_events",
        "contacts.tasks.process_import",
    } <= _queued_paths()


@pytest.mark.parametrize("path", sorted(_queued_paths()))
def test_every_queued_task_path_imports(path):
    assert callable(import_string(path))


@pytest.mark.parametrize("spec", schedules(), ids=lambda s: s["name"])
def test_every_schedule_path_imports(spec, db):
    assert callable(import_string(spec["func"]))


def test_migrate_created_every_schedule_with_its_task(db):
    from django_q.models import Schedule

    stored = dict(Schedule.objects.values_list("name", "func"))
    for spec in schedules():
        assert stored[spec["name"]] == spec["func"]
        assert callable(import_string(stored[spec["name"]]))
