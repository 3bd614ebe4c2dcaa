"""The segment editor's form, both ways: posted inputs -> definition JSON, and
a definition -> the groups and conditions the editor shows.

Pure functions over a mapping of posted values and the catalogue (the list
of fields campaigns.segments.catalogue.fields() returns). The posted names:

    match                         "all" | "any": how the groups combine
    g-<i>-match                   "all" | "any": how a group's conditions combine
    g-<i>-c-<j>-field             the condition's field
    g-<i>-c-<j>-op                its operator
    g-<i>-c-<j>-key|channel|purpose|campaign   what some fields need
    g-<i>-c-<j>-value             its value (several for a multi-select)

Indices need not be consecutive (the page's script never renumbers): groups
and conditions keep the order of their indices. Nothing typed is dropped: a
value that does not read as the operator wants (a number, a date) is kept as
typed, and validate() names the problem. segment_editor.js mirrors this.
"""

import re
from collections.abc import Mapping

MATCHES = (("all", "ALL"), ("any", "ANY"))
# What each operator wants as its value.
LIST_OPS = frozenset({"in", "not_in"})
NUMBER_OPS = frozenset(
    {
        "gt",
        "gte",
        "lt",
        "lte",
        "within_days",
        "older_than_days",
        "in_days",
        "not_in_days",
    }
)
DATE_OPS = frozenset({"before", "after", "on"})
NO_VALUE_OPS = frozenset(
    {"is_empty", "is_not_empty", "received", "delivered", "failed", "replied"}
    | {"not_received", "clicked", "not_clicked"}
)
# Words for the operators, when the catalogue gives only their keys.
OP_LABELS = {
    "equals": "is",
    "not_equals": "is not",
    "in": "is one of",
    "not_in": "is none of",
    "contains": "contains",
    "is_empty": "is empty",
    "is_not_empty": "is not empty",
    "gt": "is more than",
    "gte": "is at least",
    "lt": "is less than",
    "lte": "is at most",
    "before": "is before",
    "after": "is after",
    "on": "is on",
    "within_days": "is within the last … days",
    "older_than_days": "is more than … days ago",
    "is": "is",
    "is_not": "is not",
    "received": "received it",
    "delivered": "had it delivered",
    "failed": "failed to receive it",
    "replied": "replied to it",
    "not_received": "did not receive it",
    "clicked": "clicked a link in it",
    "not_clicked": "did not click a link in it",
    "in_days": "messaged in the last … days",
    "not_in_days": "not messaged in the last … days",
}
LIST_FIELD_OP_LABELS = {"in": "is in any of", "not_in": "is in none of"}
# Words after a number of days ("is more than [30] days ago").
UNITS = {
    "within_days": "days",
    "older_than_days": "days ago",
    "in_days": "days",
    "not_in_days": "days",
}
EXTRAS = ("key", "channel", "purpose", "campaign")
_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
_NAME = re.compile(r"^g-(\d+)-(?:(match)|c-(\d+)-(\w+))$")


def _getlist(data: Mapping, name: str) -> list:
    if hasattr(data, "getlist"):
        return list(data.getlist(name))
    value = data.get(name)
    if value is None:
        return []
    return list(value) if isinstance(value, list | tuple) else [value]


def _match(value) -> str:
    return value if value in ("all", "any") else "all"


def read_number(text: str):
    """An int or a float as typed, else the text itself (validate() says why)."""
    text = text.strip()
    for cast in (int, float):
        try:
            return cast(text)
        except ValueError:
            continue
    return text


def read_id(text):
    text = str(text).strip()
    return int(text) if text.isdigit() else text


def read_value(op: str, kind: str, values: list[str]):
    """The condition's value from its posted input(s), as the op wants it."""
    if op in NO_VALUE_OPS:
        return None
    if op in LIST_OPS:
        items = [p.strip() for v in values for p in str(v).split(",")]
        items = [p for p in items if p]
        return [read_id(p) for p in items] if kind == "list" else items
    text = str(values[0]) if values else ""
    if op in NUMBER_OPS or (kind in ("number", "days") and op not in DATE_OPS):
        return read_number(text) if text.strip() else None
    return text.strip()


