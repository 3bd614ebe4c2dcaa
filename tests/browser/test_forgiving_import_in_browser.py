"""A compliance admin imports an Excel workbook and a Windows-1252 CSV file in
a real browser: the review page says how the file was read, and the names
come out right."""

import datetime as dt
import re
from pathlib import Path

import openpyxl
import pytest
from playwright.sync_api import expect

from contacts.models import ChannelIdentity, ConsentEvent, Contact, ImportJob

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

EVIDENCE = "Trade fair sign-up sheet, 2026-01-10"
SCREENS = Path("/tmp/screens/imports")


@pytest.fixture(autouse=True)
def media_root(settings, tmp_path):
    settings.MEDIA_ROOT = str(tmp_path / "media")


@pytest.fixture
def shoot(page):
    """Screenshots into /tmp/screens/imports/, at the size given."""
    SCREENS.mkdir(parents=True, exist_ok=True)

    def take(name, width=1366, height=768):
        page.set_viewport_size({"width": width, "height": height})
        page.screenshot(path=str(SCREENS / f"{name}.png"), full_page=True)

    return take


def upload(page, path, *, consent_mode="COLUMN", date_order=""):
    page.set_input_files("#id_file", str(path))
    page.check(f"input[name=consent_mode][value={consent_mode}]")
    if date_order:
        page.select_option("#id_date_order", date_order)
    page.fill("#id_consent_evidence", EVIDENCE)
    page.click("input[value='Upload and check']")


def test_an_excel_workbook_is_imported_with_its_numbers_and_dates(
    page, live_server, login, shoot, compliance_admin, tmp_path
):
    book = openpyxl.Workbook()
    sheet = book.active
    sheet.append(["Mobile", "First name", "Last name", "Opt-in", "Opt-in date"])
    sheet.append([4915112345678, "Jürgen", "Müller", "Ja", dt.date(2026, 1, 10)])
    sheet.append([33612345678.0, "Françoise", "Léger", "oui", "10/01/2026"])
    sheet.append([447911123456, "Siân", "Evans", "No", "12/31/2025"])
    sheet.append(["not a phone", "Bad", "Row", "yes", None])
    sheet["A2"].number_format = "0.00E+00"  # Excel shows 4.92E+12
    path = tmp_path / "trade-fair.xlsx"
    book.save(path)

    login("carla", next_url="/admin/contacts/importjob/upload/")
    upload(page, path, date_order="DMY")
    expect(page).to_have_url(re.compile(r"/review/$"))
    expect(page.locator(".options")).to_contain_text(
        "Excel workbook: the first sheet is read"
    )
    sample = page.locator("#sample-rows")
    expect(sample).to_contain_text("4915112345678")
    expect(sample).to_contain_text("Françoise")
    expect(sample).to_contain_text("2026-01-10")
    errors = page.locator("#row-errors tbody tr")
    expect(errors).to_have_count(2)
    expect(errors.nth(0).locator("td").first).to_have_text("4")  # Excel's row
    expect(errors.nth(0)).to_contain_text("can only be read month first")
    expect(errors.nth(1).locator("td").first).to_have_text("5")
    expect(errors.nth(1)).to_contain_text("invalid SMS identity 'not a phone'")
    shoot("01-xlsx-review")

    page.click("#import-button")
    expect(page).to_have_url(re.compile(r"/progress/$"))
    expect(page.locator("#import-summary")).to_contain_text("Imported 2 rows")
    shoot("02-xlsx-done")
    assert set(Contact.objects.values_list("first_name", "last_name")) == {
        ("Jürgen", "Müller"),
        ("Françoise", "Léger"),
    }
    assert set(ChannelIdentity.objects.values_list("identity", flat=True)) == {
        "+4915112345678",
        "+33612345678",
    }
    dates = set(ConsentEvent.objects.values_list("occurred_at", flat=True))
    assert dates == {dt.datetime(2026, 1, 10, tzinfo=dt.UTC)}


def test_a_windows_1252_csv_is_detected_and_reads_right(
    page, live_server, login, shoot, compliance_admin, tmp_path
):
    text = (
        "phone;first_name;last_name;consent\r\n"
        "+4915123456789;Françoise;Müller;oui\r\n"
        "+4915123456780;Jürgen;O\u2019Brien \u2013 Groß;ja\r\n"
        "+4915123456781;Renée;Dupont;peut-être\r\n"
    )
    path = tmp_path / "export-windows.csv"
    path.write_bytes(text.encode("cp1252"))

    login("carla", next_url="/admin/contacts/importjob/upload/")
    upload(page, path)
    expect(page).to_have_url(re.compile(r"/review/$"))
    expect(page.locator("#encoding-shown")).to_have_text(
        "Windows-1252 (Western European) (detected)"
    )
    sample = page.locator("#sample-rows")
    expect(sample).to_contain_text("Müller")
    expect(sample).to_contain_text("Françoise")
    expect(sample).to_contain_text("O\u2019Brien \u2013 Groß")
    expect(page.locator("#id_encoding")).to_have_value("cp1252")
    expect(page.locator("#row-errors")).to_contain_text(
        "consent value 'peut-être' not understood"
    )
    shoot("03-cp1252-review")
    shoot("03-cp1252-review-phone", width=390, height=844)
    page.set_viewport_size({"width": 1366, "height": 768})

    # Choosing a wrong encoding shows the damage before anything is imported.
    page.select_option("#id_encoding", "cp1250")
    expect(page.locator("#import-button")).to_be_disabled()
    page.click("input[value='Re-validate with this mapping']")
    expect(page.locator("#encoding-shown")).to_contain_text("(chosen by you)")
    expect(page.locator("#sample-rows")).to_contain_text("peut-\u0119tre")  # ê
    shoot("04-cp1250-chosen")
    page.select_option("#id_encoding", "cp1252")
    page.click("input[value='Re-validate with this mapping']")
    expect(page.locator("#sample-rows")).to_contain_text("Groß")

    page.click("#import-button")
    expect(page.locator("#import-summary")).to_contain_text("Imported 2 rows")
    assert set(Contact.objects.values_list("first_name", "last_name")) == {
        ("Françoise", "Müller"),
        ("Jürgen", "O\u2019Brien \u2013 Groß"),
    }
    assert ImportJob.objects.get().encoding == "cp1252"


def test_a_png_is_named_and_a_pending_import_is_discarded(
    page, live_server, login, shoot, compliance_admin, tmp_path
):
    png = tmp_path / "contacts.csv"
    png.write_bytes(b"\x89PNG\r\n\x1a\n" + b"\0" * 64)
    login("carla", next_url="/admin/contacts/importjob/upload/")
    upload(page, png)
    expect(page.locator(".errorlist.nonfield")).to_contain_text(
        "This is a PNG image, not a CSV file"
    )
    shoot("05-png-refused")

    csv_file = tmp_path / "people.csv"
    csv_file.write_text("phone,consent\r\n+4915123456789,yes\r\n")
    upload(page, csv_file)
    expect(page).to_have_url(re.compile(r"/review/$"))
    page.click("#discard-link")
    expect(page.locator("#content-main")).to_contain_text(
        "The uploaded file and its validation report are deleted"
    )
    shoot("06-discard-confirm")
    page.click("#confirm-discard")
    expect(page.locator("ul.messagelist")).to_contain_text("was discarded")
    expect(page.locator("#result_list")).to_contain_text("discarded")
    shoot("07-discarded-in-list")
    assert ImportJob.objects.get().status == ImportJob.Status.DISCARDED
    assert not Contact.objects.exists()
