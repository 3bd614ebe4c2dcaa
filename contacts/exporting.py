"""CSV export of contacts with their consent state, safe to open in a spreadsheet.

Spreadsheet formula injection: a cell starting with = + - @ TAB or CR may be run
as a formula by Excel, LibreOffice or Google Sheets. Such cells get a leading
apostrophe, which spreadsheets hide and which turns the cell into text. Phone
numbers are the exception: identities on phone channels are validated E.164
("+" and digits only, nothing a spreadsheet can execute), so they are written
exactly as stored, "+15551230001", and stay valid numbers for any other tool.
"""

import csv
import json
import re
from collections.abc import Iterable, Iterator

from contacts.audit import record_audit
from contacts.models import AuditEvent, Contact

_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
_E164 = re.compile(r"\+[1-9]\d{6,14}")

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


def safe_cell(value) -> str:
    """A value as CSV text that no spreadsheet will evaluate as a formula."""
    text = "" if value is None else str(value)
    if text.startswith(_FORMULA_START) and not _E164.fullmatch(text):
        return "'" + text
    return text


class _Echo:
    def write(self, value: str) -> str:
        return value


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
        yield [safe_cell(v) for v in base + middle + tail]


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
    writer = csv.writer(_Echo())
    for row in export_rows(contacts):
        yield writer.writerow(row)