def definition_from_post(data: Mapping, fields: list[dict]) -> dict:
    """The definition the posted editor describes (invalid parts kept as typed)."""
    catalogue = {f["field"]: f for f in fields}
    groups: dict[int, dict] = {}
    for name in data:
        found = _NAME.match(name)
        if not found:
            continue
        group = groups.setdefault(int(found[1]), {"conditions": {}})
        if found[3] is not None:
            group["conditions"].setdefault(int(found[3]), f"g-{found[1]}-c-{found[3]}")
    definition = {"match": _match(data.get("match")), "groups": []}
    for g in sorted(groups):
        conditions = []
        for c in sorted(groups[g]["conditions"]):
            prefix = groups[g]["conditions"][c]
            field = str(data.get(f"{prefix}-field") or "")
            op = str(data.get(f"{prefix}-op") or "")
            kind = catalogue.get(field, {}).get("kind", "text")
            condition = {
                "field": field,
                "op": op,
                "value": read_value(op, kind, _getlist(data, f"{prefix}-value")),
            }
            for extra in EXTRAS:
                if f"{prefix}-{extra}" in data:
                    raw = str(data.get(f"{prefix}-{extra}") or "").strip()
                    condition[extra] = read_id(raw) if extra == "campaign" else raw
            conditions.append(condition)
        definition["groups"].append(
            {"match": _match(data.get(f"g-{g}-match")), "conditions": conditions}
        )
    return definition


def blank_condition(fields: list[dict]) -> dict:
    first = fields[0] if fields else {"field": "", "ops": []}
    ops = op_choices(first)
    return {"field": first["field"], "op": ops[0][0] if ops else "", "value": None}


def blank_definition(fields: list[dict]) -> dict:
    return {
        "match": "all",
        "groups": [{"match": "all", "conditions": [blank_condition(fields)]}],
    }


def op_choices(field: Mapping) -> list[tuple[str, str]]:
    """(op, words) for the field's operators, in the catalogue's order."""
    choices = []
    words = field.get("op_labels") or {}
    for op in field.get("ops", []):
        if isinstance(op, Mapping):
            choices.append((str(op["value"]), str(op.get("label") or op["value"])))
            continue
        if isinstance(op, list | tuple):
            choices.append((str(op[0]), str(op[1])))
            continue
        if op in words:
            choices.append((op, str(words[op])))
            continue
        label = OP_LABELS.get(op, op.replace("_", " "))
        if field.get("kind") == "list":
            label = LIST_FIELD_OP_LABELS.get(op, label)
        choices.append((op, label))
    return choices


def input_kind(field: Mapping, op: str) -> str:
    """Which value input fits the field and the operator:
    none | text | number | date | select | multi | tags (comma-separated)."""
    kind = field.get("kind", "text")
    if op in NO_VALUE_OPS or kind == "campaign":
        return "none"
    if op in LIST_OPS:
        return "multi" if field.get("choices") else "tags"
    if op in NUMBER_OPS or kind in ("number", "days"):
        return "number"
    if op in DATE_OPS or (kind == "date" and op not in ("is_empty", "is_not_empty")):
        return "date"
    if kind in ("choice", "consent") and _value_choices(field):
        return "select"
    return "text"


def _value_choices(field: Mapping) -> list:
    if field.get("kind") == "consent":
        return field.get("states") or field.get("choices") or []
    return field.get("choices") or []


def _as_text(value) -> str:
    if value is None:
        return ""
    if isinstance(value, list | tuple):
        return ", ".join(str(v) for v in value)
    return str(value)


