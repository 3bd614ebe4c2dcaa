"""Imports that forgive common mistakes: Excel workbooks, legacy encodings,
local consent words and dates, files that are not tables at all, discarding a
pending import, a report in line order and progress that never goes back."""

import csv
import datetime as dt
import gzip
import io
import os
import zipfile

import openpyxl
import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse

from contacts.importing import importer as importer_module
from contacts.importing.importer import run_import
from contacts.importing.jobs import ImportSetupError, create_import_job
from contacts.models import (
    AuditEvent,
    ChannelIdentity,
    ConsentEvent,
    ConsentState,
    Contact,
    ImportJob,
)
from contacts.services.erasure import erase_contact

EVIDENCE = "Shop sign-up form, 2024 wording"
UPLOAD_URL = reverse("admin:contacts_importjob_upload")


@pytest.fixture(autouse=True)
def media_root(settings, tmp_path):
    settings.MEDIA_ROOT = str(tmp_path / "media")
    return settings.MEDIA_ROOT


@pytest.fixture
def run_file(db):
    """create_import_job + run_import; consent from the column by default."""

    def run(path, *, dry_run=False, **options):
        options = {
            "original_name": os.path.basename(str(path)),
            "actor": None,
            "target_list": None,
            "default_channel": "SMS",
            "purpose": "MARKETING",
            "consent_mode": ImportJob.ConsentMode.COLUMN,
            "consent_source": "IMPORT",
            "consent_evidence": EVIDENCE,
            **options,
        }
        job = create_import_job(path=str(path), **options)
        return run_import(job, dry_run=dry_run, actor=options["actor"])

    return run


def write_xlsx(path, rows, *, blank_rows_before=0, formats=None):
    """A real workbook (openpyxl writes what Excel writes); `formats` sets a
    number format on cells by coordinate, e.g. {"A2": "0.00E+00"}."""
    book = openpyxl.Workbook()
    sheet = book.active
    sheet.title = "Contacts"
    for _ in range(blank_rows_before):
        sheet.append([])
    for row in rows:
        sheet.append(row)
    for coordinate, number_format in (formats or {}).items():
        sheet[coordinate].number_format = number_format
    book.create_sheet("Notes").append(["not read: only the first sheet is"])
    book.save(path)
    return str(path)


def upload(client, path, **options):
    with open(path, "rb") as f:
        data = {
            "file": SimpleUploadedFile(os.path.basename(str(path)), f.read()),
            "target_list": "",
            "default_channel": "SMS",
            "purpose": "MARKETING",
            "consent_mode": "COLUMN",
            "consent_source": "FORM",
            "consent_evidence": EVIDENCE,
            **options,
        }
    return client.post(UPLOAD_URL, data)


def url(name, job):
    return reverse(f"admin:contacts_importjob_{name}", args=[job.pk])


def names():
    return set(Contact.objects.values_list("first_name", "last_name"))


def uploads(media_root):
    folder = os.path.join(media_root, "imports")
    return os.listdir(folder) if os.path.isdir(folder) else []


# --- Excel workbooks -----------------------------------------------------------


