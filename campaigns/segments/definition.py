"""What a segment definition may hold, its errors in words, and its sentence.

A definition is JSON::

    {"match": "all"|"any",
     "groups": [{"match": "all"|"any", "conditions": [COND, ...]}, ...]}

COND is ``{"field": F, "op": OP, "value": V}`` plus ``key`` (attributes),
``channel`` and ``purpose`` (consent) or ``campaign`` (engagement). The
fields and their operators are listed in ``FIELD_OPS``; campaigns.segments.
catalogue offers them to the editor and campaigns.segments.evaluate turns a
valid definition into one query.
"""

import datetime
import re

from contacts.models import ConsentState, Purpose
from sinch.channels import Channel

TEXT_OPS = ("equals", "not_equals", "in", "contains", "is_empty", "is_not_empty")
COUNTRY_OPS = ("equals", "not_equals", "in", "is_empty", "is_not_empty")
DATE_OPS = ("before", "after", "on", "within_days", "older_than_days")
ATTRIBUTE_OPS = (
    *TEXT_OPS,
    *("gt", "gte", "lt", "lte"),
    *("before", "after"),
)
ENGAGEMENT_OPS = (
    *("received", "delivered", "failed", "replied", "not_received"),
    *("clicked", "not_clicked"),
)
CONTACT_TEXT_FIELDS = (
    "first_name",
    "last_name",
    "external_id",
    "language",
    "time_zone",
)
FIELD_OPS: dict[str, tuple[str, ...]] = {
    **{field: TEXT_OPS for field in CONTACT_TEXT_FIELDS},
    "country": COUNTRY_OPS,
    "created_at": DATE_OPS,
    "attribute": ATTRIBUTE_OPS,
    "list": ("in", "not_in"),
    "consent": ("is", "is_not"),
    "engagement": ENGAGEMENT_OPS,
    "last_messaged": ("not_in_days", "in_days"),
}
FIELD_LABELS = {
    "first_name": "first name",
    "last_name": "last name",
    "external_id": "external id",
    "language": "language",
    "time_zone": "time zone",
    "country": "country",
    "created_at": "added on",
    "attribute": "attribute",
    "list": "list",
    "consent": "consent",
    "engagement": "engagement",
    "last_messaged": "last messaged",
}
OP_LABELS = {
    "equals": "is",
    "not_equals": "is not",
    "in": "is one of",
    "not_in": "is not in",
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
    "within_days": "is within the last",
    "older_than_days": "is more than",
    "is": "is",
    "is_not": "is not",
    "received": "received",
    "delivered": "was delivered",
    "failed": "failed to receive",
    "replied": "replied to",
    "not_received": "did not receive",
    "clicked": "clicked a link of",
    "not_clicked": "did not click a link of",
    "not_in_days": "not messaged in",
    "in_days": "messaged in",
}
NO_VALUE_OPS = {"is_empty", "is_not_empty", *ENGAGEMENT_OPS}
DAYS_OPS = {"within_days", "older_than_days", "not_in_days", "in_days"}
NUMBER_OPS = {"gt", "gte", "lt", "lte"}
DAY_OPS = {"before", "after", "on"}
MAX_CONDITIONS = 50
MAX_DAYS = 36500
ISO_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")


def validate(definition) -> list[str]:
    """Every problem of a definition, in the user's words; [] when valid.

    Checks the shape, each condition's field, operator and value, and that
    the lists and campaigns it names exist (one query each).
    """
    if not isinstance(definition, dict):
        return ["The definition must be a set of condition groups."]
    errors = []
    if definition.get("match", "all") not in ("all", "any"):
        errors.append('Combine the groups with "all" or "any".')
    groups = definition.get("groups")
    if not isinstance(groups, list) or not groups:
        return [*errors, "Add at least one condition."]
    total = 0
    for g, group in enumerate(groups, start=1):
        where = f"Group {g}"
        if not isinstance(group, dict):
            errors.append(f"{where} is not a group of conditions.")
            continue
        if group.get("match", "all") not in ("all", "any"):
            errors.append(f'{where}: combine its conditions with "all" or "any".')
        conditions = group.get("conditions")
        if not isinstance(conditions, list) or not conditions:
            errors.append(f"{where} has no conditions: add one or remove the group.")
            continue
        for c, condition in enumerate(conditions, start=1):
            total += 1
            errors.extend(
                f"{where}, condition {c}: {problem}"
                for problem in condition_errors(condition)
            )
    if total > MAX_CONDITIONS:
        errors.append(f"Use at most {MAX_CONDITIONS} conditions (this has {total}).")
    if not errors:
        errors.extend(_missing_references(groups))
    return errors


