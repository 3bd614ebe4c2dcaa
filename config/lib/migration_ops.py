"""Migration operations that keep a large production database writable.

An index added to a big table (recipients: a row per person per campaign)
takes minutes to build; a plain CREATE INDEX blocks every write to the
table meanwhile, so a deploy would stop launches, dispatch and receipts.
"""

from django.contrib.postgres.operations import (
    AddIndexConcurrently,
    NotInTransactionMixin,
    RemoveIndexConcurrently,
)
from django.db.migrations import AddConstraint, AddIndex, RemoveIndex
from django.db.migrations.operations.base import Operation


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


class AddPartialUniqueWithoutBlockingWrites(NotInTransactionMixin, AddConstraint):
    """A UniqueConstraint with a condition, which both databases keep as a
    unique index: CREATE UNIQUE INDEX CONCURRENTLY on PostgreSQL (the
    migration must say `atomic = False`); a plain AddConstraint elsewhere."""

    def __init__(self, model_name, constraint):
        if getattr(constraint, "condition", None) is None:
            raise ValueError("only a UniqueConstraint with a condition is an index")
        super().__init__(model_name, constraint)

    def database_forwards(self, app_label, schema_editor, from_state, to_state):
        if schema_editor.connection.vendor != "postgresql":
            super().database_forwards(app_label, schema_editor, from_state, to_state)
            return
        self._ensure_not_in_transaction(schema_editor)
        model = to_state.apps.get_model(app_label, self.model_name)
        if self.allow_migrate_model(schema_editor.connection.alias, model):
            statement = self.constraint.create_sql(model, schema_editor)
            statement.template = statement.template.replace(
                "CREATE UNIQUE INDEX", "CREATE UNIQUE INDEX CONCURRENTLY", 1
            )
            schema_editor.execute(statement, params=None)

    def database_backwards(self, app_label, schema_editor, from_state, to_state):
        if schema_editor.connection.vendor != "postgresql":
            super().database_backwards(app_label, schema_editor, from_state, to_state)
            return
        self._ensure_not_in_transaction(schema_editor)
        model = from_state.apps.get_model(app_label, self.model_name)
        if self.allow_migrate_model(schema_editor.connection.alias, model):
            name = schema_editor.quote_name(self.constraint.name)
            schema_editor.execute(f"DROP INDEX CONCURRENTLY IF EXISTS {name}")


class OnPostgreSQLOnly(Operation):
    """`operation` in the migration state everywhere, in the database on
    PostgreSQL only. For a change SQLite can only make by rebuilding the
    table (a column's default) when a later operation of the same migration
    rebuilds it anyway, from the state that already has the change."""

    reduces_to_sql = True

    def __init__(self, operation):
        self.operation = operation

    def deconstruct(self):
        return (self.__class__.__qualname__, [self.operation], {})

    def state_forwards(self, app_label, state):
        self.operation.state_forwards(app_label, state)

    def database_forwards(self, app_label, schema_editor, from_state, to_state):
        if schema_editor.connection.vendor == "postgresql":
            self.operation.database_forwards(
                app_label, schema_editor, from_state, to_state
            )

    def database_backwards(self, app_label, schema_editor, from_state, to_state):
        if schema_editor.connection.vendor == "postgresql":
            self.operation.database_backwards(
                app_label, schema_editor, from_state, to_state
            )

    def describe(self):
        return f"{self.operation.describe()} (in the database on PostgreSQL only)"