def test_an_xlsx_workbook_is_read_with_numbers_as_phones_and_dates(tmp_path, run_file):
    path = write_xlsx(
        tmp_path / "people.xlsx",
        [
            ["Phone", "First name", "Last name", "Consent", "Consent date", "Score"],
            [4915112345678, "Jürgen", "Müller", "ja", dt.datetime(2026, 1, 31), 3.0],
            [4915112345679.0, "Françoise", "Léger", True, dt.date(2025, 12, 1), 2.5],
            [4915112345670, "Zoë", "Ødegård", "non", dt.datetime(2026, 2, 1, 9, 30), 1],
            [],  # row 5: an empty row is skipped, and counts as a row
            ["bad", "Ann", "Bad", "yes", None, None],  # row 6
        ],
        formats={"A2": "0.00E+00", "A3": "0.0"},  # shown as 4.92E+12 in Excel
    )
    job = run_file(path)

    assert job.file_format == ImportJob.FileFormat.XLSX
    assert (job.status, job.rows_ok, job.rows_bad) == (ImportJob.Status.DONE, 3, 1)
    assert job.headers == [
        "Phone",
        "First name",
        "Last name",
        "Consent",
        "Consent date",
        "Score",
    ]
    assert set(ChannelIdentity.objects.values_list("identity", flat=True)) == {
        "+4915112345678",
        "+4915112345679",
        "+4915112345670",
    }
    assert names() == {("Jürgen", "Müller"), ("Françoise", "Léger"), ("Zoë", "Ødegård")}
    # The line is the row number Excel shows.
    assert [e["line"] for e in job.sample_errors] == [6]
    jurgen = Contact.objects.get(first_name="Jürgen")
    assert jurgen.attributes == {"score": "3"}
    assert Contact.objects.get(first_name="Françoise").attributes == {"score": "2.5"}
    events = {
        e.identity.identity: (e.kind, e.occurred_at)
        for e in ConsentEvent.objects.select_related("identity")
    }
    assert events == {
        "+4915112345678": ("OPT_IN", dt.datetime(2026, 1, 31, tzinfo=dt.UTC)),
        "+4915112345679": ("OPT_IN", dt.datetime(2025, 12, 1, tzinfo=dt.UTC)),
        "+4915112345670": ("OPT_OUT", dt.datetime(2026, 2, 1, 9, 30, tzinfo=dt.UTC)),
    }


def test_a_workbook_whose_header_is_below_blank_rows_keeps_excel_row_numbers(
    tmp_path, run_file
):
    path = write_xlsx(
        tmp_path / "late-header.xlsx",
        [["phone", "first_name"], [4915112345678, "Anna"], ["nope", "Ben"]],
        blank_rows_before=2,
    )
    job = run_file(path, consent_mode=ImportJob.ConsentMode.NONE)
    assert job.headers == ["phone", "first_name"]
    assert (job.rows_ok, job.rows_bad) == (1, 1)
    assert job.sample_errors[0]["line"] == 5
    assert ChannelIdentity.objects.get().origin_line == 4


def test_an_xlsx_is_uploaded_reviewed_and_imported_in_the_admin(
    client, compliance_admin, tmp_path, media_root
):
    path = write_xlsx(
        tmp_path / "fair.xlsx",
        [["phone", "first_name", "consent"], [4915112345678, "Jürgen", "oui"]],
    )
    client.force_login(compliance_admin)
    response = upload(client, path)
    job = ImportJob.objects.get()
    assert response.status_code == 302, response.content
    assert job.file_path.endswith(".xlsx")  # not read as text by erasure
    review = client.get(url("review", job))
    assert "Excel workbook: the first sheet is read" in review.text
    assert "Jürgen" in review.text
    assert "4915112345678" in review.text
    client.post(url("confirm", job))
    job.refresh_from_db()
    assert job.status == ImportJob.Status.DONE
    assert Contact.objects.get().first_name == "Jürgen"
    assert uploads(media_root) == []  # the uploaded workbook is gone


# --- encodings -----------------------------------------------------------------

LEGACY_ROWS = "phone;first_name;last_name\r\n+4915123456789;Françoise;Müller\r\n"


@pytest.mark.parametrize(
    ("text", "encode", "detected", "people"),
    [
        (
            LEGACY_ROWS + "+4915123456780;Renée;O\u2019Neil \u2013 \u20ac\r\n",
            "cp1252",
            "cp1252",
            {("Françoise", "Müller"), ("Renée", "O\u2019Neil \u2013 \u20ac")},
        ),
        (LEGACY_ROWS, "latin-1", "latin-1", {("Françoise", "Müller")}),
        (LEGACY_ROWS, "utf-16", "utf-16", {("Françoise", "Müller")}),
        (LEGACY_ROWS, "utf-16-le", "utf-16-le", {("Françoise", "Müller")}),
        (LEGACY_ROWS, "utf-8", "utf-8-sig", {("Françoise", "Müller")}),
    ],
    ids=["windows-1252", "latin-1", "utf-16-with-bom", "utf-16-no-bom", "utf-8"],
)
def test_legacy_encodings_are_detected_and_names_come_out_right(
    tmp_path, run_file, text, encode, detected, people
):
    path = tmp_path / "legacy.csv"
    path.write_bytes(text.encode(encode))
    job = run_file(path, consent_mode=ImportJob.ConsentMode.NONE)
    assert (job.encoding, job.encoding_chosen) == (detected, False)
    assert job.headers == ["phone", "first_name", "last_name"]
    assert job.status == ImportJob.Status.DONE, job.error
    assert names() == people