def condition_errors(condition) -> list[str]:
    """The problems of one condition (no database access)."""
    if not isinstance(condition, dict):
        return ["not a condition."]
    field, op = condition.get("field"), condition.get("op")
    if field not in FIELD_OPS:
        return [f"unknown field {field!r}; choose one of the listed fields."]
    label = FIELD_LABELS[field]
    if op not in FIELD_OPS[field]:
        allowed = ", ".join(OP_LABELS[o] for o in FIELD_OPS[field])
        return [f"{label} cannot be compared with {op!r}; use one of: {allowed}."]
    problems = _extra_errors(field, condition)
    value = condition.get("value")
    if op not in NO_VALUE_OPS:
        problem = _value_error(field, op, value)
        if problem:
            problems.append(f"{label} {OP_LABELS[op]}: {problem}")
    return problems


def _extra_errors(field: str, condition: dict) -> list[str]:
    if field == "attribute":
        key = condition.get("key")
        if not isinstance(key, str) or not key.strip():
            return ["choose which attribute (its name, e.g. loyalty_tier)."]
    if field == "consent":
        problems = []
        if condition.get("channel") not in Channel.values:
            problems.append("choose the channel of the consent (e.g. SMS).")
        if condition.get("purpose") not in Purpose.values:
            problems.append("choose the purpose: marketing or transactional.")
        return problems
    if field == "engagement" and not _is_id(condition.get("campaign")):
        return ["choose the campaign."]
    return []


def _value_error(field: str, op: str, value) -> str | None:
    """Why `value` does not suit the field and operator, or None."""
    if field == "list":
        if not isinstance(value, list) or not value or not all(map(_is_id, value)):
            return "choose at least one list."
        return None
    if field == "consent":
        if value not in ConsentState.values:
            states = ", ".join(label for label in ConsentState.labels)
            return f"choose a consent state ({states})."
        return None
    if op in DAYS_OPS:
        if not _is_int(value) or not 0 < int(value) <= MAX_DAYS:
            return f"enter a number of days from 1 to {MAX_DAYS}."
        return None
    if op in NUMBER_OPS:
        return None if _is_number(value) else "enter a number, e.g. 42 or 3.5."
    if op in DAY_OPS:
        return None if _is_date(value) else "enter a date as YYYY-MM-DD."
    if op == "in":
        if not isinstance(value, list) or not value:
            return "enter at least one value."
        if not all(isinstance(v, str | int | float) for v in value):
            return "every value must be text or a number."
        if field == "country" and not all(_is_country(v) for v in value):
            return "use two-letter country codes, e.g. FR or US."
        return None
    if not isinstance(value, str | int | float) or str(value).strip() == "":
        return "enter a value."
    if field == "country" and not _is_country(value):
        return "use a two-letter country code, e.g. FR or US."
    return None


def _missing_references(groups: list) -> list[str]:
    from campaigns.models import Campaign
    from contacts.models import ContactList

    conditions = [c for g in groups for c in g["conditions"]]
    list_ids = {int(i) for c in conditions if c["field"] == "list" for i in c["value"]}
    campaign_ids = {
        int(c["campaign"]) for c in conditions if c["field"] == "engagement"
    }
    found_lists = set(
        ContactList.objects.filter(pk__in=list_ids).values_list("pk", flat=True)
    )
    found_campaigns = set(
        Campaign.objects.filter(pk__in=campaign_ids).values_list("pk", flat=True)
    )
    return [
        f"List #{pk} no longer exists: choose another."
        for pk in sorted(list_ids - found_lists)
    ] + [
        f"Campaign #{pk} no longer exists: choose another."
        for pk in sorted(campaign_ids - found_campaigns)
    ]


