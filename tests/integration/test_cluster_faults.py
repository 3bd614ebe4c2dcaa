"""Dispatch faults with a real django-q2 cluster: killed workers, a cluster
down across the send time, a release schedule firing after a cancel.

Each test runs `manage.py qcluster` (ORM broker, or Redis when REDIS_URL is
set) on a database of its own against the simulator (see conftest.py). The
periodic tick fires when a test says time has passed (`driver tick`: the tick
is made due and django-q2's scheduler makes its pass, as the cluster does
every 30 s).
"""

import json
import re
import time
import warnings
from datetime import UTC, datetime, timedelta

import pytest

from campaigns.dispatch.batch_request import BATCH_KEY

pytestmark = pytest.mark.integration


def _now() -> datetime:
    return datetime.now(UTC)


def _wait_until(moment: datetime) -> None:
    """Let the wall clock pass `moment` (a few seconds at most)."""
    delay = (moment - _now()).total_seconds()
    assert delay < 30, f"{moment} is too far away for a test"
    if delay > 0:
        time.sleep(delay + 0.2)


def _body(request) -> dict:
    return json.loads(request.body)


def _settled(stack, *, queued_loops: int) -> int:
    """Wait until every drain loop started so far has run; how many ran.

    The loops are the `queued_loops` known to be queued, plus those each
    tick restarted (it says how many campaigns, each DISPATCH_CONCURRENCY=2).
    """

    def expected() -> int:
        restarted = 0
        for ok, result in stack.results("tick"):
            assert ok, result
            said = re.search(r"(\d+) campaigns? restarted", result)
            assert said, f"the tick no longer says what it restarted: {result!r}"
            restarted += int(said[1])
        return queued_loops + 2 * restarted

    def done():
        loops = stack.results("dispatch_campaign")
        assert all(ok for ok, _ in loops), loops
        return len(loops) >= expected() and len(loops)

    return stack.wait(done, "every drain loop to finish")


def test_a_worker_killed_after_sinch_accepted_its_batch_leaves_exactly_one_batch(
    stack,
):
    # Sinch processes the batch but answers late: the worker is killed while
    # it waits for the answer, so the acceptance is never committed.
    stack.sim.set_knobs({"timeout_ratio": 1, "timeout_s": 120})
    cluster = stack.start_cluster(DISPATCH_CLAIM_LEASE_S=2)
    campaign = stack.driver("launch", "--contacts", "3")["campaign"]
    stack.wait(lambda: stack.sim.state.batches, "Sinch to have the batch")
    [(posted_at, _)] = stack.recorder.posts()
    worker = stack.wait(
        lambda: cluster.talking_to(stack.sim_port), "the worker waiting for Sinch"
    )
    assert len(worker) == 1
    worker[0].kill()
    worker[0].wait(10)
    stack.sim.set_knobs({"timeout_ratio": 0})
    [batch] = stack.batches(campaign)
    assert batch["status"] == "SUBMITTING"  # no outcome was recorded
    assert batch["sinch_batch_id"] == ""

    # The claim's lease runs out; the next tick looks the batch up at Sinch.
    time.sleep(max(0.0, posted_at + 2.2 - time.monotonic()))
    stack.driver("tick")
    stack.wait(
        lambda: stack.batches(campaign)[0]["status"] == "ACCEPTED",
        "the batch to be reconciled",
    )

    assert len(stack.recorder.posts()) == 1  # looked up, not sent again
    assert len(stack.recorder.lookups()) >= 1
    [at_sinch] = stack.sim.state.batches.values()
    [batch] = stack.batches(campaign)
    assert batch["sinch_batch_id"] == at_sinch.batch_id
    assert at_sinch.metadata[BATCH_KEY] == batch["metadata_key"]
    assert stack.recipient_statuses(campaign) == {"SUBMITTED": 3}
    stack.wait(
        lambda: stack.campaign(campaign)["status"] == "SUBMITTED",
        "the campaign to be submitted",
    )
    assert cluster.process.poll() is None  # the cluster lived on


def test_a_worker_killed_before_sinch_got_its_batch_submits_it_once_after_the_grace(
    stack,
):
    campaign = stack.driver("launch", "--contacts", "3")["campaign"]
    # No request slot is ever free: the worker has claimed the batch and waits
    # for a slot, before any call to Sinch, when its machine dies.
    first = stack.start_cluster(SINCH_MAX_REQUESTS_PER_S=0)
    stack.wait(
        lambda: stack.batches(campaign)[0]["status"] == "SUBMITTING",
        "a worker to claim the batch",
    )
    claimed_by = time.monotonic()
    first.kill()
    assert stack.recorder.posts() == []

    stack.start_cluster(DISPATCH_CLAIM_LEASE_S=1, DISPATCH_UNCERTAIN_GRACE_S=3)
    # The claim must be older than the 1 s lease when the tick looks at it.
    time.sleep(max(0.0, claimed_by + 1.2 - time.monotonic()))
    stack.driver("tick")
    stack.wait(lambda: stack.results("tick"), "the tick")
    [batch] = stack.batches(campaign)
    assert batch["status"] == "UNCERTAIN"  # looked up, not found, not resent
    [(looked_up_at, lookup)] = stack.recorder.lookups()
    assert lookup.query["metadataValue"] == [batch["metadata_key"]]
    assert stack.recorder.posts() == []

    # After the grace period, the next tick submits it again: once.
    time.sleep(max(0.0, looked_up_at + 3.2 - time.monotonic()))
    stack.driver("tick")
    stack.wait(
        lambda: stack.batches(campaign)[0]["status"] == "ACCEPTED",
        "the batch to be submitted again",
    )
    _settled(stack, queued_loops=0)

    posts = stack.recorder.posts()
    assert len(posts) == 1
    assert posts[0][0] > looked_up_at + 3
    [at_sinch] = stack.sim.state.batches.values()
    [batch] = stack.batches(campaign)
    assert batch["sinch_batch_id"] == at_sinch.batch_id
    assert _body(posts[0][1])["batch_metadata"][BATCH_KEY] == batch["metadata_key"]
    assert batch["attempts"] == 2
    assert stack.recipient_statuses(campaign) == {"SUBMITTED": 3}
    assert stack.campaign(campaign)["status"] == "SUBMITTED"