def test_a_latin1_byte_after_a_long_ascii_start_is_found(tmp_path, run_file):
    lines = ["phone,first_name"] + [
        f"+491510000{n:04d},Person {n}" for n in range(2600)
    ]
    head = ("\n".join(lines) + "\n").encode()
    assert len(head) > 64 * 1024
    path = tmp_path / "late.csv"
    path.write_bytes(head + "+4915123456789,René\n".encode("latin-1"))
    job = run_file(path, consent_mode=ImportJob.ConsentMode.NONE)
    assert job.encoding == "latin-1"
    assert job.rows_ok == 2601
    assert Contact.objects.filter(first_name="René").exists()


def test_the_review_shows_the_encoding_and_decoded_rows_and_lets_the_user_choose(
    client, compliance_admin, tmp_path
):
    # Central European text: Windows-1250 bytes that Windows-1252 misreads.
    path = tmp_path / "polish.csv"
    text = "phone;imię;nazwisko\r\n+48512345678;Łukasz;Żółć\r\n"
    path.write_bytes(text.encode("cp1250"))
    client.force_login(compliance_admin)
    upload(client, path, consent_mode="NONE", consent_evidence="")
    job = ImportJob.objects.get()
    review = client.get(url("review", job))
    assert 'id="encoding-shown"' in review.text
    # No byte of 0x80-0x9F: read as Latin-1, where 0xA3 is "£", not "Ł".
    assert "ISO-8859-1 (Latin-1)</strong> (detected)" in review.text
    assert "£ukasz" in review.text  # misread: the user sees it
    assert job.mapping["phone"] == "identity"

    posted = {f"map-{i}": job.mapping[h] for i, h in enumerate(job.headers)}
    client.post(url("revalidate", job), {**posted, "encoding": "cp1250"})
    job.refresh_from_db()
    assert (job.encoding, job.encoding_chosen) == ("cp1250", True)
    assert job.headers == ["phone", "imię", "nazwisko"]
    assert job.mapping["phone"] == "identity"
    review = client.get(url("review", job))
    assert "Windows-1250 (Central European)</strong> (chosen by you)" in review.text
    assert "Łukasz" in review.text
    assert "Żółć" in review.text
    client.post(url("confirm", job), {"encoding": "cp1250", "date_order": ""})
    job.refresh_from_db()
    assert job.status == ImportJob.Status.DONE
    assert Contact.objects.get().attributes == {"imi": "Łukasz", "nazwisko": "Żółć"}


def test_confirming_with_a_changed_encoding_asks_for_a_revalidation(
    client, compliance_admin, tmp_path
):
    path = tmp_path / "w.csv"
    path.write_bytes(LEGACY_ROWS.encode("cp1252"))
    client.force_login(compliance_admin)
    upload(client, path, consent_mode="NONE", consent_evidence="")
    job = ImportJob.objects.get()
    response = client.post(url("confirm", job), {"encoding": "cp1250"}, follow=True)
    assert "re-validate first" in response.text
    assert not Contact.objects.exists()


# --- consent words and dates ----------------------------------------------------


@pytest.mark.parametrize(
    "word",
    [
        "yes", "Y", "TRUE", "1", "opt-in", "Opt In", "OPT_IN", "oui", "Oui",
        "ja", "JA", "sí", "Sí", "si", "SI", "sim", "x",
    ],
)  # fmt: skip
def test_consent_words_that_mean_yes(write_csv, run_file, word):
    job = run_file(write_csv([["phone", "consent"], ["+4915123456789", word]]))
    assert (job.rows_ok, job.opt_ins, job.opt_outs) == (1, 1, 0), job.sample_errors


