"""A compliance admin imports a CSV file through the admin in a real browser."""

import re

import pytest
from playwright.sync_api import expect

from contacts.models import Contact, ImportJob

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

ROWS = [
    ["phone", "first_name", "channel", "consent"],
    ["+14155550101", "Ann", "SMS", "yes"],
    ["not-a-number", "Bob", "SMS", "yes"],
    ["+14155550102", "Cid", "PIGEON", "yes"],
    ["+14155550101", "Ann again", "SMS", "yes"],
    ["", "Dan", "SMS", "yes"],
    ["+14155550103", "Eve", "", "no"],
]
EVIDENCE = "Web form 'Yes, text me offers', 2025-01-10"


@pytest.fixture(autouse=True)
def media_root(settings, tmp_path):
    settings.MEDIA_ROOT = str(tmp_path / "media")


def upload_file(page, path, *, evidence=EVIDENCE):
    page.set_input_files("#id_file", path)
    page.select_option("#id_target_list", label="Spring promo")
    page.check("input[name=consent_mode][value=COLUMN]")
    page.select_option("#id_consent_source", "FORM")
    page.fill("#id_consent_evidence", evidence)
    page.click("input[value='Upload and check']")


def test_compliance_admin_uploads_reviews_and_imports(
    page, live_server, login, screenshot, compliance_admin, make_list, write_csv
):
    spring = make_list("Spring promo")
    path = write_csv(ROWS)
    login("carla", next_url="/admin/contacts/importjob/")
    screenshot("01-imports-changelist")

    page.click(".object-tools .addlink")
    expect(page).to_have_url(re.compile(r"/admin/contacts/importjob/upload/$"))
    upload_file(page, path, evidence="")
    expect(page.locator(".errorlist.nonfield")).to_contain_text("evidence")
    expect(page.locator("#id_target_list")).to_have_value(str(spring.pk))
    screenshot("02-upload-missing-evidence")
    assert not ImportJob.objects.exists()

    upload_file(page, path)
    expect(page).to_have_url(re.compile(r"/review/$"))
    errors = page.locator("#row-errors tbody tr")
    expect(errors).to_have_count(4)
    for row, (line, reason) in enumerate(
        [
            ("3", "invalid SMS identity"),
            ("4", "unknown channel 'PIGEON'"),
            ("5", "duplicate in file"),
            ("6", "missing required value"),
        ]
    ):
        expect(errors.nth(row).locator("td").first).to_have_text(line)
        expect(errors.nth(row).locator("td").nth(1)).to_contain_text(reason)
    expect(page.locator(".report-link")).to_be_visible()
    screenshot("03-review")

    page.click("#import-button")
    expect(page).to_have_url(re.compile(r"/progress/$"))
    expect(page.locator("#percent")).to_have_text("100 %")
    expect(page.locator("#import-summary")).to_contain_text("Imported 2 rows")
    expect(page.locator("ul.messagelist")).to_contain_text("Imported 2 rows")
    screenshot("04-done")
    assert set(Contact.objects.values_list("first_name", flat=True)) == {"Ann", "Eve"}

    with page.expect_download() as download:
        page.click(".report-link")
    assert download.value.suggested_filename.endswith(".csv")


def test_changing_the_mapping_asks_for_a_revalidation(
    page, live_server, login, screenshot, compliance_admin, make_list, write_csv
):
    make_list("Spring promo")
    login("carla", next_url="/admin/contacts/importjob/upload/")
    upload_file(page, write_csv(ROWS))
    expect(page.locator("#import-button")).to_have_value("Import 2 good rows")

    page.locator("#mapping select").nth(2).select_option("ignore")  # channel
    expect(page.locator("#import-button")).to_be_disabled()
    expect(page.locator("#mapping-changed")).to_be_visible()
    screenshot("05-mapping-changed")

    page.click("input[value='Re-validate with this mapping']")
    expect(page.locator("#import-button")).to_have_value("Import 3 good rows")
    expect(page.locator("#row-errors tbody tr")).to_have_count(3)
    screenshot("06-revalidated")
