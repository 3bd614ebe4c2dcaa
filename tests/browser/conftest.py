"""Browser fixtures: Debian's headless Chromium driven by Playwright.

The browser is never downloaded: Playwright launches the `chromium` found on
PATH. Without it the browser tests are skipped, or fail when CI is set.
"""

import os
import shutil
from pathlib import Path

import pytest

CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
SCREENS = Path("/tmp/screens")


@pytest.fixture(scope="session")
def browser():
    executable = shutil.which("chromium")
    if not executable:
        reason = "Chromium is not installed (apt-get install -y chromium)."
        if os.environ.get("CI"):
            pytest.fail(f"CI is set but {reason}", pytrace=False)
        pytest.skip(reason)
    from playwright.sync_api import sync_playwright

    # Playwright's sync API runs an event loop in the test thread; Django
    # refuses ORM calls from such a thread unless told it is safe, which it is
    # here (one thread drives the browser, the live server has its own).
    previous = os.environ.get("DJANGO_ALLOW_ASYNC_UNSAFE")
    os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"
    try:
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(
                executable_path=executable, headless=True, args=CHROMIUM_ARGS
            )
            yield browser
            browser.close()
            # While the event loop runs, this thread's database connections
            # are kept apart from its usual ones (asgiref's Local, by
            # context): every test after the first browser test used them.
            # Closed here: left to the garbage collector, one sometimes
            # outlived the run, and PostgreSQL's test database could not be
            # dropped ("being accessed by other users").
            from django.db import connections

            connections.close_all()
    finally:
        if previous is None:
            del os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"]
        else:
            os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = previous


@pytest.fixture
def page(browser):
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    page = context.new_page()
    page.set_default_timeout(15_000)
    yield page
    context.close()


@pytest.fixture
def screenshot(page):
    """Save a full-page screenshot as /tmp/screens/<name>.png (outside the repo)."""
    SCREENS.mkdir(parents=True, exist_ok=True)

    def shoot(name: str) -> None:
        page.screenshot(path=str(SCREENS / f"{name}.png"), full_page=True)

    return shoot


@pytest.fixture
def login(page, live_server):
    """Log in through the real admin login page."""

    def log_in(username: str, password: str = "pw", next_url: str = "/admin/"):
        page.goto(f"{live_server.url}/admin/login/?next={next_url}")
        page.fill("#id_username", username)
        page.fill("#id_password", password)
        page.click("input[type=submit]")
        page.wait_for_url(f"{live_server.url}{next_url}")

    return log_in