def describe(definition, names: dict | None = None) -> str:
    """One sentence for a valid definition, e.g. 'language is fr AND (SMS
    marketing consent is opted in OR replied to campaign "Spring sale")'.

    `names` maps ("list", id) and ("campaign", id) to names; when omitted,
    they are read from the database (one query each).
    """
    groups = definition.get("groups") or []
    if names is None:
        names = _reference_names(groups)
    joiner = " AND " if definition.get("match", "all") == "all" else " OR "
    parts = []
    for group in groups:
        inner = " AND " if group.get("match", "all") == "all" else " OR "
        sentence = inner.join(
            describe_condition(c, names) for c in group.get("conditions", [])
        )
        multiple = len(groups) > 1 and len(group.get("conditions", [])) > 1
        parts.append(f"({sentence})" if multiple else sentence)
    return joiner.join(parts) or "no conditions"


def describe_condition(condition: dict, names: dict) -> str:
    field, op, value = condition["field"], condition["op"], condition.get("value")
    if field == "attribute":
        subject = f"attribute {condition.get('key')}"
    elif field == "consent":
        purpose = Purpose(condition["purpose"]).label
        return (
            f"{Channel(condition['channel']).label} {purpose} consent "
            f"{OP_LABELS[op]} {ConsentState(value).label}"
        )
    elif field == "engagement":
        name = names.get(("campaign", int(condition["campaign"])))
        title = f'"{name}"' if name else f"#{condition['campaign']}"
        return f"{OP_LABELS[op]} campaign {title}"
    elif field == "last_messaged":
        return f"{OP_LABELS[op]} the last {value} days"
    elif field == "list":
        listed = ", ".join(f'"{names.get(("list", int(i)), f"#{i}")}"' for i in value)
        return f"{'on' if op == 'in' else 'not on'} list {listed}"
    else:
        subject = FIELD_LABELS[field]
    if op in NO_VALUE_OPS:
        return f"{subject} {OP_LABELS[op]}"
    if op == "in":
        return f"{subject} {OP_LABELS[op]} {', '.join(map(str, value))}"
    if op == "within_days":
        return f"{subject} within the last {value} days"
    if op == "older_than_days":
        return f"{subject} more than {value} days ago"
    return f"{subject} {OP_LABELS[op]} {value}"


def _reference_names(groups: list) -> dict:
    from campaigns.models import Campaign
    from contacts.models import ContactList

    conditions = [c for g in groups for c in g.get("conditions", [])]
    list_ids = [i for c in conditions if c.get("field") == "list" for i in c["value"]]
    campaign_ids = [c["campaign"] for c in conditions if c.get("field") == "engagement"]
    names = {
        ("list", pk): name
        for pk, name in ContactList.objects.filter(pk__in=list_ids).values_list(
            "pk", "name"
        )
    }
    names.update(
        (("campaign", pk), name)
        for pk, name in Campaign.objects.filter(pk__in=campaign_ids).values_list(
            "pk", "name"
        )
    )
    return names


def _is_id(value) -> bool:
    return _is_int(value) and int(value) > 0


def _is_int(value) -> bool:
    if isinstance(value, bool):
        return False
    if isinstance(value, int):
        return True
    return isinstance(value, str) and value.strip().isdigit()


def _is_number(value) -> bool:
    if isinstance(value, bool):
        return False
    if isinstance(value, int | float):
        return True
    try:
        float(str(value))
    except ValueError:
        return False
    return str(value).strip().lower() not in ("nan", "inf", "-inf", "infinity")


def _is_date(value) -> bool:
    if not isinstance(value, str) or not ISO_DATE.match(value):
        return False
    try:
        datetime.date.fromisoformat(value)
    except ValueError:
        return False
    return True


def _is_country(value) -> bool:
    from contacts.countries import is_known_country

    return isinstance(value, str) and is_known_country(value)
