"""The conditions the segment editor offers, as JSON-ready dicts."""

from campaigns.segments import definition as d
from contacts.models import ConsentState, Purpose
from sinch.channels import Channel

KINDS = {
    "first_name": "text",
    "last_name": "text",
    "external_id": "text",
    "language": "text",
    "time_zone": "text",
    "country": "choice",
    "created_at": "date",
    "attribute": "text",
    "list": "list",
    "consent": "consent",
    "engagement": "campaign",
    "last_messaged": "days",
}
LABELS = {
    "first_name": "First name",
    "last_name": "Last name",
    "external_id": "External id",
    "language": "Language",
    "time_zone": "Time zone",
    "country": "Country (from the phone number)",
    "created_at": "Added on",
    "attribute": "Attribute",
    "list": "List",
    "consent": "Consent",
    "engagement": "Campaign engagement",
    "last_messaged": "Last messaged",
}


def fields() -> list[dict]:
    """Every condition the editor offers: field key, label, kind, operators
    (`ops`, with their words in `op_labels`), and the choices, channels or
    purposes it needs."""
    from contacts.countries import country_choices

    offered = []
    for field, ops in d.FIELD_OPS.items():
        entry = {
            "field": field,
            "label": LABELS[field],
            "kind": KINDS[field],
            "ops": list(ops),
            "op_labels": {op: d.OP_LABELS[op] for op in ops},
            "needs_key": field == "attribute",
        }
        if field == "country":
            entry["choices"] = country_choices()
        elif field == "list":
            entry["choices"] = _list_choices()
        elif field == "engagement":
            entry["choices"] = _campaign_choices()
        elif field == "consent":
            entry["channels"] = [[v, label] for v, label in Channel.choices]
            entry["purposes"] = [[v, label] for v, label in Purpose.choices]
            entry["choices"] = [[v, label] for v, label in ConsentState.choices]
        offered.append(entry)
    return offered


def _list_choices() -> list[list]:
    from contacts.models import ContactList

    return [
        [pk, name]
        for pk, name in ContactList.objects.order_by("name").values_list("pk", "name")
    ]


def _campaign_choices() -> list[list]:
    from campaigns.models import Campaign

    launched = Campaign.objects.exclude(frozen_at=None).order_by("-frozen_at")
    return [[pk, name] for pk, name in launched.values_list("pk", "name")[:500]]


def attribute_keys(limit: int = 200) -> list[str]:
    """Attribute names seen in the data, sorted, at most `limit`.

    Reads the newest 5,000 contacts only: a million rows' JSON would take
    seconds, and attribute names come from imports, which share columns.
    """
    from contacts.models import Contact

    keys: set[str] = set()
    rows = Contact.objects.filter(erased_at=None).order_by("-pk")
    for attributes in rows.values_list("attributes", flat=True)[:5000]:
        if isinstance(attributes, dict):
            keys.update(str(k) for k in attributes)
    return sorted(keys)[:limit]
