"""Writing plain tuples into a model's table, fast.

An import writes four rows per CSV line; building a model instance for each
and letting bulk_create compile every value costs more than validating the
line. Here a table is described once: the columns that vary per row, and the
others (constants, model defaults, auto_now fields) prepared once. Rows go in
with multi-row INSERTs, or COPY on PostgreSQL. As with bulk_create, save() and
signals are not run.
"""

import contextlib
import functools
import sqlite3
from collections.abc import Callable, Iterable, Sequence
from datetime import datetime
from itertools import chain, islice
from typing import Any

from django.db import connection, models
from django.db.models.constants import OnConflict
from psycopg.adapt import PyFormat, Transformer

from config.lib.lookups import index_lookups_only

# SQLite: rows per INSERT statement (within its limit on parameters).
_ROWS_PER_STATEMENT = 300
# COPY's text format: what a field's text must escape.
_COPY_ESCAPES = str.maketrans({"\\": "\\\\", "\t": "\\t", "\n": "\\n", "\r": "\\r"})
# PostgreSQL: rows per piece of a COPY sent to the server.
COPY_PIECE_ROWS = 1000
_TEXTS_KEPT = 4096  # distinct values a writer keeps written out


class TableWriter:
    def __init__(
        self,
        model: type[models.Model],
        varying: Sequence[str],
        constants: dict[str, Any] | None = None,
        *,
        now: datetime,
    ):
        """`varying`: attnames given in each row, in this order ("id" to set
        primary keys); every other column gets `constants[attname]`, `now` for
        auto_now(_add) fields, or the field's default."""
        constants = constants or {}
        meta = model._meta
        fields = {f.attname: f for f in meta.concrete_fields}
        self.table = meta.db_table
        self.pk_column = meta.pk.column
        self.fields = {name: fields[name] for name in varying}
        columns = [fields[name].column for name in varying]
        tail = []
        # The columns COPY may leave to the table's own default (a field's
        # db_default, which says the same as its default): no value of theirs
        # is then sent and parsed again for every row.
        self._defaulted: set[str] = set()
        for name, field in fields.items():
            if name in self.fields or field.primary_key:
                continue
            if name in constants:
                value = constants[name]
            elif getattr(field, "auto_now", False) or getattr(
                field, "auto_now_add", False
            ):
                value = now
            else:
                value = field.get_default()
                if hasattr(value, "resolve_expression"):
                    continue  # a database default (db_default) applies
            if name not in constants and field.has_db_default():
                self._defaulted.add(field.column)
            columns.append(field.column)
            tail.append(field.get_db_prep_save(value, connection))
        self.columns = columns
        self.tail = tuple(tail)
        self._transformer = None  # psycopg's, for values other than str/int
        self._texts: dict[tuple, str] = {}  # _other_text's

    def prep(self, name: str, value: Any) -> Any:
        """`value` as the database takes it for the varying field `name`."""
        return self.fields[name].get_db_prep_save(value, connection)

    def prep_once(self, name: str) -> Callable[[Any], Any]:
        """prep() for the field `name`, computed once per distinct value
        (most rows of a file share their consent time)."""
        cache: dict[Any, Any] = {}

        def prepared(value: Any) -> Any:
            try:
                return cache[value]
            except KeyError:
                cache[value] = result = self.prep(name, value)
                return result

        return prepared

    def allocate_ids(self, count: int) -> list[int]:
        """Primary keys for `count` new rows, to give them in "id".

        Must run inside the transaction that inserts the rows. On SQLite that
        transaction holds the database's only write lock (BEGIN IMMEDIATE, see
        settings), so nobody else can take these ids before the insert; were
        it not held, SQLite would refuse the insert rather than reuse ids.
        """
        if not count:
            return []
        qn = connection.ops.quote_name
        with connection.cursor() as cursor:
            if connection.vendor == "postgresql":
                # The sequence is looked up once (a scalar subquery), not per
                # row: nextval(pg_get_serial_sequence(...)) resolves the name
                # for each id, five times the cost of the ids themselves.
                cursor.execute(
                    "SELECT nextval((SELECT pg_get_serial_sequence(%s, %s))"
                    "::regclass) FROM generate_series(1, %s)",
                    [qn(self.table), self.pk_column, count],
                )
                return [pk for (pk,) in cursor.fetchall()]
            # AUTOINCREMENT never reuses an id: sqlite_sequence holds the
            # largest one ever given, which may be above max(id).
            cursor.execute(
                "SELECT max(coalesce((SELECT seq FROM sqlite_sequence "
                f"WHERE name = %s), 0), coalesce((SELECT max({qn(self.pk_column)}) "
                f"FROM {qn(self.table)}), 0))",
                [self.table],
            )
            start = cursor.fetchone()[0]
        return list(range(start + 1, start + 1 + count))

    def insert(self, rows: Iterable[tuple], *, ignore_conflicts: bool = False) -> None:
        """Insert rows (the varying values, in order); all or nothing.

        Constraint violations raise django.db.IntegrityError, as bulk_create's
        do; `ignore_conflicts` skips rows that would violate a unique
        constraint instead.

        The statements go to the driver's cursor: with DEBUG on, Django's query
        log would otherwise keep every statement of a million-row import, with
        its thousands of parameters, in memory.
        """
        self._insertion(rows, ignore_conflicts, ready=False)()

    def prepare_insert(
        self, rows: Iterable[tuple], *, ignore_conflicts: bool = False
    ) -> Callable[[], None]:
        """insert(), in two steps: the rows are made into what the database
        is sent now, and sent by the function returned, which needs no more
        Python work (it may run in another thread while this one goes on:
        config.lib.shared_connection)."""
        return self._insertion(rows, ignore_conflicts, ready=True)

    def _insertion(self, rows, ignore_conflicts: bool, ready: bool):
        if connection.vendor == "postgresql":
            into = self._stage_name() if ignore_conflicts else ""
            copy = self._copy_pieces(rows, into, ready=ready)
            if ignore_conflicts:
                return functools.partial(self._insert_ignoring, copy)
            return functools.partial(self._send_copy, *copy)
        if connection.vendor == "sqlite":
            statements = self._sqlite_statements(list(rows), ignore_conflicts)
            return functools.partial(self._execute_sqlite, statements)
        raise NotImplementedError(f"no bulk insert for {connection.vendor}")

    def _insert_ignoring(self, copy: tuple[str, Iterable[bytes]]) -> None:
        """COPY into a staging table, then one INSERT … SELECT … ON CONFLICT
        DO NOTHING (a statement per row costs a round trip each)."""
        qn = connection.ops.quote_name
        columns = ", ".join(qn(c) for c in self.columns)
        with self._staged(self.columns) as stage, connection.cursor() as cursor:
            self._send_copy(*copy)
            cursor.execute(
                f"INSERT INTO {qn(self.table)} ({columns}) SELECT {columns} "
                f"FROM {stage} ON CONFLICT DO NOTHING"
            )

    def prepare_update(
        self, rows: Iterable[tuple], *, sets: dict[str, str] | None = None, where=""
    ) -> Callable[[], None]:
        """The setting of the varying columns of existing rows, found by "id"
        (the first varying column), made ready as prepare_insert: one
        UPDATE … FROM a staging table filled by COPY on PostgreSQL,
        bulk_update's VALUES on SQLite.

        `sets`: SQL instead of the given value for some columns, and `where`:
        a condition on the rows to change; both name the row `t` and the
        given values `v`."""
        names = [f.column for f in self.fields.values()][1:]
        if connection.vendor != "postgresql":
            columns = [(name, "") for name in names]
            return functools.partial(
                bulk_update, self.table, columns, list(rows), sets=sets, where=where
            )
        qn = connection.ops.quote_name
        key = qn(self.pk_column)
        sets = _assignments(names, sets)
        varying = self.columns[: len(self.fields)]
        copy = self._copy_pieces(rows, self._stage_name(), tail=False, ready=True)

        def update() -> None:
            with self._staged(varying) as stage, connection.cursor() as cursor:
                self._send_copy(*copy)
                # Each staged row finds its row by the key's index: the
                # planner, misled by the statistics, hashed the whole table
                # for every chunk (270 against 80 ms per 8,000 identities of
                # 1,000,000).
                with index_lookups_only(cursor):
                    cursor.execute(
                        f"UPDATE {qn(self.table)} AS t SET {sets} FROM {stage} AS v "
                        f"WHERE t.{key} = v.{key}" + (f" AND {where}" if where else "")
                    )

        return update

    def _stage_name(self) -> str:
        return connection.ops.quote_name(f"stage_{self.table}")

    @contextlib.contextmanager
    def _staged(self, columns: list[str]):
        """A temporary table with these columns of the table (their types,
        no constraints), dropped after use. Used inside a transaction."""
        qn = connection.ops.quote_name
        stage = self._stage_name()
        names = ", ".join(qn(c) for c in columns)
        with connection.cursor() as cursor, connection.wrap_database_errors:
            cursor.execute(f"DROP TABLE IF EXISTS {stage}")
            cursor.execute(
                f"CREATE TEMP TABLE {stage} AS SELECT {names} "
                f"FROM {qn(self.table)} WITH NO DATA"
            )
            yield stage
            # Not on an error: the transaction is aborted, and its rollback
            # drops the table (created in it) anyway.
            cursor.execute(f"DROP TABLE IF EXISTS {stage}")

    def _copy_pieces(
        self, rows: Iterable[tuple], into: str = "", tail=True, *, ready: bool
    ) -> tuple[str, Iterable[bytes]]:
        """The COPY statement, and the rows in its text form a piece at a
        time: made as they are sent (the server stores each piece while the
        rest are made here; `rows` may be a generator doing the work), or all
        made now when `ready`. The rows are written out here: psycopg's
        write_row looks up a dumper for every value of every row, twice the
        cost (and a JSON constant is dumped again for every row). `into`: a
        staging table (already quoted) instead of the table; without `tail`,
        the varying columns only."""
        qn = connection.ops.quote_name
        varying = self.columns[: len(self.fields)]
        constant = list(zip(self.columns[len(self.fields) :], self.tail, strict=True))
        if not tail:
            constant = []
        elif not into:  # the table's own defaults (a staging table has none)
            constant = [(c, v) for c, v in constant if c not in self._defaulted]
        columns = ", ".join(qn(c) for c in varying + [c for c, _ in constant])
        statement = f"COPY {into or qn(self.table)} ({columns}) FROM STDIN"
        if self._transformer is None:
            connection.ensure_connection()
            self._transformer = Transformer(connection.connection)
        # The constants, written out once.
        end = "".join(["\t" + self._copy_text(v) for _, v in constant]) + "\n"
        pieces = (
            self._copy_piece(piece, end).encode()
            for piece in batched(rows, COPY_PIECE_ROWS)
        )
        return statement, list(pieces) if ready else pieces

    def _copy_piece(self, rows: list[tuple], end: str) -> str:
        """`rows` in COPY's text format, each ended by `end`. When no text
        among them needs escaping (checked at once, for all), the common
        values are written inline: a call per value was half the cost."""
        text = self._copy_text
        texts = "".join([v for row in rows for v in row if v.__class__ is str])
        if "\\" in texts or "\t" in texts or "\n" in texts or "\r" in texts:
            return "".join(["\t".join([text(v) for v in row]) + end for row in rows])
        other = self._other_text
        return "".join(
            [
                "\t".join(
                    [
                        v
                        if (kind := v.__class__) is str
                        else "\\N"
                        if v is None
                        else int.__repr__(v)
                        if kind is int
                        else other(v)
                        for v in row
                    ]
                )
                + end
                for row in rows
            ]
        )

    def _other_text(self, value: Any) -> str:
        """_copy_text, made once per distinct value (a chunk's rows share a
        few times); by type too, as True, 1 and 1.0 are equal keys."""
        key = (value.__class__, value)
        try:
            return self._texts[key]
        except KeyError:
            result = self._copy_text(value)
            if len(self._texts) < _TEXTS_KEPT:
                self._texts[key] = result
            return result
        except TypeError:  # not hashable
            return self._copy_text(value)

    @staticmethod
    def _send_copy(statement: str, pieces: Iterable[bytes]) -> None:
        with (
            connection.cursor() as cursor,
            connection.wrap_database_errors,
            cursor.cursor.copy(statement) as copy,
        ):
            for piece in pieces:
                copy.write(piece)

    def _copy_text(self, value: Any) -> str:
        """`value` as a field of COPY's text format: \\N for NULL, the
        value's text form with backslash, tab, newline and return escaped."""
        if isinstance(value, str):  # text choices too: their value
            if "\\" in value or "\t" in value or "\n" in value or "\r" in value:
                return value.translate(_COPY_ESCAPES)
            return str.__str__(value)
        if value is None:
            return "\\N"
        if isinstance(value, bool):
            return "t" if value else "f"
        if isinstance(value, int):
            return int.__repr__(value)
        dumper = self._transformer.get_dumper(value, PyFormat.TEXT)
        return self._copy_text(bytes(dumper.dump(value)).decode())

    def _sqlite_statements(
        self, rows: list[tuple], ignore_conflicts: bool
    ) -> list[tuple[str, list]]:
        """Multi-row INSERTs: one statement per few hundred rows costs SQLite
        half of what a statement per row (executemany) does. The values shared
        by every row are written into the statement as literals."""
        if not rows:
            return []
        ops = connection.ops
        on_conflict = OnConflict.IGNORE if ignore_conflicts else None
        columns = ", ".join(ops.quote_name(c) for c in self.columns)
        head = (
            f"{ops.insert_statement(on_conflict=on_conflict)} "
            f"{ops.quote_name(self.table)} ({columns}) VALUES "
        )
        width = len(rows[0])
        one = f"({', '.join(['?'] * width + self._sqlite_literals())})"
        per = max(1, min(_ROWS_PER_STATEMENT, _sqlite_max_params() // max(width, 1)))
        full = head + ", ".join([one] * per)
        statements = []
        for start in range(0, len(rows), per):
            part = rows[start : start + per]
            sql = full if len(part) == per else head + ", ".join([one] * len(part))
            statements.append((sql, list(chain.from_iterable(part))))
        return statements

    @staticmethod
    def _execute_sqlite(statements: list[tuple[str, list]]) -> None:
        with connection.cursor() as cursor, connection.wrap_database_errors:
            # sqlite3's own execute: the statements are written with "?", and
            # Django's "%s" conversion (a regex over the whole statement)
            # would cost more than SQLite's work on the rows.
            execute = functools.partial(sqlite3.Cursor.execute, cursor.cursor)
            for sql, params in statements:
                execute(sql, params)

    def _sqlite_literals(self) -> list[str]:
        """The constant values as SQL literals, written here: no query, so
        that a chunk's statements can be made while another thread writes
        on the connection (shared_connection.run_streamed_beside)."""
        return [_sqlite_literal(value) for value in self.tail]


def _sqlite_literal(value: Any) -> str:
    """`value` (as get_db_prep_save gives it for SQLite) as SQLite's quote()
    writes it."""
    if value is None:
        return "NULL"
    if isinstance(value, bool):
        return "1" if value else "0"
    if isinstance(value, int):
        return int.__repr__(value)
    if isinstance(value, str):
        return "'" + value.replace("'", "''") + "'"
    raise TypeError(f"no SQL literal for a constant {value.__class__.__name__}")


def _assignments(names: list[str], sets: dict[str, str] | None) -> str:
    qn = connection.ops.quote_name
    sets = sets or {}
    return ", ".join(f"{qn(n)} = {sets.get(n, f'v.{qn(n)}')}" for n in names)


def batched(rows: Iterable[tuple], size: int):
    """Lists of up to `size` of `rows` (itertools.batched, Python 3.12)."""
    rows = iter(rows)
    while piece := list(islice(rows, size)):
        yield piece


def _sqlite_max_params() -> int:
    try:
        return connection.connection.getlimit(sqlite3.SQLITE_LIMIT_VARIABLE_NUMBER)
    except AttributeError:  # Python < 3.11
        return connection.features.max_query_params or 999


# SQLite while an import writes (config.settings sets the usual values):
# - WAL pages between checkpoints (default 1000, about 4 MB). A checkpoint
#   copies the WAL into the database file and syncs it; a 2,000-row chunk
#   dirties more than 1000 pages, so each commit paid for one, and pages
#   written by several chunks (the growing ends of the indexes) were copied
#   each time. At 20,000 (about 80 MB of WAL) once per few chunks: a third
#   less time per row.
# - The page cache: 32 MB instead of 64 keeps a big import under its memory
#   target (200 MB) at the same speed (the file's pages stay in the OS cache).
IMPORT_PRAGMAS = {"wal_autocheckpoint": 20_000, "cache_size": -32_000}


def tune_connection() -> dict[str, int]:
    """Connection settings for bulk writing, harmless for everything else;
    returns what `untune_connection` needs to put the changed ones back.

    SQLite keeps a statement journal (the pages a multi-row INSERT changes,
    to undo just that statement); in a temp file it costs a write per page.
    SQLite refuses the changes inside a transaction, where they are skipped.
    """
    before: dict[str, int] = {}
    if connection.vendor == "sqlite" and not connection.in_atomic_block:
        with connection.cursor() as cursor:
            cursor.execute("PRAGMA temp_store = MEMORY")
            for name, value in IMPORT_PRAGMAS.items():
                cursor.execute(f"PRAGMA {name}")
                before[name] = cursor.fetchone()[0]
                cursor.execute(f"PRAGMA {name} = {int(value)}")
    return before


def untune_connection(before: dict[str, int]) -> None:
    """Put back the settings `tune_connection` changed (the connection
    serves other work next)."""
    if connection.vendor == "sqlite" and not connection.in_atomic_block:
        with connection.cursor() as cursor:
            for name, value in before.items():
                cursor.execute(f"PRAGMA {name} = {int(value)}")


def bulk_update(
    table: str, columns, rows, *, newer: str = "", sets=None, where: str = ""
) -> None:
    """UPDATE many rows by id with per-row values in one statement (a few for
    SQLite). `columns` is [(name, PostgreSQL type)], rows are (id, *values).
    With `newer`, a row is only changed where that column is empty or older;
    `sets` and `where` as in TableWriter.prepare_update."""
    if not rows:
        return
    qn = connection.ops.quote_name
    names = [name for name, _ in columns]
    sets = _assignments(names, sets)
    guard = (
        f" AND (t.{qn(newer)} IS NULL OR t.{qn(newer)} < v.{qn(newer)})"
        if newer
        else ""
    )
    if where:
        guard += f" AND {where}"
    alias = ", ".join(qn(c) for c in ["id", *names])
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            arrays = ", ".join(
                f"%s::{kind}[]" for kind in ["bigint", *(k for _, k in columns)]
            )
            cursor.execute(
                f"UPDATE {qn(table)} AS t SET {sets} "
                f"FROM unnest({arrays}) AS v({alias}) WHERE t.id = v.id{guard}",
                [list(column) for column in zip(*rows, strict=True)],
            )
            return
        width = len(names) + 1
        step = max(1, 30000 // width // 10)  # well under SQLite's 32766 variables
        for start in range(0, len(rows), step):
            part = rows[start : start + step]
            row_sql = "(" + ", ".join(["%s"] * width) + ")"
            params = [value for row in part for value in row]
            cursor.execute(
                f"WITH v({alias}) AS (VALUES {', '.join([row_sql] * len(part))}) "
                f"UPDATE {qn(table)} AS t SET {sets} FROM v "
                f"WHERE t.id = v.id{guard}",
                params,
            )


def db_time(value: datetime):
    """`value` as the database driver takes it in raw SQL."""
    return connection.ops.adapt_datetimefield_value(value)
