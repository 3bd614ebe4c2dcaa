"""Login throttling in a real browser: the third wrong password shows the
lock-out page in the admin's look, saying when to try again, and the right
password is then refused too."""

import pytest
from playwright.sync_api import expect

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_too_many_wrong_passwords_show_when_to_try_again(
    page, live_server, superuser, settings
):
    settings.AXES_FAILURE_LIMIT = 3

    def attempt(password: str):
        page.goto(f"{live_server.url}/admin/login/?next=/admin/")
        page.fill("#id_username", "root")
        page.fill("#id_password", password)
        page.click("input[type=submit]")

    for _ in range(2):
        attempt("wrong")
        expect(page.locator(".errornote")).to_contain_text("correct username")
    attempt("wrong")
    expect(page.locator("#locked-out")).to_have_text(
        "Too many failed logins: logging in is paused."
    )
    expect(page.locator("#try-again")).to_contain_text("Try again in 15 minutes")
    expect(page.locator("#site-name")).to_have_text("Sinch campaign manager")
    attempt("pw")
    expect(page.locator("#locked-out")).to_be_visible()
    page.screenshot(path="/tmp/screens/login-locked-out.png")
