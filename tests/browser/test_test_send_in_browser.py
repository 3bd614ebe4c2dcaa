"""A marketer sends a test of a campaign to the seed list, in a real browser.

Issue 4, item 5: from the campaign's change page, the "Send test" page shows
who on the seed list will receive the test (with their own message) and who is
excluded and why; the send goes as one real batch to a real in-process Sinch
simulator, and the page reports it and lists it with its Sinch batch id.
Issue 15: the list must first be marked as a seed list, by a Sender (or a
Compliance user), which the marketer cannot do.
"""

import re
import time

import pytest
from playwright.sync_api import expect

from campaigns.models import Batch
from contacts.models import ContactList

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def campaign(make_template, make_audience, make_campaign):
    template = make_template(
        "Spring sale", "Hi ${first_name}, spring sale starts Monday!"
    )
    seed = make_audience(
        "Seed: marketing team",
        {"+14155550201": "Anna", "+14155550202": "Ben"},
        opted_out={"+14155550203": "Olga"},
    )
    # The campaign's real audience: never reached by a test send.
    customers = make_audience("Customers", {"+14155550999": "Carl"})
    return make_campaign(
        template,
        [customers],
        "Spring",
        seed_list=seed,
        ttl_seconds=3600,
        sms_sender="MyShop",
    )


def messages_at_sinch(control, batch_id: str, count: int) -> list[dict]:
    """The messages the simulator generated for the batch (waits for them)."""
    deadline = time.monotonic() + 5
    while True:
        found = control.state(batch_id=batch_id)["messages"]
        if len(found) >= count:
            return found
        assert time.monotonic() < deadline, f"only {len(found)} messages: {found}"
        time.sleep(0.02)


def test_a_marketer_sends_a_test_to_the_seed_list_and_sees_the_batch(
    page, live_server, login, screenshot, marketer, sender, sinch, control, campaign
):
    # Not yet a seed list: the marketer is told who can mark it.
    test_send_url = f"/admin/campaigns/campaign/{campaign.pk}/test-send/"
    login("mark", next_url=test_send_url)
    expect(page.locator("#content")).to_contain_text("is not marked as a seed list")
    expect(page.locator("input[type=submit][value^='Send test']")).to_have_count(0)
    seed = campaign.seed_list
    list_url = f"/admin/contacts/contactlist/{seed.pk}/change/"
    page.goto(f"{live_server.url}{list_url}")
    expect(page.locator("input#id_is_seed_list")).to_have_count(0)

    # A Sender marks it; the list shows who did.
    page.context.clear_cookies()
    login("sandra", next_url=list_url)
    page.check("input#id_is_seed_list")
    with page.expect_navigation():
        page.click("input[name=_save]")
    row = page.locator("#result_list tbody tr", has_text="Seed: marketing team")
    expect(row).to_contain_text("sandra")
    assert ContactList.objects.get(pk=seed.pk).seed_marked_by == sender

    page.context.clear_cookies()
    change_url = f"/admin/campaigns/campaign/{campaign.pk}/change/"
    login("mark", next_url=change_url)

    # From the campaign's change page to its test send page.
    page.click(".object-tools a:text-is('Send test')")
    expect(page).to_have_url(re.compile(rf"/campaign/{campaign.pk}/test-send/$"))
    expect(page.locator("h1")).to_contain_text("Send test: Spring")

    # Who will receive it, with their own message; who is excluded and why.
    summary = page.locator("#test-send-summary")
    expect(summary).to_contain_text("Seed: marketing team")
    expect(summary).to_contain_text("3 members")
    expect(summary).to_contain_text("2 will receive it")
    expect(summary).to_contain_text("1 excluded")
    expect(page.get_by_role("heading", name="Will receive test 1")).to_be_visible()
    recipients = page.locator("#test-send-recipients tbody tr")
    expect(recipients).to_have_count(2)
    anna = recipients.filter(has_text="Anna")
    expect(anna).to_contain_text("+14155550201")
    expect(anna.locator(".test-send-text")).to_have_text(
        "Hi Anna, spring sale starts Monday!"
    )
    ben = recipients.filter(has_text="Ben")
    expect(ben).to_contain_text("+14155550202")
    expect(ben.locator(".test-send-text")).to_have_text(
        "Hi Ben, spring sale starts Monday!"
    )
    expect(
        page.get_by_role("heading", name="Excluded from test 1 (not sent)")
    ).to_be_visible()
    excluded = page.locator("#test-send-excluded tbody tr")
    expect(excluded).to_have_count(1)
    expect(excluded).to_contain_text("Olga")
    expect(excluded.locator("td").last).to_have_text("opted out")
    expect(page.locator("#content")).not_to_contain_text("Carl")
    expect(page.locator("#test-send-batches")).to_have_count(0)
    send = page.locator("input[type=submit][value='Send test 1 to 2 recipients now']")
    expect(send).to_be_visible()
    screenshot("test-send-01-confirm")
    assert control.state()["batches"] == []  # nothing leaves before the click

    with page.expect_navigation():
        send.click()
    expect(page).to_have_url(re.compile(rf"/campaign/{campaign.pk}/test-send/$"))

    # Sinch received exactly one batch, for the two opted-in colleagues.
    [remote] = control.state()["batches"]
    batch_id = remote["batch_id"]
    assert remote["size"] == 2
    sent = messages_at_sinch(control, batch_id, 2)
    assert sorted(m["identity"] for m in sent) == ["+14155550201", "+14155550202"]
    assert sorted(m["rendered"]["text_message"]["text"] for m in sent) == [
        "Hi Anna, spring sale starts Monday!",
        "Hi Ben, spring sale starts Monday!",
    ]
    batch = Batch.objects.get(campaign=campaign)
    assert (batch.is_test, batch.sinch_batch_id, batch.size) == (True, batch_id, 2)

    # The page says so, and lists the test batch with its Sinch batch id.
    success = page.locator("ul.messagelist li.success")
    expect(success).to_contain_text(f"Test send 1 accepted by Sinch (batch {batch_id})")
    expect(success).to_contain_text("2 recipients")
    expect(success).to_contain_text("1 excluded")
    rows = page.locator("#test-send-batches tbody tr")
    expect(rows).to_have_count(1)
    cells = rows.first.locator("td")
    expect(cells.nth(0)).to_have_text("1")
    expect(cells.nth(2)).to_have_text("mark")
    expect(cells.nth(3)).to_have_text("Accepted by Sinch")
    expect(cells.nth(4)).to_have_text(batch_id)
    expect(cells.nth(5)).to_have_text("2")
    expect(cells.nth(6)).to_have_text("1")
    expect(page.locator("#test-send-batches + p.help")).to_contain_text(
        "“Accepted by Sinch” means Sinch took the batch"
    )
    # The lists now describe the next test, number 2; nothing more went out.
    expect(page.get_by_role("heading", name="Will receive test 2")).to_be_visible()
    expect(
        page.locator("input[type=submit][value='Send test 2 to 2 recipients now']")
    ).to_be_visible()
    screenshot("test-send-02-sent")
    assert len(control.state()["batches"]) == 1
