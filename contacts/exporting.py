"""CSV export of contacts with their consent state, safe to open in a
spreadsheet (config.lib.csv_cells)."""

import json
from collections.abc import Iterable, Iterator

from config.lib.csv_cells import csv_lines
from contacts.models import AuditEvent, Contact
from contacts.services.audit import record_audit

HEADER = [
    "contact_id",
    "external_id",
    "first_name",
    "last_name",
    "language",
    "time_zone",
    "channel",
    "identity",
    "marketing_consent",
    "marketing_consent_at",
    "transactional_consent",
    "transactional_consent_at",
    "lists",
    "attributes",
    "erased",
]


def export_rows(contacts) -> Iterator[list[str]]:
    """One row per channel identity (or per contact without one), in id order."""
    yield HEADER
    last = 0
    while True:
        chunk = list(
            contacts.filter(pk__gt=last)
            .order_by("pk")
            .prefetch_related("identities", "lists")[:2000]
        )
        if not chunk:
            return
        for contact in chunk:
            yield from _contact_rows(contact)
        last = chunk[-1].pk


def _contact_rows(contact: Contact) -> Iterable[list[str]]:
    base = [
        contact.pk,
        contact.external_id,
        contact.first_name,
        contact.last_name,
        contact.language,
        contact.time_zone,
    ]
    tail = [
        "|".join(sorted(lst.name for lst in contact.lists.all())),
        json.dumps(contact.attributes, ensure_ascii=False)
        if contact.attributes
        else "",
        "yes" if contact.erased_at else "",
    ]
    identities = list(contact.identities.all()) or [None]
    for ident in identities:
        middle = ["", "", "", "", "", ""]
        if ident is not None:
            middle = [
                ident.channel,
                ident.identity,
                ident.marketing_consent,
                _iso(ident.marketing_consent_at),
                ident.transactional_consent,
                _iso(ident.transactional_consent_at),
            ]
        yield base + middle + tail


def _iso(value) -> str:
    return value.isoformat() if value else ""


def stream_csv(contacts, *, actor, description: str) -> Iterator[str]:
    """CSV text lines for `contacts`; the export is recorded in the audit trail."""
    record_audit(
        actor=actor,
        action=AuditEvent.Action.EXPORT,
        target_type="contacts",
        summary=f"Exported contacts: {description}",
    )
    yield from csv_lines(export_rows(contacts))
