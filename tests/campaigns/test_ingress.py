"""Sinch's ingress queue: a scheduled campaign never floods it.

Sinch queues at most 500,000 messages per app and sends them on at its drain
rate. A scheduled campaign's batches count against SINCH_MAX_IN_FLIGHT_MESSAGES
for their send time: a campaign larger than the room left there goes in
waves (later send times, each once the previous one has drained), shown on
the launch page with the finish time and on the campaign page; other
scheduled campaigns share the room; a campaign that would take longer than
SINCH_INGRESS_MAX_SPREAD_HOURS, or its ttl, is not launched, and the page
says why. The caps are tiny here: batches of 3 (small_batches), a cap of 4
messages, Sinch draining 3 messages in 10 minutes.
"""

import html
import re
import time
from datetime import datetime, timedelta

import pytest
from django.urls import reverse
from django.utils import timezone
from django_q.models import Schedule

from campaigns import tasks
from campaigns.dispatch import control as controls
from campaigns.dispatch import drain, ingress, launching
from campaigns.dispatch.batch_request import BATCH_KEY
from campaigns.models import Batch, Campaign, Recipient
from tests.campaigns.test_late_optouts import opt_out

S, B, R = Campaign.Status, Batch.Status, Recipient.Status
MIN = timedelta(minutes=1)


@pytest.fixture
def tight(settings, small_batches):
    """Batches of 3; at most 4 messages at Sinch; 3 drained per 10 minutes."""
    settings.SINCH_MAX_IN_FLIGHT_MESSAGES = 4
    settings.SINCH_DRAIN_RATE_PER_S = 0.005
    settings.SINCH_INGRESS_MAX_SPREAD_HOURS = 24
    return settings


@pytest.fixture
def at_two():
    """A send time two hours ahead, on one of Sinch's 5-minute marks."""
    return ingress.slot_of(timezone.now() + timedelta(hours=2))


@pytest.fixture
def make_other(make_audience, make_template, make_campaign):
    """A second campaign to seven other people."""

    def make(name, send_at, prefix="+1415666"):
        template = make_template(name, "Hello ${first_name}")
        people = make_audience(f"{name} list", 7, phone=prefix + "{:04d}")
        return make_campaign(template, [people], name, checked=True, send_at=send_at)

    return make


def waves(plan_or_campaign) -> list[tuple[datetime, int]]:
    if isinstance(plan_or_campaign, Campaign):
        found = ingress.waves_of(plan_or_campaign)
    else:
        found = plan_or_campaign.waves
    return [(w.at, w.recipients) for w in found]


def fullest_queue(plans, rate: float) -> float:
    """The most messages waiting at Sinch at once, the waves of every plan
    arriving at their time and leaving at `rate` (computed here, apart from
    the code under test)."""
    arrivals: dict[datetime, int] = {}
    for plan in plans:
        for at, n in plan:
            arrivals[at] = arrivals.get(at, 0) + n
    queued, last, fullest = 0.0, None, 0.0
    for at in sorted(arrivals):
        if last is not None:
            queued = max(0.0, queued - rate * (at - last).total_seconds())
        queued += arrivals[at]
        fullest = max(fullest, queued)
        last = at
    return fullest


def test_a_scheduled_audience_larger_than_the_room_goes_in_waves(
    tight, make_launchable, at_two, launched_campaign, sinch, control
):
    campaign = make_launchable(send_at=at_two)
    plan = ingress.plan_for(campaign)
    # Room for 4: one batch of 3 per wave, each once Sinch sent the previous.
    assert waves(plan) == [
        (at_two, 3),
        (at_two + 10 * MIN, 3),
        (at_two + 20 * MIN, 1),
    ]
    assert plan.room == 4
    assert plan.problem == ""
    # The last message leaves Sinch's queue 200 s after the last wave.
    assert plan.finish_at == at_two + 20 * MIN + timedelta(seconds=200)

    launched_campaign(campaign)
    campaign.refresh_from_db()
    assert waves(campaign) == waves(plan)
    sent = {
        b.sequence: (b.status, b.wave_at, b.send_after)
        for b in Batch.objects.filter(campaign=campaign)
    }
    assert sent == {
        1: (B.ACCEPTED, at_two, at_two),
        2: (B.ACCEPTED, at_two + 10 * MIN, at_two + 10 * MIN),
        3: (B.ACCEPTED, at_two + 20 * MIN, at_two + 20 * MIN),
    }
    at_sinch = sorted((b["send_after"], b["size"]) for b in control.state()["batches"])
    assert [n for _, n in at_sinch] == [3, 3, 1]
    assert len({when for when, _ in at_sinch}) == 3


def test_an_audience_that_fits_goes_at_once_in_one_wave(
    tight, settings, make_launchable, at_two
):
    settings.SINCH_MAX_IN_FLIGHT_MESSAGES = 100
    plan = ingress.plan_for(make_launchable(send_at=at_two))
    assert waves(plan) == [(at_two, 7)]
    assert not plan.staggered
    assert plan.finish_at == at_two + timedelta(seconds=7 / 0.005)


