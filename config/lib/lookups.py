"""Reading many rows by key, fast: the values as one parameter, each row
found through its index, plain tuples back (no model instances).

The import resolves each chunk with these (config.lib.bulk writes it); the
send walks and receipts use `id_lists`.
"""

import contextlib
import functools
import json
from collections.abc import Sequence
from datetime import UTC, datetime

from django.db import connection, models
from psycopg.types.datetime import TimestamptzLoader

# PostgreSQL: values per lookup query.
_PG_VALUES_PER_LOOKUP = 5000


@contextlib.contextmanager
def index_lookups_only(cursor):
    """On PostgreSQL, the queries inside read through indexes only, and join
    by looking each row up. During a bulk load the table's statistics lag far
    behind its size, and for thousands of values the planner then reads the
    whole table (or hashes it, to join it with a staging table): a cost that
    grows with every chunk. Nothing on SQLite.

    The planner's estimate of a plan it must not choose is huge, which
    switched on its just-in-time compiler: 190 of the 265 ms of a chunk's
    10,000-contact merge went to compiling it (EXPLAIN ANALYZE). So the
    compiler is off inside too."""
    if connection.vendor != "postgresql":
        yield
        return
    names = "^(enable_((seq|bitmap)scan|(hash|merge)join)|jit)$"
    plans = f"pg_settings WHERE name ~ '{names}'"
    cursor.execute(f"SELECT set_config(name, 'off', true) FROM {plans}")
    yield
    cursor.execute(f"SELECT set_config(name, reset_val, true) FROM {plans}")


def matching(
    model: type[models.Model], name: str, values: list[str], *, non_blank: bool = False
) -> list[tuple]:
    """(value, primary key) of the rows whose field `name` is one of `values`.

    The lookups use the field's index, a partial one "WHERE NOT (field = '')"
    when `non_blank` (the values then must not be blank): the databases only
    use such an index when the query states its condition.
    """
    if not values:
        return []
    meta = model._meta
    qn = connection.ops.quote_name
    column = qn(meta.get_field(name).column)
    select = f"SELECT {column}, {qn(meta.pk.column)} FROM {qn(meta.db_table)} WHERE"
    if non_blank:
        select += f" NOT ({column} = '') AND"
    found = []
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            with index_lookups_only(cursor):
                # The values as one JSON text: psycopg dumps a list of
                # strings value by value, five times the cost.
                values_in = "ANY(ARRAY(SELECT json_array_elements_text(%s::json)))"
                for start in range(0, len(values), _PG_VALUES_PER_LOOKUP):
                    part = values[start : start + _PG_VALUES_PER_LOOKUP]
                    cursor.execute(
                        f"{select} {column} = {values_in}", [json.dumps(part)]
                    )
                    found += cursor.fetchall()
        else:
            # One JSON parameter, however many values.
            cursor.execute(
                f"{select} {column} IN (SELECT value FROM json_each(%s))",
                [json.dumps(values)],
            )
            found = cursor.fetchall()
    return found


def id_lists(ids: list[int]):
    """(params, SQL after "id") for `id` matching `ids`: one array on
    PostgreSQL, IN lists small enough for SQLite."""
    if connection.vendor == "postgresql":
        # An array's text form: psycopg dumps a list of ints value by value.
        yield ["{" + ",".join(map(str, map(int, ids))) + "}"], "= ANY(%s::bigint[])"
        return
    for start in range(0, len(ids), 5000):
        part = ids[start : start + 5000]
        yield part, f"IN ({', '.join(['%s'] * len(part))})"


def rows_by(
    model: type[models.Model],
    names: Sequence[str],
    key: str,
    values: list[str],
    *,
    lock: bool = False,
    nowait: bool = False,
) -> list[tuple]:
    """The values of fields `names` (attnames, or "fk__field" for a field of
    the row a foreign key points at) of the rows whose text field `key` is
    one of `values`, as tuples, in no order: one lookup in its index per
    value, each row read once. `lock` locks the rows, not those they point
    at (FOR UPDATE on PostgreSQL; SQLite's write transaction holds the
    whole database anyway), and with `nowait` a row locked by another
    transaction raises (an OperationalError, lock_not_available) instead
    of waiting.

    What `values_list` gives, without compiling a query with thousands of
    parameters per chunk: datetimes come back aware (UTC), JSON as its text.
    """
    if not values:
        return []
    meta = model._meta
    qn = connection.ops.quote_name
    table = qn(meta.db_table)
    fields, columns, joins = [], [], {}
    for name in names:
        pointer, _, name_there = name.partition("__")
        field = meta.get_field(pointer)
        if not name_there:
            fields.append(field)
            columns.append(f"{table}.{qn(field.column)}")
            continue
        there = field.related_model._meta
        alias = qn(f"to_{pointer}")
        joins[alias] = (
            f" LEFT JOIN {qn(there.db_table)} {alias} "
            f"ON {alias}.{qn(there.pk.column)} = {table}.{qn(field.column)}"
        )
        fields.append(there.get_field(name_there))
        columns.append(f"{alias}.{qn(fields[-1].column)}")
    column = qn(meta.get_field(key).column)
    head = f"SELECT {', '.join(columns)} FROM {table}{''.join(joins.values())} "
    head += f"WHERE {table}.{column} "
    # No other condition: PostgreSQL may then prefer another index and test
    # the thousands of keys row by row (erased_at IS NULL did, 3 s a chunk).
    tail = ""
    if lock and connection.vendor == "postgresql":
        tail = f" FOR UPDATE OF {table}" + (" NOWAIT" if nowait else "")
    found: list[tuple] = []
    with connection.cursor() as cursor, index_lookups_only(cursor):
        if connection.vendor == "postgresql":
            # psycopg's compiled loader: Django's, which gives each value the
            # connection's zone (the session's zone, the same instant), is
            # pure Python, 7 times the cost (0.45 against 0.06 s for
            # 100,000 values; 8 % of a re-import's own CPU).
            cursor.cursor.adapters.register_loader("timestamptz", TimestamptzLoader)
        for params, condition in _text_lists(values):
            cursor.execute(head + condition + tail, params)
            found += cursor.fetchall()
    if connection.vendor == "sqlite":
        # SQLite's datetimes are naive (UTC, as Django stores them).
        times = [
            i
            for i, field in enumerate(fields)
            if field.get_internal_type() == "DateTimeField"
        ]
        if times:
            found = [_with_times(row, times) for row in found]
    return found


def _text_lists(values: list[str]):
    """(params, SQL after the column) for text values, as matching sends them."""
    if connection.vendor == "postgresql":
        values_in = "= ANY(ARRAY(SELECT json_array_elements_text(%s::json)))"
        for start in range(0, len(values), _PG_VALUES_PER_LOOKUP):
            yield [json.dumps(values[start : start + _PG_VALUES_PER_LOOKUP])], values_in
        return
    yield [json.dumps(values)], "IN (SELECT value FROM json_each(%s))"


def _with_times(row: tuple, positions: list[int]) -> tuple:
    values = list(row)
    for i in positions:
        if values[i] is not None:
            values[i] = _sqlite_time(values[i])
    return tuple(values)


@functools.lru_cache(maxsize=4096)
def _sqlite_time(value: datetime | str) -> datetime:
    # Naive (Django's converter for the column's declared type) or text.
    # Most rows of a chunk share a few times (an import's): made once each.
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    return value if value.tzinfo else value.replace(tzinfo=UTC)
