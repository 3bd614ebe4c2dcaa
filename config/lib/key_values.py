"""A key/value editor for a JSON object field: rows of key, type and value.

Business data (a contact's attributes, a campaign's values) is edited as
rows, never as raw JSON. Each row keeps its value's type as the data has it
(text, number, yes/no; a list or an object stays JSON and is edited as
such), so 42 stays a number and "42" a text. Rows post as repeated inputs
(<name>__key, <name>__type, <name>__value), read here without JavaScript;
campaigns/key_values.js only adds and removes rows. A form posted without
rows (scripts, older clients) may send the field's JSON object as before.

Bad rows (an empty key, a key given twice, a number that is not one) are
refused with the row named, and the rows come back as typed: nothing lost.
The stored JSON is shown read-only under "Advanced".
"""

import json
import math

from django import forms
from django.core.exceptions import ValidationError
from django.utils.html import format_html, format_html_join
from django.utils.safestring import mark_safe

from config.lib.json_input import JsonInputError, parse_json

TEXT, NUMBER, BOOLEAN, JSON = "text", "number", "boolean", "json"
TYPE_LABELS = {TEXT: "Text", NUMBER: "Number", BOOLEAN: "Yes/no", JSON: "JSON"}
TRUE_WORDS = {"true", "yes", "y", "1", "on"}
FALSE_WORDS = {"false", "no", "n", "0", "off"}
_NUL = "contains a NUL character (\\x00), which cannot be stored; remove it."
EMPTY_ROWS = 1  # blank rows offered after the stored ones (more with "Add")


def type_of(value) -> str:
    if isinstance(value, bool):
        return BOOLEAN
    if isinstance(value, int | float):
        return NUMBER
    if isinstance(value, str):
        return TEXT
    return JSON


def as_text(value) -> str:
    kind = type_of(value)
    if kind == BOOLEAN:
        return "true" if value else "false"
    if kind in (NUMBER, TEXT):
        return str(value)
    return json.dumps(value, ensure_ascii=False)


def rows_of(value: dict) -> list[tuple[str, str, str]]:
    """(key, type, value as text) for each item of a stored object."""
    return [(str(k), type_of(v), as_text(v)) for k, v in (value or {}).items()]


class PostedRows(list):
    """The rows as posted: shown again as typed when the form has errors."""


def typed_value(kind: str, text: str, *, where: str):
    """The JSON value of one row; ValidationError naming the row."""
    if kind == TEXT:
        return text
    stripped = text.strip()
    if kind == NUMBER:
        try:
            number = int(stripped)
        except ValueError:
            try:
                number = float(stripped)
            except ValueError:
                number = None
        if number is None or (isinstance(number, float) and not math.isfinite(number)):
            raise ValidationError(f'{where}: "{text}" is not a number, e.g. 42 or 4.5.')
        return number
    if kind == BOOLEAN:
        if stripped.lower() in TRUE_WORDS:
            return True
        if stripped.lower() in FALSE_WORDS:
            return False
        raise ValidationError(f'{where}: a yes/no value is "true" or "false".')
    if kind == JSON:
        try:
            return parse_json(stripped)
        except JsonInputError as exc:
            raise ValidationError(f"{where}: {exc}.") from None
    raise ValidationError(f"{where}: unknown type {kind!r}.")


def read_rows(rows, types) -> tuple[dict, list[tuple[int, str]]]:
    """The object the rows make, and the problems as (row index from 0,
    message naming the row from 1); blank rows are ignored."""
    found: dict = {}
    first_row: dict[str, int] = {}
    problems: list[tuple[int, str]] = []
    for index, (key, kind, text) in enumerate(rows):
        number, key, text = index + 1, (key or "").strip(), text or ""
        if not key and not text.strip():
            continue
        where = f"Row {number}" + (f" ({key})" if key else "")
        if "\x00" in key or "\x00" in text:
            problems.append((index, f"{where}: {_NUL}"))
        elif not key:
            problems.append(
                (index, f'Row {number}: enter a key for the value "{text}".')
            )
        elif key in first_row:
            problems.append(
                (
                    index,
                    f"{where}: the key is already used on row {first_row[key]}; "
                    "each key once.",
                )
            )
        elif kind not in types:
            first_row[key] = number
            problems.append((index, f"{where}: choose the type of the value."))
        else:
            first_row[key] = number
            try:
                found[key] = typed_value(kind, text, where=where)
            except ValidationError as exc:
                problems += [(index, message) for message in exc.messages]
    return found, problems


