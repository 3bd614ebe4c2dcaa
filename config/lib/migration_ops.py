"""Migration operations that keep a large production database writable.

An index added to a big table (recipients: a row per person per campaign)
takes minutes to build; a plain CREATE INDEX blocks every write to the
table meanwhile, so a deploy would stop launches, dispatch and receipts.
"""

from django.contrib.postgres.operations import (
    AddIndexConcurrently,
    RemoveIndexConcurrently,
)
from django.db.migrations import AddIndex, RemoveIndex


class _ConcurrentlyOnPostgreSQL:
    """The PostgreSQL operation (`CONCURRENTLY`: the migration must say
    `atomic = False`) there; `plain`, the ordinary operation, elsewhere
    (SQLite has no such option, and a single-file database has one writer
    anyway)."""

    plain: type

    def database_forwards(self, app_label, schema_editor, from_state, to_state):
        if schema_editor.connection.vendor == "postgresql":
            super().database_forwards(app_label, schema_editor, from_state, to_state)
        else:
            self.plain.database_forwards(
                self, app_label, schema_editor, from_state, to_state
            )

    def database_backwards(self, app_label, schema_editor, from_state, to_state):
        if schema_editor.connection.vendor == "postgresql":
            super().database_backwards(app_label, schema_editor, from_state, to_state)
        else:
            self.plain.database_backwards(
                self, app_label, schema_editor, from_state, to_state
            )


class AddIndexWithoutBlockingWrites(_ConcurrentlyOnPostgreSQL, AddIndexConcurrently):
    """CREATE INDEX CONCURRENTLY on PostgreSQL; a plain AddIndex elsewhere."""

    plain = AddIndex


class RemoveIndexWithoutBlockingWrites(
    _ConcurrentlyOnPostgreSQL, RemoveIndexConcurrently
):
    """DROP INDEX CONCURRENTLY on PostgreSQL; a plain RemoveIndex elsewhere."""

    plain = RemoveIndex