@pytest.mark.parametrize(
    "word",
    [
        "no", "N", "false", "0", "opt-out", "Opt Out", "non", "NON", "nein",
        "Nein", "não", "nee", "stop", "unsubscribed",
    ],
)  # fmt: skip
def test_consent_words_that_mean_no(write_csv, run_file, word):
    job = run_file(write_csv([["phone", "consent"], ["+4915123456789", word]]))
    assert (job.rows_ok, job.opt_ins, job.opt_outs) == (1, 0, 1), job.sample_errors
    ident = ChannelIdentity.objects.get()
    assert ident.marketing_consent == ConsentState.OPTED_OUT


def test_a_consent_word_not_understood_is_reported_with_the_words_that_are(
    write_csv, run_file
):
    job = run_file(write_csv([["phone", "consent"], ["+4915123456789", "maybe"]]))
    assert job.rows_bad == 1
    problem = job.sample_errors[0]["problem"]
    assert "consent value 'maybe' not understood" in problem
    assert "oui/non" in problem
    assert "ja/nein" in problem


@pytest.mark.parametrize(
    ("raw", "order", "expected"),
    [
        ("2026-03-04", "", dt.datetime(2026, 3, 4)),
        ("31/12/2025", "", dt.datetime(2025, 12, 31)),
        ("12/31/2025", "", dt.datetime(2025, 12, 31)),
        ("31.12.2025", "", dt.datetime(2025, 12, 31)),
        ("04.03.2026", "", dt.datetime(2026, 3, 4)),  # dots: day first
        ("04/03/2026", "DMY", dt.datetime(2026, 3, 4)),
        ("04/03/2026", "MDY", dt.datetime(2026, 4, 3)),
        ("04-03-2026", "DMY", dt.datetime(2026, 3, 4)),
        ("05/05/2026", "", dt.datetime(2026, 5, 5)),  # the same either way
        ("31/12/25 09:30", "DMY", dt.datetime(2025, 12, 31, 9, 30)),
        ("1/2/2026 08:05:09", "MDY", dt.datetime(2026, 1, 2, 8, 5, 9)),
    ],
)
def test_consent_dates_in_local_forms(write_csv, run_file, raw, order, expected):
    job = run_file(
        write_csv(
            [["phone", "consent", "consent_date"], ["+4915123456789", "yes", raw]]
        ),
        date_order=order,
    )
    assert job.rows_ok == 1, job.sample_errors
    event = ConsentEvent.objects.get()
    assert event.occurred_at == expected.replace(tzinfo=dt.UTC)


@pytest.mark.parametrize(
    ("raw", "order", "problem"),
    [
        (
            "04/03/2026",
            "",
            "is ambiguous (4 March or April 3?): choose the file's date order",
        ),
        (
            "31/12/2025",
            "MDY",
            "can only be read day first, but the file's date order is month first",
        ),
        (
            "12/31/2025",
            "DMY",
            "can only be read month first, but the file's date order is day first",
        ),
        ("31/02/2026", "", "is not a real date"),
        ("31st Dec", "", "not understood"),
        ("31/12/2099", "", "is in the future"),
    ],
)
def test_consent_dates_that_cannot_be_read_say_why(
    write_csv, run_file, raw, order, problem
):
    job = run_file(
        write_csv(
            [["phone", "consent", "consent_date"], ["+4915123456789", "yes", raw]]
        ),
        date_order=order,
    )
    assert job.rows_bad == 1
    assert problem in job.sample_errors[0]["problem"]
    assert not ConsentEvent.objects.exists()


def test_a_phone_number_a_spreadsheet_wrote_as_a_float_in_a_csv(write_csv, run_file):
    job = run_file(
        write_csv([["phone"], ["4915112345678.0"], ["4.9151E+12"]]),
        consent_mode=ImportJob.ConsentMode.NONE,
    )
    assert ChannelIdentity.objects.get().identity == "+4915112345678"
    assert (
        "scientific notation and its digits are lost"
        in (job.sample_errors[0]["problem"])
    )


