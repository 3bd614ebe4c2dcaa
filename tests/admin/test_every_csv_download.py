"""Every CSV a user can download from the admin is safe to open in a
spreadsheet: hostile names, attributes, list names, message texts and
reasons come out as text, never as formulas; whole phone numbers stay exact.

The downloads are found, not listed by hand: every admin URL and admin action
whose name speaks of csv, export, download or report must be covered here,
so a new CSV download fails this test until it is added (and made safe).
"""

import csv
import io
import re
from pathlib import Path

import pytest
from django.contrib import admin
from django.urls import URLPattern, URLResolver, get_resolver, reverse

from campaigns.models import Recipient
from config.lib.csv_cells import is_safe_phone
from contacts.importing.importer import run_import
from contacts.importing.jobs import create_import_job
from contacts.models import ConsentState, ImportJob

FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
DOWNLOAD_WORDS = re.compile(r"csv|export|download|report", re.IGNORECASE)
HOSTILE = '=HYPERLINK("http://evil.example","Click")'

PRODUCT_ROOT = Path(__file__).resolve().parents[2]
# The only product modules that may make a csv.writer: the shared safe writer,
# and the two rewrites of files the product reads back (see csv_cells).
RAW_WRITERS = {
    "config/lib/csv_cells.py",
    "config/lib/redaction.py",
    "contacts/importing/pending_uploads.py",
}


def admin_url_names(patterns=None, prefix="") -> set[str]:
    names = set()
    for entry in get_resolver().url_patterns if patterns is None else patterns:
        if isinstance(entry, URLResolver):
            names |= admin_url_names(entry.url_patterns, entry.namespace or prefix)
        elif isinstance(entry, URLPattern) and entry.name and prefix == "admin":
            names.add(entry.name)
    return names


def admin_action_names() -> set[str]:
    names = {name for name, _ in admin.site.actions}
    for model_admin in admin.site._registry.values():
        for action in model_admin.actions or ():
            names.add(action if isinstance(action, str) else action.__name__)
    return {f"action:{name}" for name in names}


def discovered_downloads() -> set[str]:
    return {
        name
        for name in admin_url_names() | admin_action_names()
        if DOWNLOAD_WORDS.search(name)
    }


# --- the hostile data ---------------------------------------------------------


@pytest.fixture(autouse=True)
def media_root(settings, tmp_path):
    settings.MEDIA_ROOT = str(tmp_path / "media")


@pytest.fixture
def hostile_campaign(make_contact, make_list, make_template, make_campaign):
    audience = make_list("=evil list")
    make_contact(
        "+14155550101",
        first_name=HOSTILE,
        last_name="+SUM(1)",
        external_id="-2+3",
        attributes={"tier": "@cmd"},
        consent=ConsentState.OPTED_IN,
        lists=[audience, make_list("-another")],
    )
    make_contact(
        "+14155550102",
        first_name="@SUM(1+1)*cmd|' /C calc'!A0",
        consent=ConsentState.OPTED_OUT,
        lists=[audience],
    )
    make_contact("+14155550103", first_name="-Ann", lists=[audience])
    template = make_template(
        text="${offer} ${first_name} ${tier}",
        parameters={"offer": {"source": "CAMPAIGN"}},
    )
    campaign = make_campaign(
        template, [audience], checked=True, campaign_values={"offer": "=2+3"}
    )
    for n, (status, reason) in enumerate(
        [
            (Recipient.Status.FAILED, HOSTILE),
            (Recipient.Status.DELIVERED, "+cmd"),
            (Recipient.Status.EXCLUDED, "-1+1"),
        ],
        start=1,
    ):
        Recipient.objects.create(
            campaign=campaign,
            identity=f"+1415555010{n}",
            status=status,
            reason=reason,
            failure_code="@1" if status == Recipient.Status.FAILED else "",
            message_id="=msg",
        )
    return campaign


@pytest.fixture
def hostile_import(write_csv, compliance_admin):
    path = write_csv(
        [
            ["phone", "first_name", "channel", "consent"],
            ["=1+2", "@cmd", "SMS", "yes"],
            ["+14155550199", "-x", "=FAX", "yes"],
            ["-4155550198", '=HYPERLINK("x")', "SMS", "+maybe"],
        ]
    )
    job = create_import_job(
        path=path,
        original_name="=evil.csv",
        actor=compliance_admin,
        target_list=None,
        default_channel="SMS",
        purpose="MARKETING",
        consent_mode=ImportJob.ConsentMode.COLUMN,
        consent_source="IMPORT",
        consent_evidence="=evidence",
    )
    return run_import(job, dry_run=True, actor=compliance_admin)


def download(client, name, hostile_campaign, hostile_import):
    """The body of the download `name` (an admin URL name or action:<name>)."""
    if name == "action:export_csv":
        response = client.post(
            reverse("admin:contacts_contact_changelist"),
            {
                "action": "export_csv",
                "_selected_action": [
                    c.pk for c in hostile_campaign.lists.get().contacts.all()
                ],
            },
        )
    elif name == "contacts_importjob_report":
        response = client.get(reverse(f"admin:{name}", args=[hostile_import.pk]))
    else:
        response = client.get(reverse(f"admin:{name}", args=[hostile_campaign.pk]))
    assert response.status_code == 200, (name, response.status_code)
    assert response["Content-Type"].startswith("text/csv"), name
    return b"".join(response.streaming_content).decode("utf-8")


COVERED = {
    "campaigns_campaign_presend_csv",
    "campaigns_campaign_results_csv",
    "contacts_importjob_report",
    "action:export_csv",
}


def test_every_csv_download_of_the_admin_is_covered_here():
    found = discovered_downloads()
    assert found - COVERED == set(), (
        "A new download: add it to COVERED and to download() in this test."
    )
    assert COVERED - found == set(), "A covered download is gone: update COVERED."


def test_product_code_writes_csv_only_through_the_shared_safe_writer():
    raw = {
        str(path.relative_to(PRODUCT_ROOT))
        for package in ("campaigns", "contacts", "config", "sinch")
        for path in (PRODUCT_ROOT / package).rglob("*.py")
        if re.search(r"csv\.(writer|DictWriter)\(", path.read_text(encoding="utf-8"))
    }
    assert raw <= RAW_WRITERS, (
        f"CSV written without config.lib.csv_cells: {raw - RAW_WRITERS}"
    )


@pytest.mark.parametrize("name", sorted(COVERED))
def test_no_cell_of_any_download_starts_a_formula(
    name, client, superuser, hostile_campaign, hostile_import
):
    client.force_login(superuser)
    body = download(client, name, hostile_campaign, hostile_import)
    rows = list(csv.reader(io.StringIO(body)))
    assert len(rows) > 1, f"{name} downloaded no rows: the test proves nothing"
    cells = [cell for row in rows for cell in row]
    formulas = [
        c for c in cells if c.startswith(FORMULA_START) and not is_safe_phone(c)
    ]
    assert formulas == []
    # The hostile values are there, as text.
    assert any(c.startswith("'=") or c.startswith("'@") for c in cells), name
    # Whole phone numbers stay exact for whoever may see them.
    if name != "contacts_importjob_report":
        assert "+14155550101" in cells