@pytest.mark.parametrize(
    "queued_tasks", ["kept", "lost"], ids=["tasks-kept", "tasks-lost"]
)
def test_a_campaign_due_while_no_cluster_ran_is_sent_once_when_one_starts(
    stack, queued_tasks
):
    # Launched while no cluster runs: its drain loops wait in the broker.
    launched = stack.driver("launch", "--contacts", "3", "--send-in", "3")
    campaign = launched["campaign"]
    assert launched["status"] == "SCHEDULED"
    queued = 2
    if queued_tasks == "lost":  # e.g. Redis restarted empty
        assert stack.driver("purge")["purged"] == 2
        queued = 0
    _wait_until(datetime.fromisoformat(launched["send_at"]))
    assert stack.recorder.posts() == []

    stack.start_cluster()
    stack.driver("tick")  # down for longer than a minute: the tick is due
    submitted = lambda: stack.campaign(campaign)["status"] == "SUBMITTED"  # noqa: E731
    try:
        stack.wait(submitted, "the campaign to be submitted", timeout=10)
    except AssertionError:
        # A submission that met a transient error waits for the next minute
        # tick, as in production: say what happened, then let it come.
        warnings.warn(
            f"not submitted after the first tick: {stack.campaign(campaign)} "
            f"{stack.batches(campaign)} {stack.results('dispatch_campaign')}",
            stacklevel=1,
        )
        stack.driver("tick")
        stack.wait(
            submitted,
            "the campaign to be submitted (now "
            f"{stack.campaign(campaign)}, ticks: {stack.results('tick')})",
        )
    _settled(stack, queued_loops=queued)

    posts = stack.recorder.posts()
    assert len(posts) == 1
    assert "send_after" not in _body(posts[0][1])  # overdue: sent at once
    [at_sinch] = stack.sim.state.batches.values()
    [batch] = stack.batches(campaign)
    assert (batch["status"], batch["sinch_batch_id"]) == ("ACCEPTED", at_sinch.batch_id)
    assert batch["remote_status"] != "SCHEDULED"
    assert stack.recipient_statuses(campaign) == {"SUBMITTED": 3}


def test_a_held_campaign_whose_release_passed_while_no_cluster_ran_goes_to_sinch_once(
    stack,
):
    launched = stack.driver("launch", "--contacts", "3", "--held-for", "3")
    campaign = launched["campaign"]
    [batch] = stack.batches(campaign)
    assert batch["status"] == "PENDING"
    _wait_until(batch["not_before"])

    stack.start_cluster()
    stack.driver("tick")  # the one-off release and the tick are both due
    stack.wait(
        lambda: stack.batches(campaign)[0]["status"] == "ACCEPTED",
        "the batch to be scheduled at Sinch",
    )
    _settled(stack, queued_loops=1)  # the release schedule's loop

    posts = stack.recorder.posts()
    assert len(posts) == 1
    send_at = datetime.fromisoformat(launched["send_at"])
    [at_sinch] = stack.sim.state.batches.values()
    assert at_sinch.status == "SCHEDULED"
    [batch] = stack.batches(campaign)
    assert batch["sinch_batch_id"] == at_sinch.batch_id
    assert batch["remote_status"] == "SCHEDULED"
    # Sinch rounds the send time up to its next 5 minutes.
    assert send_at <= batch["send_after"] < send_at + timedelta(minutes=5)
    assert (batch["send_after"].minute % 5, batch["send_after"].second) == (0, 0)


def test_a_release_schedule_firing_after_the_campaign_was_cancelled_sends_nothing(
    stack,
):
    stack.start_cluster()
    launched = stack.driver("launch", "--contacts", "3", "--held-for", "4")
    campaign = launched["campaign"]
    assert launched["status"] == "SCHEDULED"
    receipt = stack.driver("cancel", str(campaign))
    assert (receipt["prevented"], receipt["already_sent"]) == (3, 0)
    [batch] = stack.batches(campaign)
    _wait_until(batch["not_before"])

    stack.driver("tick")  # the release schedule fires after the cancel
    loops = stack.wait(lambda: stack.results("dispatch_campaign"), "the release to run")
    _settled(stack, queued_loops=1)

    assert stack.recorder.posts() == []
    assert loops[0] == (True, f"campaign {campaign}: CANCELLED, 0 batches submitted")
    assert [b["status"] for b in stack.batches(campaign)] == ["CANCELLED"]
    assert stack.recipient_statuses(campaign) == {"CANCELLED": 3}
    assert stack.campaign(campaign)["status"] == "CANCELLED"