# --- what the file is -----------------------------------------------------------


def _zip(path, names, mimetype=None):
    with zipfile.ZipFile(path, "w") as archive:
        if mimetype:
            archive.writestr("mimetype", mimetype)
        for name in names:
            archive.writestr(name, "x")


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (
            lambda p: p.write_bytes(b"\x89PNG\r\n\x1a\n" + b"\0" * 40),
            "This is a PNG image, not a CSV file",
        ),
        (
            lambda p: p.write_bytes(b"\xff\xd8\xff\xe0\0\x10JFIF"),
            "This is a JPEG image, not a CSV file",
        ),
        (
            lambda p: p.write_bytes(b"GIF89a\x01\0\x01\0"),
            "This is a GIF image, not a CSV file",
        ),
        (
            lambda p: p.write_bytes(b"%PDF-1.7\n%\xe2\xe3"),
            "This is a PDF document, not a CSV file",
        ),
        (
            lambda p: p.write_bytes(gzip.compress(b"phone\n+4915123456789\n")),
            "This is a gzip-compressed file, not a CSV file. Unpack it first",
        ),
        (
            lambda p: p.write_bytes(b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + b"\0" * 64),
            "This is an old-format Excel workbook (.xls)",
        ),
        (
            lambda p: _zip(p, ["Index/Document.iwa", "Metadata/Properties.plist"]),
            "This is an Apple Numbers spreadsheet",
        ),
        (
            lambda p: _zip(
                p, ["content.xml"], "application/vnd.oasis.opendocument.spreadsheet"
            ),
            "This is an OpenDocument spreadsheet (.ods)",
        ),
        (lambda p: _zip(p, ["contacts.csv"]), "This is a ZIP archive, not a CSV file"),
        (
            lambda p: p.write_text("<!DOCTYPE html><html><body>Sign in</body></html>"),
            "This is a web page (HTML), not a CSV file",
        ),
        (lambda p: p.write_bytes(b""), "The submitted file is empty."),
        (lambda p: p.write_bytes(b"\r\n  \r\n"), "The file is empty."),
        (
            lambda p: p.write_text("phone,first_name\r\n"),
            "The file has a header and no rows",
        ),
        (
            lambda p: p.write_text("phone,first_name\r\n,\r\n\r\n"),
            "The file has a header and no rows",
        ),
        (
            lambda p: write_xlsx(p, [["phone", "first_name"]]),
            "The first sheet of the workbook has a header and no rows",
        ),
        (lambda p: write_xlsx(p, []), "The file is empty"),
    ],
    ids=[
        "png",
        "jpeg",
        "gif",
        "pdf",
        "gzip",
        "xls",
        "numbers",
        "ods",
        "zip",
        "html",
        "empty",
        "blank-lines",
        "header-only",
        "header-and-blank-rows",
        "xlsx-header-only",
        "xlsx-empty",
    ],
)
def test_the_message_says_what_the_file_is(
    client, compliance_admin, tmp_path, media_root, make, message
):
    path = tmp_path / "contacts.csv"
    make(path)
    client.force_login(compliance_admin)
    response = upload(client, path)
    assert response.status_code == 200
    assert message in response.text
    assert not ImportJob.objects.exists()
    assert uploads(media_root) == []  # the refused upload is not kept


# --- discarding a pending import ------------------------------------------------


