"""A STOP after the launch keeps the person out of a batch scheduled at Sinch.

Issue 11, acceptance: a sender launches a campaign scheduled at Sinch for
tomorrow; Ben replies STOP through the simulator (its inbound endpoint, which
calls our webhook). The periodic tick finds the scheduled batch holding
someone who opted out and asks Sinch to cancel it; the campaign page shows
the batch being replaced while Sinch has not confirmed (the simulator, like
Sinch, cancels asynchronously: here after ten simulated minutes). Once the
simulator's cancel takes effect, its CANCELLED callback settles the batch and
a replacement without Ben is scheduled for the same time. When the
simulator's clock passes the send time, everyone else got the message and
Ben did not; the dashboard counts him excluded, opted out after launch.

The live server runs in this process with django-q2 in sync mode: webhook
events are processed, and dispatch runs, inside the requests.
"""

import re
import time
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from django.utils import timezone
from playwright.sync_api import expect

from campaigns import tasks
from campaigns.models import Batch, WebhookEvent
from contacts.models import ChannelIdentity, ConsentState

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

ZONE = "America/New_York"
PEOPLE = {
    "+14155550401": "Anna",
    "+14155550402": "Ben",
    "+14155550403": "Cleo",
    "+14155550404": "Dan",
}
BEN = "+14155550402"


@pytest.fixture
def send_time(settings):
    """Tomorrow at 09:00 in New York: at most 33 hours ahead, so batches are
    handed to Sinch at the launch when they go up to 48 hours ahead."""
    settings.SINCH_SCHEDULE_AHEAD_HOURS = 48
    local = timezone.now().astimezone(ZoneInfo(ZONE))
    tomorrow = (local + timedelta(days=1)).replace(
        hour=9, minute=0, second=0, microsecond=0
    )
    return tomorrow.astimezone(ZoneInfo("UTC"))


@pytest.fixture
def campaign(make_template, make_audience, make_campaign, send_time):
    template = make_template("Spring sale", "Hi ${first_name}, spring sale!")
    customers = make_audience("Customers", PEOPLE)
    return make_campaign(
        template,
        [customers],
        "Spring",
        checked=True,
        send_at=send_time,
        send_time_zone=ZONE,
    )


def wait_until(condition, timeout: float = 15.0, what: str = "") -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.1)


def quiet(control) -> None:
    """Wait until the simulator has delivered its callbacks and we processed
    them: the test then reads settled figures."""
    # First over HTTP only: every callback answered and none new for 0.5 s.
    settled = {"at": time.monotonic(), "seen": None}

    def callbacks_settled() -> bool:
        state = control.state()
        seen = (state["callback_backlog"], sorted(state["counters"].items()))
        if seen != settled["seen"]:
            settled.update(at=time.monotonic(), seen=seen)
        return seen[0] == 0 and time.monotonic() - settled["at"] >= 0.5

    wait_until(callbacks_settled, what="callbacks to be delivered")
    wait_until(
        lambda: not WebhookEvent.objects.filter(state=WebhookEvent.State.NEW).exists(),
        what="callbacks to be processed",
    )
    time.sleep(0.2)


def test_a_stop_after_launch_keeps_the_person_out_of_the_scheduled_batch(
    page, live_server, login, screenshot, sender, sinch, control, campaign, send_time
):
    control.knobs(webhook_url=f"{live_server.url}/webhooks/sinch", cancel_delay_s=600)
    change_url = f"/admin/campaigns/campaign/{campaign.pk}/change/"
    login("sandra", next_url=change_url)

    page.click("#launch-link")
    when = page.locator("#launch-send-time")
    expect(when).to_contain_text("scheduled at Sinch")
    expect(page.locator(".launch")).to_contain_text(
        "replaced by a batch without them for the same send time"
    )
    with page.expect_navigation():
        page.locator("#launch-button").click()
    expect(page.locator("#dispatch-batch-counts")).to_contain_text(
        "1 scheduled at Sinch (4 messages)"
    )
    (original,) = Batch.objects.filter(campaign=campaign)
    assert control.state()["batches"][0]["status"] == "SCHEDULED"
    screenshot("late-optout-01-scheduled")

    # Ben replies STOP: the simulator calls our webhook with his message.
    control.post("inbound", identity=BEN, text="STOP")
    ben = ChannelIdentity.objects.get(identity=BEN)
    wait_until(
        lambda: (
            ChannelIdentity.objects.get(pk=ben.pk).marketing_consent
            == ConsentState.OPTED_OUT
        ),
        what="Ben's STOP to be recorded",
    )
    quiet(control)

    # The periodic tick: the batch is to be replaced; Sinch has not confirmed.
    tasks.tick()
    page.reload()
    expect(page.locator("#dispatch-replacements")).to_contain_text(
        "Batch 1 being replaced: 1 person opted out after launch"
    )
    expect(page.locator("#dispatch-batches tbody tr").first).to_contain_text(
        "cancellation requested at Sinch, not yet confirmed"
    )
    assert len(control.state()["batches"]) == 1  # nothing resubmitted yet
    screenshot("late-optout-02-being-replaced")

    # Sinch's cancel takes effect; its CANCELLED callback settles the batch
    # and the replacement goes to Sinch for the same send time.
    control.post("advance", seconds=601)
    wait_until(
        lambda: Batch.objects.filter(replaces=original, status="ACCEPTED").exists(),
        what="the replacement batch to be accepted",
    )
    quiet(control)
    replacement = Batch.objects.get(replaces=original)
    remote = {b["batch_id"]: b for b in control.state()["batches"]}
    assert remote[original.sinch_batch_id]["status"] == "CANCELLED"
    assert remote[replacement.sinch_batch_id]["status"] == "SCHEDULED"
    assert remote[replacement.sinch_batch_id]["size"] == 3
    assert (
        datetime.fromisoformat(remote[replacement.sinch_batch_id]["send_after"])
        == original.send_after
    )
    page.reload()
    expect(page.locator("#dispatch-replacements")).to_contain_text(
        "Batch 1 replaced by batch 2: 1 person opted out after launch"
    )
    expect(page.locator("#dispatch-batch-counts")).to_contain_text(
        "1 scheduled at Sinch (3 messages)"
    )
    screenshot("late-optout-03-replaced")

    # The simulator's clock passes the send time: everyone else, not Ben.
    ahead = (send_time - timezone.now()).total_seconds()
    control.post("advance", seconds=ahead + 600)
    wait_until(
        lambda: len(control.state()["messages"]) >= 3,
        what="the simulator to send the messages",
    )
    time.sleep(0.5)  # a stray fourth message would show by now
    sent = {"+" + m["identity"].lstrip("+") for m in control.state()["messages"]}
    assert sent == set(PEOPLE) - {BEN}
    quiet(control)

    # The dashboard counts Ben excluded: opted out after launch.
    page.goto(f"{live_server.url}/admin/campaigns/campaign/{campaign.pk}/dashboard/")
    row = page.locator("#exclusion-table tbody tr", has_text="after launch")
    expect(row).to_have_count(1)
    expect(row.locator("td").first).to_have_text(re.compile("^Opted out after launch$"))
    expect(row.locator("td").nth(1)).to_have_text("1")
    screenshot("late-optout-04-dashboard")