def test_overlapping_scheduled_campaigns_share_the_room(
    tight, make_launchable, make_other, at_two, launched_campaign, sender, sinch
):
    first = launched_campaign(send_at=at_two)
    second = make_other("Summer", at_two)
    plan = ingress.plan_for(second)
    # The first campaign fills the queue at its send time: the second waits
    # until there is room for a batch, and never overfills it.
    assert plan.waves[0].at > at_two
    assert sum(n for _, n in waves(plan)) == 7
    assert fullest_queue([waves(first), waves(plan)], 0.005) <= 4
    # Without the first one the queue is free at the send time (a check that
    # the first one is what took the room): a cancelled campaign counts no more.
    controls.cancel(first, sender)
    assert waves(ingress.plan_for(second))[0] == (at_two, 3)


def test_a_campaign_sent_now_is_paced_by_the_in_flight_cap_not_waves(
    tight, make_launchable
):
    assert ingress.plan_for(make_launchable()) is None


def test_a_launch_that_would_take_too_long_is_refused_and_says_why(
    tight, make_launchable, at_two, sender
):
    tight.SINCH_INGRESS_MAX_SPREAD_HOURS = 0.25  # the third wave needs 20 minutes
    campaign = make_launchable(send_at=at_two)
    (problem,) = launching.launch_problems(campaign)
    assert "Sinch's queue has no room for this campaign in time" in problem
    assert "6 of 7 recipients would go within 0.25 hours" in problem
    assert "SINCH_MAX_IN_FLIGHT_MESSAGES" in problem
    with pytest.raises(launching.LaunchError):
        launching.launch(campaign, sender)
    campaign.refresh_from_db()
    assert campaign.status == S.DRAFT
    assert campaign.ingress_waves == []
    assert not Batch.objects.exists()


def test_a_ttl_shorter_than_the_waves_refuses_the_launch(
    tight, make_launchable, at_two
):
    campaign = make_launchable(send_at=at_two, ttl_seconds=15 * 60)
    (problem,) = launching.launch_problems(campaign)
    assert "within the campaign's ttl" in problem
    campaign.ttl_seconds = 3600
    assert launching.launch_problems(campaign) == []


