"""Which CSV column feeds which contact field."""

import re

IGNORE = "ignore"
ATTRIBUTE = "attribute"

FIELDS = {
    "identity": "Phone number / channel identity",
    "channel": "Channel",
    "external_id": "External id",
    "first_name": "First name",
    "last_name": "Last name",
    "language": "Language",
    "time_zone": "Time zone",
    "consent": "Consent (yes/no, opt-in/opt-out, oui/non, ja/nein, sí/no...)",
    "consent_at": "Consent date",
    ATTRIBUTE: "Custom attribute",
    IGNORE: "Ignore this column",
}

_SYNONYMS = {
    "identity": {
        "phone",
        "phone_number",
        "phonenumber",
        "mobile",
        "mobile_number",
        "msisdn",
        "number",
        "identity",
        "cell",
        "telephone",
        "tel",
        "e164",
    },
    "channel": {"channel"},
    "external_id": {"external_id", "externalid", "id", "customer_id", "contact_id"},
    "first_name": {"first_name", "firstname", "given_name", "forename", "first"},
    "last_name": {"last_name", "lastname", "surname", "family_name", "last"},
    "language": {"language", "lang", "locale"},
    "time_zone": {"time_zone", "timezone", "tz"},
    "consent": {
        "consent",
        "opt_in",
        "optin",
        "opted_in",
        "subscribed",
        "marketing_consent",
    },
    "consent_at": {
        "consent_at",
        "consent_date",
        "consented_at",
        "opt_in_date",
        "optin_date",
    },
}

_NOT_WORD = re.compile(r"[^0-9a-z]+")


def attribute_key(header: str) -> str:
    """A header as a placeholder-safe key: "Loyalty Tier" -> "loyalty_tier"."""
    key = _NOT_WORD.sub("_", header.strip().lower()).strip("_") or "column"
    return f"_{key}" if key[0].isdigit() else key


def auto_map(headers: list[str]) -> dict[str, str]:
    """Guess a field for each header; unknown headers become custom attributes."""
    mapping, taken = {}, set()
    for header in headers:
        key = attribute_key(header)
        field = next(
            (f for f, names in _SYNONYMS.items() if key in names and f not in taken),
            ATTRIBUTE if header.strip() else IGNORE,
        )
        if field not in (ATTRIBUTE, IGNORE):
            taken.add(field)
        mapping[header] = field
    return mapping


def mapping_problems(mapping: dict[str, str], consent_from_column: bool) -> list[str]:
    """What is wrong with a mapping as a whole (empty when it can be used)."""
    problems = []
    fields = [f for f in mapping.values() if f not in (ATTRIBUTE, IGNORE)]
    for field in set(fields):
        if fields.count(field) > 1:
            problems.append(f"Two columns are mapped to {FIELDS[field]!r}.")
    keys: dict[str, str] = {}
    for header, target in mapping.items():
        if target == ATTRIBUTE:
            key = attribute_key(header)
            if key in keys:
                problems.append(
                    f"The columns {keys[key]!r} and {header!r} would both be the "
                    f"attribute {key!r}; rename one or ignore it."
                )
            keys.setdefault(key, header)
    unknown = set(mapping.values()) - set(FIELDS)
    if unknown:
        problems.append(f"Unknown field(s): {', '.join(sorted(unknown))}.")
    if "identity" not in fields:
        problems.append("No column is mapped to the phone number / identity.")
    if consent_from_column and "consent" not in fields:
        problems.append(
            "Consent is to come from a column, but no column is mapped to Consent."
        )
    return problems
