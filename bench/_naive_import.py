"""The plain reference for bench/import_contacts.py --baseline: the same file
imported the way a straightforward Django program would, with model objects
and bulk_create.

    python bench/_naive_import.py CSV LIST_NAME EVIDENCE

Same validation (the project's RowParser), duplicates found with a set in
memory, then per 10,000 rows one transaction of bulk_create for contacts,
identities (whose queryset keeps the segment facts fresh, as it does for any
caller), consent events and list memberships. No resume, no report file:
the bad rows are only counted. Run by the benchmark against a fresh database
(DATABASE_URL and DJANGO_SETTINGS_MODULE from the environment).
"""

import csv
import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import django

django.setup()

from django.conf import settings  # noqa: E402
from django.db import transaction  # noqa: E402
from django.utils import timezone  # noqa: E402

from contacts.importing.mapping import auto_map  # noqa: E402
from contacts.importing.rows import RowError, RowParser  # noqa: E402
from contacts.models import (  # noqa: E402
    ChannelIdentity,
    ConsentEvent,
    Contact,
    ContactList,
    ListMembership,
)

CHUNK = 10_000


def main(path: str, list_name: str, evidence: str) -> dict:
    target, _ = ContactList.objects.get_or_create(name=list_name)
    now = timezone.now()
    seen: set[str] = set()
    ok = bad = 0
    with open(path, newline="", encoding="utf-8") as handle:
        records = csv.reader(handle)
        headers = next(records)
        parser = RowParser(
            headers,
            auto_map(headers),
            default_channel="SMS",
            consent_from_column=True,
            declared_opt_in=False,
            default_region=settings.PHONE_DEFAULT_REGION,
        )
        chunk = []
        for line, values in enumerate(records, start=2):
            try:
                row = parser.parse(line, values)
            except RowError:
                bad += 1
                continue
            key = f"{row.channel}:{row.identity}"
            if key in seen:
                bad += 1
                continue
            seen.add(key)
            chunk.append(row)
            if len(chunk) == CHUNK:
                ok += _write(chunk, target, evidence, now)
                chunk = []
        ok += _write(chunk, target, evidence, now)
    return {"rows_ok": ok, "rows_bad": bad}


def _write(rows, target, evidence, now) -> int:
    with transaction.atomic():
        contacts = Contact.objects.bulk_create(
            [
                Contact(
                    external_id=r.external_id,
                    attributes=r.attributes,
                    **r.fields,
                )
                for r in rows
            ],
            batch_size=1000,
        )
        identities = ChannelIdentity.objects.bulk_create(
            [
                ChannelIdentity(
                    contact=c,
                    channel=r.channel,
                    identity=r.identity,
                    marketing_consent=(
                        "OPTED_IN"
                        if r.consent == ConsentEvent.Kind.OPT_IN
                        else "OPTED_OUT"
                        if r.consent
                        else "UNKNOWN"
                    ),
                    marketing_consent_at=now if r.consent else None,
                )
                for c, r in zip(contacts, rows, strict=True)
            ],
            batch_size=1000,
        )
        ConsentEvent.objects.bulk_create(
            [
                ConsentEvent(
                    identity=i,
                    channel=r.channel,
                    purpose="MARKETING",
                    kind=r.consent,
                    source=ConsentEvent.Source.IMPORT,
                    evidence_wording=evidence,
                    evidence_note=f"line {r.line}",
                    occurred_at=now,
                )
                for i, r in zip(identities, rows, strict=True)
                if r.consent
            ],
            batch_size=1000,
        )
        ListMembership.objects.bulk_create(
            [ListMembership(contact=c, contact_list=target) for c in contacts],
            batch_size=1000,
        )
    return len(rows)


if __name__ == "__main__":
    print(json.dumps(main(*sys.argv[1:4])))