def test_a_pending_import_can_be_discarded_and_its_file_is_deleted(
    client, compliance_admin, write_csv, media_root
):
    client.force_login(compliance_admin)
    upload(
        client,
        write_csv([["phone", "consent"], ["+4915123456789", "yes"], ["x", "yes"]]),
    )
    job = ImportJob.objects.get()
    assert job.status == ImportJob.Status.VALIDATED
    stored, report = job.file_path, job.report_file
    assert os.path.exists(stored)
    assert os.path.exists(report)
    assert "Discard this import" in client.get(url("review", job)).text

    confirmation = client.get(url("discard", job))
    assert "Yes, discard this import" in confirmation.text
    assert os.path.exists(stored)  # nothing happens on GET

    response = client.post(url("discard", job), follow=True)
    assert "was discarded: nothing was imported" in response.text
    job.refresh_from_db()
    assert job.status == ImportJob.Status.DISCARDED
    assert not os.path.exists(stored)
    assert not os.path.exists(report)
    assert (job.report_file, job.sample_errors) == ("", [])
    assert not Contact.objects.exists()
    audit = AuditEvent.objects.get(action=AuditEvent.Action.IMPORT)
    assert audit.actor == compliance_admin
    assert audit.target_id == str(job.pk)
    assert "Discarded the pending import" in audit.summary
    page = client.get(url("progress", job))
    assert "This import was discarded" in page.text
    assert client.post(url("confirm", job)).status_code == 302
    job.refresh_from_db()
    assert job.status == ImportJob.Status.DISCARDED  # cannot be imported any more


def test_an_imported_job_cannot_be_discarded(
    client, compliance_admin, write_csv, viewer
):
    client.force_login(compliance_admin)
    upload(client, write_csv([["phone", "consent"], ["+4915123456789", "yes"]]))
    job = ImportJob.objects.get()
    client.post(url("confirm", job))
    response = client.post(url("discard", job), follow=True)
    assert "only an import that has not been confirmed can be discarded" in (
        response.text
    )
    job.refresh_from_db()
    assert job.status == ImportJob.Status.DONE
    client.force_login(viewer)
    assert client.post(url("discard", job)).status_code == 403


def test_discarding_a_failed_import_keeps_the_rows_it_wrote_and_says_so(
    tmp_path, run_file, compliance_admin, media_root
):
    from contacts.importing import jobs

    lines = ["phone,first_name"] + [f"+491510000{n:04d},P{n}" for n in range(5000)]
    path = os.path.join(media_root, "imports", "late.csv")
    os.makedirs(os.path.dirname(path))
    with open(path, "wb") as f:
        f.write(
            ("\n".join(lines) + "\n").encode()
            + "+4915123456789,Ren\xe9\n".encode("latin-1")
        )
    job = run_file(path, consent_mode=ImportJob.ConsentMode.NONE, encoding="utf-8-sig")
    assert job.status == ImportJob.Status.FAILED
    written = Contact.objects.count()
    assert written == job.rows_ok > 0

    assert jobs.discard(job, actor=compliance_admin)
    job.refresh_from_db()
    assert job.status == ImportJob.Status.DISCARDED
    assert not os.path.exists(path)
    assert Contact.objects.count() == written
    audit = AuditEvent.objects.filter(summary__startswith="Discarded").get()
    assert f"{written} rows imported before it failed stay" in audit.summary


def test_a_check_queued_for_the_worker_leaves_a_discarded_import_alone(
    client,
    compliance_admin,
    write_csv,
    settings,
    media_root,
    django_capture_on_commit_callbacks,
):
    settings.IMPORT_BACKGROUND_BYTES = 10
    client.force_login(compliance_admin)
    with django_capture_on_commit_callbacks(execute=False) as queued:
        upload(client, write_csv([["phone", "consent"], ["+4915123456789", "yes"]]))
    job = ImportJob.objects.get()
    assert job.status == ImportJob.Status.VALIDATING
    client.post(url("discard", job))
    for callback in queued:
        callback()  # the worker gets to it after all
    job.refresh_from_db()
    assert job.status == ImportJob.Status.DISCARDED
    assert job.report_file == ""
    assert uploads(media_root) == []
    reports = os.path.join(media_root, "import-reports")
    assert not os.path.isdir(reports) or os.listdir(reports) == []


