"""A Sinch outage at launch, and a launch whose task was lost, with a real
django-q2 cluster (see conftest.py).

Sinch (and its auth server: the simulator serves both) is down when the
campaign is launched: the batch waits, says why, uses up no attempt, and
goes to Sinch exactly once when Sinch is back, the periodic tick having
started the drain loops again.
"""

import time
from datetime import UTC, datetime

import pytest

pytestmark = pytest.mark.integration


def _wait_until(moment: datetime) -> None:
    delay = (moment - datetime.now(UTC)).total_seconds()
    assert delay < 70, f"{moment} is too far away for a test"
    if delay > 0:
        time.sleep(delay + 0.3)


def test_sinch_down_at_launch_is_waited_out_and_the_batch_is_posted_once_after(
    stack,
):
    stack.sim.go_down()
    stack.start_cluster(DISPATCH_MAX_ATTEMPTS="1")
    stack.driver("hold-tick")
    campaign = stack.driver("launch", "--contacts", "4")["campaign"]

    def waiting():
        [batch] = stack.batches(campaign)
        return batch["status"] == "PENDING" and batch["last_error"] and batch

    batch = stack.wait(waiting, "the batch to wait for Sinch")
    assert batch["last_error"].startswith("Sinch unreachable since ")
    assert ", retrying: token request: ConnectionError" in batch["last_error"]
    # The outage goes on across several ticks: more tries than
    # DISPATCH_MAX_ATTEMPTS, none of them used up, the campaign still going.
    for _ in range(2):
        _wait_until(batch["not_before"])
        stack.driver("tick")
        batch = stack.wait(
            lambda before=batch["not_before"]: (
                stack.batches(campaign)[0]["not_before"] > before
                and stack.batches(campaign)[0]
            ),
            "the tick's drain loop to meet the outage again",
        )
        assert (batch["status"], batch["attempts"]) == ("PENDING", 0)
        assert stack.campaign(campaign)["status"] == "SUBMITTING"
    assert stack.recorder.posts() == []

    stack.sim.come_back()
    _wait_until(batch["not_before"])
    stack.driver("tick")
    stack.wait(
        lambda: stack.campaign(campaign)["status"] == "SUBMITTED",
        "the campaign to go out once Sinch is back",
        timeout=40,
    )
    [batch] = stack.batches(campaign)
    assert (batch["status"], batch["attempts"]) == ("ACCEPTED", 1)
    assert len(stack.recorder.posts()) == 1
    assert len(stack.sim.state.batches) == 1
    assert stack.recipient_statuses(campaign) == {"SUBMITTED": 4}


def test_a_launch_whose_freeze_task_was_lost_is_resumed_by_the_tick(stack):
    """The broker lost the launch's freeze task (Redis restarted empty, a
    worker killed with it): the campaign is not left LAUNCHING."""
    env = {"LAUNCH_INLINE_RECIPIENTS": "0", "LAUNCH_LEASE_S": "2"}
    launched = stack.driver("launch", "--contacts", "3", **env)
    campaign = launched["campaign"]
    assert launched["status"] == "LAUNCHING"
    assert stack.driver("purge")["purged"] == 1  # the freeze task is gone
    stack.start_cluster(**env)
    time.sleep(2.5)  # the launch's lease runs out
    stack.driver("tick", **env)
    stack.wait(
        lambda: stack.campaign(campaign)["status"] == "SUBMITTED",
        "the resumed launch to be frozen and sent",
        timeout=40,
    )
    assert "The launch's worker stopped" in stack.campaign(campaign)["status_reason"]
    assert len(stack.recorder.posts()) == 1
    assert stack.recipient_statuses(campaign) == {"SUBMITTED": 3}
