"""While an import writes on SQLite, another connection copies the
write-ahead log back into the database file (config.lib.sqlite_checkpoints)."""

import os
import threading
import time

from django.db import connection, transaction

from config.lib.sqlite_checkpoints import checkpoints_alongside
from contacts.models import Contact


def _write(n: int) -> None:
    with transaction.atomic():
        Contact.objects.bulk_create(
            Contact(first_name="x" * 140, last_name=f"{i}") for i in range(n)
        )


def _grows(path: str, size: int, within_s: float) -> bool:
    deadline = time.monotonic() + within_s
    while time.monotonic() < deadline:
        if os.path.getsize(path) > size:
            return True
        time.sleep(0.02)
    return False


def test_the_log_is_copied_back_by_another_connection_while_the_writer_works(
    transactional_db,
):
    if connection.vendor != "sqlite":  # nothing to do, no thread started
        with checkpoints_alongside():
            names = [t.name for t in threading.enumerate()]
        assert "sqlite-checkpoints" not in names
        return
    path = connection.settings_dict["NAME"]
    with connection.cursor() as cursor:
        cursor.execute("PRAGMA wal_autocheckpoint")
        (autocheckpoint,) = cursor.fetchone()
        # The writer itself never copies the log back in this test.
        cursor.execute("PRAGMA wal_autocheckpoint = 0")
        cursor.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    try:
        size = os.path.getsize(path)
        _write(3000)
        assert not _grows(path, size, within_s=0.5)  # the rows are in the log
        with checkpoints_alongside():
            assert _grows(path, size, within_s=5)
            size = os.path.getsize(path)
            _write(3000)
            assert _grows(path, size, within_s=5)
        assert "sqlite-checkpoints" not in [t.name for t in threading.enumerate()]
    finally:
        with connection.cursor() as cursor:
            cursor.execute(f"PRAGMA wal_autocheckpoint = {int(autocheckpoint)}")
    assert Contact.objects.count() == 6000