def test_an_import_discarded_while_it_is_checked_stays_discarded(
    write_csv, run_file, monkeypatch, compliance_admin, media_root
):
    from contacts.importing import jobs

    save = importer_module.Importer._save_progress

    def discard_midway(self, final=False):
        save(self, final)
        if not final:
            jobs.discard(ImportJob.objects.get(pk=self.job.pk), actor=compliance_admin)

    monkeypatch.setattr(importer_module.Importer, "_save_progress", discard_midway)
    job = run_file(
        write_csv([["phone", "consent"], ["+4915123456789", "yes"], ["x", "no"]]),
        dry_run=True,
    )
    job.refresh_from_db()
    assert job.status == ImportJob.Status.DISCARDED
    assert job.report_file == ""
    assert os.listdir(os.path.join(media_root, "import-reports")) == []


# --- erasure reaches uploads that are not UTF-8 ---------------------------------


def _read_upload(job):
    with open(job.file_path, "rb") as f:
        return f.read()


@pytest.mark.parametrize("kind", ["cp1252", "utf-16", "xlsx"])
def test_erasure_removes_the_person_from_a_pending_upload_in_any_format(
    client, compliance_admin, tmp_path, make_contact, kind
):
    zoe = make_contact(phone="+4915123456781", first_name="Zoë", last_name="Größ")
    rows = [
        ["phone", "first_name", "last_name"],
        ["+4915123456789", "Françoise", "Müller"],
        ["+49 151 23456781", "Zoë", "Größ"],
    ]
    if kind == "xlsx":
        path = write_xlsx(tmp_path / "people.xlsx", rows)
    else:
        path = tmp_path / "people.csv"
        text = "".join(";".join(r) + "\r\n" for r in rows)
        path.write_bytes(text.encode(kind))
    client.force_login(compliance_admin)
    upload(client, path, consent_mode="NONE", consent_evidence="")
    job = ImportJob.objects.get()
    assert job.status == ImportJob.Status.VALIDATED
    assert job.rows_total == 2

    erase_contact(contact=zoe, actor=compliance_admin, reason="request")

    job.refresh_from_db()
    data = _read_upload(job)
    assert (job.file_format, job.encoding) == ("CSV", "utf-8-sig")
    text = data.decode("utf-8")
    assert "Größ" not in text
    assert "23456781" not in text
    assert "Françoise" in text  # the others stay, ready to import
    client.post(
        url("revalidate", job),
        {"map-0": "identity", "map-1": "first_name", "map-2": "last_name"},
    )
    client.post(url("confirm", job))
    assert set(
        Contact.objects.filter(erased_at__isnull=True).values_list(
            "first_name", flat=True
        )
    ) == {"Françoise"}


# --- the report is in line order ------------------------------------------------


def test_the_report_and_the_sample_are_in_line_order(
    write_csv, run_file, monkeypatch, make_contact
):
    erased = make_contact(phone="+4915199999999")
    erase_contact(contact=erased, actor=None, reason="request")
    monkeypatch.setattr(importer_module, "CHUNK_ROWS", 3)
    rows = [["phone", "consent"]]
    for n in range(30):
        if n % 5 == 4:
            rows.append([f"+49151234567{n - 1:02d}", "yes"])  # duplicate
        elif n % 7 == 3:
            rows.append(["+4915199999999", "yes"])  # erased (found when written)
        elif n % 6 == 5:
            rows.append([f"+49151234567{n:02d}", "maybe"])  # parse error
        else:
            rows.append([f"+49151234567{n:02d}", "yes"])
    job = run_file(write_csv(rows))
    with open(job.report_file, newline="", encoding="utf-8") as f:
        lines = [int(r[0]) for r in list(csv.reader(f))[1:]]
    kinds = {e["problem"].split(" ")[0] for e in job.sample_errors}
    assert {"duplicate", "this", "consent"} <= kinds  # all three kinds are there
    assert len(lines) == job.rows_bad > 6
    assert lines == sorted(lines)
    assert [e["line"] for e in job.sample_errors] == lines


# --- progress never goes back ---------------------------------------------------


