"""A compliance admin replaces a contact's number in a real browser: the
stored number cannot be typed over, "Replace number" adds the new one without
consent and retires the old one, which keeps its opt-in history."""

import re

import pytest
from playwright.sync_api import expect

from contacts.models import AuditEvent

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_compliance_admin_replaces_a_number(
    page, live_server, login, screenshot, compliance_admin, make_contact
):
    person = make_contact("+12012501005", consent="OPTED_IN", first_name="Ada")
    login("carla", next_url=f"/admin/contacts/contact/{person.pk}/change/")

    # The stored number is shown, not offered as an input to type over.
    expect(page.locator("#id_identities-0-identity")).to_have_count(0)
    expect(page.locator("#identities-group")).to_contain_text("+12012501005")
    screenshot("replace-01-contact-page")

    page.get_by_role("link", name="Replace number").click()
    expect(page).to_have_url(re.compile(r"/identities/\d+/replace/$"))
    page.fill("#id_new_identity", "(201) 250-9999")
    page.fill("#id_note", "Customer called: new phone")
    screenshot("replace-02-form")
    page.click("input[value='Replace number']")

    expect(page).to_have_url(re.compile(rf"/contact/{person.pk}/change/$"))
    expect(page.locator(".messagelist")).to_contain_text("no consent yet")
    rows = page.locator("#identities-group tbody tr.has_original")
    expect(rows).to_have_count(2)
    expect(page.locator("#identities-group")).to_contain_text("+12012509999")
    screenshot("replace-03-done")

    numbers = dict(person.identities.values_list("identity", "marketing_consent"))
    assert numbers == {"+12012501005": "OPTED_IN", "+12012509999": "UNKNOWN"}
    assert person.identities.get(identity="+12012501005").retired_at is not None
    assert AuditEvent.objects.filter(action=AuditEvent.Action.IDENTITY).count() == 1