class KeyValueWidget(forms.Widget):
    """Rows of key, type and value inputs; the type column only when the
    field allows more than one type."""

    class Media:
        js = ("campaigns/key_values.js",)
        css = {"all": ("campaigns/key_values.css",)}

    def __init__(self, types=(TEXT, NUMBER, BOOLEAN, JSON), attrs=None):
        super().__init__(attrs)
        self.types = tuple(types)
        # Keys offered as one types one (a datalist), e.g. a template's
        # campaign placeholders.
        self.key_suggestions: tuple[str, ...] = ()
        self._list_attr = ""

    def value_from_datadict(self, data, files, name):
        if f"{name}__rows" not in data:
            return data.get(name)  # the JSON object, from a script
        keys = data.getlist(f"{name}__key")
        values = data.getlist(f"{name}__value")
        types = data.getlist(f"{name}__type") or [self.types[0]] * len(keys)
        return PostedRows(zip(keys, types, values, strict=False))

    def value_omitted_from_data(self, data, files, name):
        return f"{name}__rows" not in data and name not in data

    def _row(self, name, key, kind, value, *, template=False, problem=""):
        # The template row (cloned by the script) is disabled: never posted.
        off = " disabled" if template else ""
        type_cell = ""
        if len(self.types) > 1:
            options = format_html_join(
                "",
                '<option value="{}"{}>{}</option>',
                (
                    (t, " selected" if t == kind else "", TYPE_LABELS[t])
                    for t in self.types
                ),
            )
            type_cell = format_html(
                '<td><select name="{}__type" aria-label="Type"{}>{}</select></td>',
                name,
                off,
                options,
            )
        return format_html(
            '<tr class="kv-row{}"{}><td><input type="text" name="{}__key" value="{}" '
            'aria-label="Key" placeholder="key" class="kv-key"{}{}></td>{}'
            '<td class="kv-cell-value"><input type="text" name="{}__value" '
            'value="{}" aria-label="Value" placeholder="value" class="kv-value"{}>'
            '</td><td><button type="button" '
            'class="kv-remove" title="Remove this row">Remove</button></td></tr>',
            " kv-template" if template else " kv-bad" if problem else "",
            format_html(' title="{}"', problem) if problem else "",
            name,
            key,
            self._list_attr,
            off,
            type_cell,
            name,
            value,
            off,
        )

    def render(self, name, value, attrs=None, renderer=None):
        element_id = (attrs or {}).get("id") or f"id_{name}"
        suggestions = ""
        self._list_attr = ""
        if self.key_suggestions:
            self._list_attr = format_html(' list="{}_keys"', element_id)
            suggestions = format_html(
                '<datalist id="{}_keys">{}</datalist>',
                element_id,
                format_html_join(
                    "", '<option value="{}">', ((k,) for k in self.key_suggestions)
                ),
            )
        problems: dict[int, str] = {}
        if isinstance(value, PostedRows):
            rows, stored = list(value), None
            for index, message in read_rows(rows, self.types)[1]:
                problems.setdefault(index, message)
        else:
            stored = value if isinstance(value, dict) else None
            rows = rows_of(stored) if stored is not None else []
            rows += [("", self.types[0], "")] * EMPTY_ROWS
        body = format_html_join(
            "",
            "{}",
            (
                (self._row(name, k, t, v, problem=problems.get(i, "")),)
                for i, (k, t, v) in enumerate(rows)
            ),
        )
        template = self._row(name, "", self.types[0], "", template=True)
        head = format_html(
            "<th>Key</th>{}<th>Value</th><th></th>",
            mark_safe("<th>Type</th>") if len(self.types) > 1 else "",
        )
        advanced = ""
        if stored:
            advanced = format_html(
                '<details class="kv-advanced"><summary>Advanced: the stored JSON'
                "</summary><pre>{}</pre></details>",
                json.dumps(stored, ensure_ascii=False, indent=2),
            )
        return format_html(
            '<div class="kv-editor" id="{}"><input type="hidden" name="{}__rows" '
            'value="1"><table><thead><tr>{}</tr></thead><tbody>{}</tbody>'
            "<tfoot>{}</tfoot></table>"
            '<button type="button" class="kv-add addlink">Add a row</button>{}{}'
            "</div>",
            element_id,
            name,
            head,
            body,
            template,
            advanced,
            suggestions,
        )


class KeyValueField(forms.Field):
    """A JSON object edited as key/value rows (see KeyValueWidget)."""

    widget = KeyValueWidget

    def __init__(self, *, types=(TEXT, NUMBER, BOOLEAN, JSON), **kwargs):
        self.types = tuple(types)
        kwargs.setdefault("widget", KeyValueWidget(types=self.types))
        kwargs.setdefault("required", False)
        super().__init__(**kwargs)

    def prepare_value(self, value):
        if isinstance(value, PostedRows | dict):
            return value
        if isinstance(value, str):  # the JSON of a model field's initial value
            try:
                loaded = json.loads(value)
            except ValueError:
                return value
            return loaded if isinstance(loaded, dict) else value
        return value or {}

    def to_python(self, value) -> dict:
        if value in (None, ""):
            return {}
        if isinstance(value, dict):
            return value
        if isinstance(value, str):
            return self._from_json(value)
        return self._from_rows(value)

    def _from_json(self, text: str) -> dict:
        try:
            data = parse_json(text)
        except JsonInputError as exc:
            raise ValidationError(f"Not a JSON object: {exc}.") from None
        if not isinstance(data, dict):
            raise ValidationError(
                'Must be an object of keys and values, e.g. {"a": 1}.'
            )
        bad = sorted(str(k) for k, v in data.items() if type_of(v) not in self.types)
        if bad:
            raise ValidationError(f"Values must be texts: {', '.join(bad)}.")
        return data

    def _from_rows(self, rows) -> dict:
        found, problems = read_rows(rows, self.types)
        if problems:
            raise ValidationError([message for _, message in problems])
        return found

    def has_changed(self, initial, data):
        try:
            return self.to_python(data) != (self.prepare_value(initial) or {})
        except ValidationError:
            return True


def key_value_table(value, *, empty: str = "-") -> str:
    """A stored object, read-only: a small table of key, value and type."""
    if not isinstance(value, dict):
        return empty if value in (None, "", []) else as_text(value)
    if not value:
        return empty
    rows = format_html_join(
        "",
        '<tr><th>{}</th><td>{}</td><td class="help">{}</td></tr>',
        ((k, t_value, TYPE_LABELS[t]) for k, t, t_value in rows_of(value)),
    )
    return format_html('<table class="kv-table"><tbody>{}</tbody></table>', rows)
