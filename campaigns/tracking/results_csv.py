"""A campaign's results, one CSV row per recipient (test sends left out),
spreadsheet-safe (config.lib.csv_cells), phone numbers whole or masked
(contacts.number_visibility); the caller audits the download.

A campaign with tracked links adds each recipient's clicks (by a person,
preview fetchers left out) and the time of their first: one grouped query
per chunk of recipients (Click's recipient index), never one per row.
Without tracked links, the click columns stay empty and cost nothing."""

from collections.abc import Iterator

from campaigns.models import Campaign, Recipient, TrackedLink
from campaigns.tracking import failures
from campaigns.tracking.clicks import recipient_clicks
from config.lib.csv_cells import csv_lines, safe_row
from contacts.number_visibility import shown_number

R = Recipient.Status

RESULT_HEADER = [
    "recipient_id",
    "contact_id",
    "identity",
    "status",
    "failure_code",
    "failure",
    "failure_class",
    "reason",
    "batch",
    "sinch_message_id",
    "switched_channel",
    "delivered_on",
    "updated_at",
    "clicks",
    "first_click_at",
]


CSV_CHUNK = 2000


def result_rows(campaign: Campaign, *, full_numbers: bool) -> Iterator[list[str]]:
    """One row per (non-test) recipient, in id order, read in chunks."""
    yield RESULT_HEADER
    labels = dict(R.choices)
    last = 0
    base = Recipient.objects.filter(campaign=campaign, is_test=False)
    tracked = TrackedLink.objects.filter(campaign=campaign).exists()
    while True:
        chunk = list(
            base.filter(pk__gt=last)
            .order_by("pk")
            .values_list(
                "pk",
                "contact_id",
                "identity",
                "status",
                "failure_code",
                "reason",
                "batch__sequence",
                "message_id",
                "switched_channel",
                "delivered_channel",
                "updated_at",
            )[:CSV_CHUNK]
        )
        if not chunk:
            return
        clicked = recipient_clicks([row[0] for row in chunk]) if tracked else {}
        for pk, contact, identity, status, code, reason, seq, mid, sw, on, at in chunk:
            failed = status == R.FAILED
            kind = failures.describe(code) if failed else None
            clicks, first = clicked.get(pk, (0, None)) if tracked else ("", None)
            yield safe_row(
                [
                    pk,
                    contact or "",
                    shown_number(identity, full=full_numbers),
                    labels.get(status, status),
                    code,
                    kind.label if kind else "",
                    kind.class_label if kind else "",
                    reason,
                    seq or "",
                    mid,
                    "yes" if sw else "",
                    on,
                    at.isoformat() if at else "",
                    clicks,
                    first.isoformat() if first else "",
                ]
            )
        last = chunk[-1][0]


def stream_results(campaign: Campaign, *, full_numbers: bool) -> Iterator[str]:
    """The per-recipient results as CSV text lines (audited by the caller)."""
    yield from csv_lines(result_rows(campaign, full_numbers=full_numbers))