def test_progress_never_goes_backwards_through_the_workers_phases(
    client,
    compliance_admin,
    write_csv,
    settings,
    monkeypatch,
    django_capture_on_commit_callbacks,
):
    """Check on a worker, wait, confirm, queue, import on a worker: the
    endpoint is read at every step and at every progress save."""
    settings.IMPORT_BACKGROUND_BYTES = 10  # every file goes to the worker
    monkeypatch.setattr(importer_module, "CHUNK_ROWS", 2000)
    # Files are read 64 KiB at a time: enough rows for several steps.
    rows = [["phone", "consent"]]
    rows += [[f"+4915123{n:06d}", "yes"] for n in range(16000)]
    client.force_login(compliance_admin)
    seen = []

    def read_endpoint():
        job = ImportJob.objects.get()
        seen.append(client.get(url("progress_json", job)).json())

    save = importer_module.Importer._save_progress

    def saving(self, final=False):
        save(self, final)
        read_endpoint()

    monkeypatch.setattr(importer_module.Importer, "_save_progress", saving)
    with django_capture_on_commit_callbacks(execute=False) as queued:
        upload(client, write_csv(rows))
    read_endpoint()  # queued for the check
    for callback in queued:
        callback()
    read_endpoint()  # checked, waiting for confirmation
    with django_capture_on_commit_callbacks(execute=False) as queued:
        client.post(url("confirm", ImportJob.objects.get()))
    read_endpoint()  # queued for the import
    queued_page = client.get(url("progress", ImportJob.objects.get()))
    assert "0 %" in queued_page.text
    for callback in queued:
        callback()
    read_endpoint()

    phases = [s["phase"] for s in seen]
    assert phases[0] == "checking"
    assert phases[-1] == "done"
    assert {"waiting for confirmation", "queued", "importing"} <= set(phases)
    for name in ("check_percent", "import_percent"):
        values = [s[name] for s in seen]
        assert values == sorted(values), (name, values)
    confirmed = phases.index("queued")
    percents = [s["percent"] for s in seen[confirmed:]]
    assert percents == sorted(percents), percents
    assert percents[0] == 0
    assert percents[-1] == 100
    assert len(set(percents)) > 3  # it moved in steps, not 0 then 100
    checking = [s["percent"] for s in seen[:confirmed]]
    assert checking == sorted(checking), checking


def test_the_progress_endpoint_needs_the_import_permission(
    client, compliance_admin, viewer, write_csv
):
    client.force_login(compliance_admin)
    upload(client, write_csv([["phone", "consent"], ["+4915123456789", "yes"]]))
    job = ImportJob.objects.get()
    data = client.get(url("progress_json", job)).json()
    assert data["phase"] == "waiting for confirmation"
    assert (data["check_percent"], data["import_percent"]) == (100, 0)
    client.force_login(viewer)
    assert client.get(url("progress_json", job)).status_code == 403


def test_the_command_reads_a_workbook_and_takes_an_encoding_and_a_date_order(
    tmp_path, db
):
    from django.core.management import call_command

    path = write_xlsx(
        tmp_path / "cmd.xlsx",
        [["phone", "consent", "consent_date"], [4915112345678, "Sí", "04/03/2026"]],
    )
    out = io.StringIO()
    call_command(
        "import_contacts",
        path,
        "--consent-column",
        "--evidence",
        EVIDENCE,
        "--date-order",
        "MDY",
        stdout=out,
    )
    assert "1 imported" in out.getvalue()
    assert ConsentEvent.objects.get().occurred_at == dt.datetime(
        2026, 4, 3, tzinfo=dt.UTC
    )
    assert os.path.exists(path)  # a file given to the command is left alone

    csv_path = tmp_path / "cmd.csv"
    csv_path.write_bytes(LEGACY_ROWS.encode("cp1250"))
    call_command("import_contacts", str(csv_path), "--encoding", "windows-1250")
    assert ImportJob.objects.latest("pk").encoding == "cp1250"
    with pytest.raises(ImportSetupError):
        create_import_job(
            path=str(csv_path),
            original_name="x",
            actor=None,
            target_list=None,
            default_channel="SMS",
            purpose="MARKETING",
            consent_mode="NONE",
            consent_source="IMPORT",
            consent_evidence="",
            encoding="klingon",
        )
