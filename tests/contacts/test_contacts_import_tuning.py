"""An import tunes its SQLite connection for bulk writing (rarer checkpoints,
a smaller page cache) and puts the settings back when it ends: the worker's
connection serves other work next."""

import pytest
from django.db import connection

from config.lib.bulk import IMPORT_PRAGMAS
from contacts.importing import importer
from contacts.models import ImportJob


def _pragmas() -> dict[str, int]:
    with connection.cursor() as cursor:
        values = {}
        for name in IMPORT_PRAGMAS:
            cursor.execute(f"PRAGMA {name}")
            values[name] = cursor.fetchone()[0]
    return values


@pytest.mark.django_db(transaction=True)
def test_an_import_tunes_sqlite_while_it_writes_and_puts_it_back(
    column_consent_import, monkeypatch
):
    if connection.vendor != "sqlite":
        pytest.skip("PostgreSQL's connection is not tuned")
    before = _pragmas()
    assert before != IMPORT_PRAGMAS
    during = []
    monkeypatch.setattr(importer, "after_chunk", lambda job: during.append(_pragmas()))
    job = column_consent_import(
        [["phone", "first_name", "consent"], ["+33612345678", "Zoé", "yes"]]
    )
    job = importer.run_import(job, dry_run=False, actor=None)
    assert job.status == ImportJob.Status.DONE, job.error
    assert job.rows_ok == 1
    assert during == [IMPORT_PRAGMAS]
    assert _pragmas() == before