def page_text(response) -> str:
    body = response.content.decode()
    body = re.sub(r"</?(strong|em|a|span|code)\b[^>]*>", "", body)
    return html.unescape(re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", body)).strip())


def test_the_launch_page_shows_the_waves_and_the_finish_time_then_the_campaign_page(
    tight,
    make_launchable,
    at_two,
    client,
    sender,
    sinch,
    django_capture_on_commit_callbacks,
):
    campaign = make_launchable(send_at=at_two)
    client.force_login(sender)
    launch_url = reverse("admin:campaigns_campaign_launch", args=[campaign.pk])
    page = page_text(client.get(launch_url))
    assert "In 3 waves." in page
    assert "at the send time there is room for 4" in page
    rows = [
        f"{n} {(at_two + k * MIN).strftime('%Y-%m-%d %H:%M')} UTC {people}"
        for n, k, people in ((1, 0, 3), (2, 10, 3), (3, 20, 1))
    ]
    for row in rows:
        assert row in page
    finish = at_two + 20 * MIN + timedelta(seconds=200)
    assert (
        f"Sinch should have sent the last of them by {finish:%Y-%m-%d %H:%M} UTC"
        in page
    )
    with django_capture_on_commit_callbacks(execute=True):
        launched = client.post(launch_url, follow=True)
    last = at_two + 20 * MIN
    assert (
        f"It goes in 3 waves (Sinch's queue), the first at "
        f"{at_two:%Y-%m-%d %H:%M} UTC, the last at {last:%Y-%m-%d %H:%M} UTC."
        in page_text(launched)
    )
    change = reverse("admin:campaigns_campaign_change", args=[campaign.pk])
    page = page_text(client.get(change))
    assert "Sent in 3 waves" in page
    for n, k, people in ((1, 0, 3), (2, 10, 3), (3, 20, 1)):
        assert f"{n} {(at_two + k * MIN):%Y-%m-%d %H:%M} UTC {people} 1" in page


def test_the_launch_page_shows_the_refusal(
    tight, make_launchable, at_two, client, sender
):
    tight.SINCH_INGRESS_MAX_SPREAD_HOURS = 0.25
    campaign = make_launchable(send_at=at_two)
    client.force_login(sender)
    launch_url = reverse("admin:campaigns_campaign_launch", args=[campaign.pk])
    page = page_text(client.get(launch_url))
    assert "This campaign cannot be launched yet" in page
    assert "Sinch's queue has no room for this campaign in time" in page
    assert 'id="launch-button"' not in client.get(launch_url).content.decode()


def test_later_waves_wait_here_until_their_own_send_time_is_near(
    tight, settings, make_launchable, launched_campaign, sinch, control
):
    settings.SINCH_SCHEDULE_AHEAD_HOURS = 1
    settings.SINCH_DRAIN_RATE_PER_S = 0.0025  # a batch of 3 drains in 20 minutes
    start = ingress.slot_of(timezone.now() + 50 * MIN)
    campaign = launched_campaign(send_at=start)
    first, second, third = Batch.objects.filter(campaign=campaign).order_by("sequence")
    assert (first.status, first.send_after) == (B.ACCEPTED, start)
    for batch, wave in ((second, start + 20 * MIN), (third, start + 40 * MIN)):
        assert (batch.status, batch.wave_at) == (B.PENDING, wave)
        assert batch.not_before == wave - timedelta(hours=1)
    releases = Schedule.objects.filter(
        func="campaigns.tasks.dispatch_campaign"
    ).values_list("next_run", flat=True)
    assert {second.not_before, third.not_before} <= set(releases)
    assert len(control.state()["batches"]) == 1
    # The second wave's hold passes: it goes with its own send time.
    Batch.objects.filter(pk=second.pk).update(not_before=timezone.now() - MIN)
    drain.run_dispatcher(campaign.pk)
    second.refresh_from_db()
    assert (second.status, second.send_after) == (B.ACCEPTED, start + 20 * MIN)
    third.refresh_from_db()
    assert third.status == B.PENDING


def test_a_full_queue_at_sinch_puts_the_batch_back_and_it_goes_once_later(
    small_batches, make_launchable, launched_campaign, sinch, control
):
    # Sinch's queue holds 4 messages and sends one per 1000 s.
    control.knobs(ingress_queue_limit=4, drain_rate=0.001, processing_delay_s=0)
    campaign = launched_campaign(make_launchable(), dispatch=False)
    drain.run_dispatcher(campaign.pk)
    first, second, third = Batch.objects.filter(campaign=campaign).order_by("sequence")
    assert (first.status, third.status) == (B.ACCEPTED, B.ACCEPTED)
    # The second did not fit: back to PENDING until Sinch says, not an attempt.
    assert second.status == B.PENDING
    assert "queue is full" in second.last_error
    assert "RESOURCE_EXHAUSTED" in second.last_error
    assert second.attempts == 0
    assert second.not_before > timezone.now() + timedelta(minutes=15)
    drain.run_dispatcher(campaign.pk)  # not due yet: not resent
    assert len(control.state()["batches"]) == 2
    # The queue drained (Sinch's Retry-After has passed): it goes, once.
    control.knobs(drain_rate=0)
    Batch.objects.filter(pk=second.pk).update(not_before=timezone.now() - MIN)
    drain.run_dispatcher(campaign.pk)
    second.refresh_from_db()
    assert (second.status, second.attempts) == (B.ACCEPTED, 1)
    keys = [b["meta_data"][BATCH_KEY] for b in control.state()["batches"]]
    assert sorted(keys) == sorted(
        Batch.objects.filter(campaign=campaign).values_list("metadata_key", flat=True)
    )
    assert Campaign.objects.get(pk=campaign.pk).status == S.SUBMITTED
    deadline = time.monotonic() + 10
    while len(control.state()["messages"]) < 7:
        assert time.monotonic() < deadline, "the simulator never sent them all"
        time.sleep(0.05)
    sent_to = [m["identity"] for m in control.state()["messages"]]
    assert len(sent_to) == len(set(sent_to)) == 7


def test_a_replacement_batch_keeps_its_waves_send_time(
    tight,
    make_launchable,
    at_two,
    launched_campaign,
    sinch,
    control,
    django_capture_on_commit_callbacks,
):
    campaign = launched_campaign(send_at=at_two)
    second = Batch.objects.get(campaign=campaign, sequence=2)
    leaver = Recipient.objects.filter(batch=second).first().identity
    opt_out(leaver)
    with django_capture_on_commit_callbacks(execute=True):
        tasks.tick()
    second.refresh_from_db()
    assert second.status == B.CANCELLED
    new = Batch.objects.get(replaces=second)
    assert (new.status, new.size) == (B.ACCEPTED, 2)
    assert new.wave_at == new.send_after == at_two + 10 * MIN
    campaign.refresh_from_db()
    assert [n for _, n in waves(campaign)] == [3, 3, 1]  # the plan is unchanged


def test_a_batch_beyond_the_plan_gets_the_next_slot_with_room(
    tight, make_launchable, at_two, launched_campaign
):
    # The audience grew between the pre-send check and the freeze.
    campaign = launched_campaign(send_at=at_two, dispatch=False)
    assert [n for _, n in waves(campaign)] == [3, 3, 1]
    # A fourth batch: the last wave (1 message) has room for it beside.
    assert ingress.wave_for(campaign, 4) == at_two + 20 * MIN
    assert waves(Campaign.objects.get(pk=campaign.pk))[-1] == (
        at_two + 20 * MIN,
        4,
    )
    # A fifth: the queue is full then, it goes once Sinch sent those.
    fifth = ingress.wave_for(campaign, 5)
    assert fifth > at_two + 20 * MIN
    stored = waves(Campaign.objects.get(pk=campaign.pk))
    assert stored[-1] == (fifth, 3)
    assert fullest_queue([stored], 0.005) <= 4