def condition_view(condition: Mapping, catalogue: Mapping, at: tuple[int, int]) -> dict:
    """What the editor shows for one condition (its inputs, filled in)."""
    field = catalogue.get(condition.get("field")) or {
        "field": condition.get("field", ""),
        "label": f"unknown field “{condition.get('field', '')}”",
        "kind": "text",
        "ops": [],
        "unknown": True,
    }
    op = condition.get("op", "")
    ops = op_choices(field)
    if op not in [o for o, _ in ops]:
        ops = [*ops, (op, OP_LABELS.get(op, op) or "choose…")]
    value = condition.get("value")
    selected = {str(v) for v in value} if isinstance(value, list | tuple) else set()
    if not isinstance(value, list | tuple) and value is not None:
        selected = {str(value)}
    text = _as_text(value)
    return {
        "prefix": f"g-{at[0]}-c-{at[1]}",
        "group": at[0],
        "index": at[1],
        "field": field,
        "op": op,
        "ops": ops,
        "input": input_kind(field, op),
        "unit": UNITS.get(op, ""),
        "value_text": text,
        # A value that does not fit a number or date input shows as typed.
        "value_is_number": value is None or isinstance(value, int | float),
        "value_is_date": not text or bool(_DATE.match(text)),
        "selected": selected,
        "choices": [(str(v), label) for v, label in _value_choices(field)],
        "chosen": ", ".join(
            label for v, label in _value_choices(field) if str(v) in selected
        ),
        "extras": {e: condition.get(e, "") for e in EXTRAS},
        "campaign": str(condition.get("campaign", "")),
    }


def _pairs(items) -> list[list[str]]:
    """[[value, label], ...] from pairs or plain values."""
    pairs = []
    for item in items or []:
        if isinstance(item, list | tuple):
            pairs.append([str(item[0]), str(item[1])])
        else:
            pairs.append([str(item), str(item)])
    return pairs


def prepare_fields(fields: list[dict], states=()) -> list[dict]:
    """The catalogue with what the editor (page and script) reads ready-made:
    op_choices, the input each op takes, choices as [value, label] strings."""
    prepared = []
    for field in fields:
        field = dict(field)
        if field.get("kind") == "consent" and not field.get("states"):
            field["states"] = list(states)
        ops = op_choices(field)
        field.update(
            op_choices=[list(o) for o in ops],
            inputs={op: input_kind(field, op) for op, _ in ops},
            units={op: UNITS[op] for op, _ in ops if op in UNITS},
            value_choices=_pairs(_value_choices(field)),
            choices=_pairs(field.get("choices")),
            channels=_pairs(field.get("channels")),
            purposes=_pairs(field.get("purposes")),
        )
        prepared.append(field)
    return prepared


def editor_view(definition, fields: list[dict]) -> dict:
    """The definition as the editor's groups of conditions; a definition
    that is not the expected shape shows as one blank group."""
    catalogue = {f["field"]: f for f in fields}
    if not isinstance(definition, Mapping) or not isinstance(
        definition.get("groups"), list
    ):
        definition = blank_definition(fields)
    groups = []
    for g, group in enumerate(definition["groups"]):
        group = group if isinstance(group, Mapping) else {}
        conditions = group.get("conditions")
        conditions = conditions if isinstance(conditions, list) else []
        groups.append(
            {
                "index": g,
                "match": _match(group.get("match")),
                "conditions": [
                    condition_view(
                        c if isinstance(c, Mapping) else {}, catalogue, (g, j)
                    )
                    for j, c in enumerate(conditions)
                ],
            }
        )
    return {"match": _match(definition.get("match")), "groups": groups}


def apply_action(definition: dict, action: str, fields: list[dict]) -> dict:
    """The editor's buttons without JavaScript: add-group, add-condition:<g>,
    remove-group:<g>, remove-condition:<g>:<c> (indices in the posted order)."""
    groups = definition["groups"]
    name, _, where = action.partition(":")
    at = [int(p) for p in where.split(":") if p.isdigit()]
    if name == "add-group":
        groups.append({"match": "all", "conditions": [blank_condition(fields)]})
    elif name == "add-condition" and at and at[0] < len(groups):
        groups[at[0]]["conditions"].append(blank_condition(fields))
    elif name == "remove-group" and at and at[0] < len(groups):
        del groups[at[0]]
    elif name == "remove-condition" and len(at) == 2 and at[0] < len(groups):
        conditions = groups[at[0]]["conditions"]
        if at[1] < len(conditions):
            del conditions[at[1]]
    return definition
