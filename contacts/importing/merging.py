"""The file's names and attributes onto contacts that exist: merged by the
database, in one UPDATE per chunk.

A contact's rows of the chunk are merged here first (later rows win, a blank
cell changes nothing); the database then merges that into the stored contact:
a name the file gives replaces the stored one, the file's attributes replace
or join the stored ones key by key, and a contact without an external id
takes the file's. The contact is not read into Python (a re-import would
otherwise read every contact back, its attributes parsed, to write it again),
and a concurrent edit of another field or key is not overwritten. Only the
contacts that change are written; erased contacts never are.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import datetime
from json.encoder import encode_basestring_ascii as _quoted

from django.db import connection

from config.lib.bulk import TableWriter, db_time
from contacts.importing.rows import ParsedRow
from contacts.models import Contact

NAMES = ("first_name", "last_name", "language", "time_zone")


def prepare_merge(
    merged: dict[int, list[ParsedRow]], now: datetime
) -> Callable[[], None] | None:
    """The UPDATE, made ready to send (TableWriter.prepare_update); `merged`:
    the chunk's rows by the existing contact they merge into."""
    if not merged:
        return None
    updated_at = db_time(now)
    rows = []
    for pk, file_rows in merged.items():
        if len(file_rows) == 1:  # most contacts: nothing to merge here
            row = file_rows[0]
            fields, attributes = row.fields, row.attributes
            external_id = row.external_id or None
        else:
            fields, attributes, external_id = {}, {}, None
            for row in file_rows:
                fields.update(row.fields)
                attributes.update(row.attributes)
                external_id = external_id or row.external_id or None
        rows.append(
            (
                pk,
                *[fields.get(name) for name in NAMES],  # None: not in the file
                attributes_text(attributes),
                external_id,
                updated_at,
            )
        )
    columns = ["id", *NAMES, "attributes", "external_id", "updated_at"]
    sets, changed = _merge_sql()
    writer = TableWriter(Contact, columns, now=now)
    return writer.prepare_update(rows, sets=sets, where=changed)


def attributes_text(attributes: dict[str, str]) -> str:
    """What the attributes' JSONField stores for these values (json.dumps),
    written directly: json.dumps's own set-up per call took twice as long."""
    try:
        return (
            "{"
            + ", ".join([_quoted(k) + ": " + _quoted(v) for k, v in attributes.items()])
            + "}"
        )
    except TypeError:  # a value that is not text
        return json.dumps(attributes, cls=Contact._meta.get_field("attributes").encoder)


def _merge_sql() -> tuple[dict[str, str], str]:
    """(SQL per column, the condition that something changes); t is the
    stored contact, v the file's values."""
    sets = {name: f"COALESCE(v.{name}, t.{name})" for name in NAMES}
    sets["external_id"] = (
        "CASE WHEN t.external_id = '' THEN COALESCE(v.external_id, '') "
        "ELSE t.external_id END"
    )
    changes = [f"v.{name} <> t.{name}" for name in NAMES]
    changes.append("(t.external_id = '' AND v.external_id <> '')")
    if connection.vendor == "postgresql":
        stored = (
            "CASE WHEN jsonb_typeof(t.attributes) = 'object' "
            "THEN t.attributes ELSE '{}' END"
        )
        sets["attributes"] = f"{stored} || v.attributes"
        changes.append(f"NOT ({stored} @> v.attributes)")
    else:
        stored = (
            "CASE WHEN json_type(t.attributes) = 'object' "
            "THEN json(t.attributes) ELSE '{}' END"
        )
        sets["attributes"] = f"json_patch({stored}, v.attributes)"
        changes.append(f"json_patch({stored}, v.attributes) <> {stored}")
    return sets, f"t.erased_at IS NULL AND ({' OR '.join(changes)})"
