"""Two django-q2 clusters, as on two machines, share PostgreSQL and Redis and
dispatch one campaign together; one machine dies halfway (SIGKILL to its
whole process group) and the other finishes the campaign.

Each cluster has a name of its own (WORKER_NAME, as a machine's hostname):
every batch records the worker that claimed it (`claimed_by`), so the test
reads from the database which machine posted what, and from the simulator
what Sinch received. The pace is set by the request limit (a few batches a
second), so the kill lands halfway; the dead machine's claims are settled by
the tick once their lease has run out (looked up at Sinch by their
metadata: found, or sent again by the survivor after the grace).
"""

import json
import math
import os
import time
from collections import Counter

import pytest

from campaigns.dispatch.batch_request import BATCH_KEY
from tests.integration.conftest import _database_kind

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(
        _database_kind() != "postgres" or not os.environ.get("REDIS_URL"),
        reason="two clusters as on two machines share PostgreSQL and Redis: "
        "set DATABASE_URL=postgres://... and REDIS_URL=redis://... (on SQLite "
        "with the ORM broker there is one machine)",
    ),
]

RECIPIENTS = 30_000
BATCHES = math.ceil(RECIPIENTS / 1000)
LEASE_S = 8  # a claim (or a freeze) silent this long lost its worker
MACHINES = ("machine-a", "machine-b")


def _batches(stack, campaign: int) -> list[dict]:
    return stack.rows(
        "SELECT metadata_key, status, claimed_by, attempts, size "
        "FROM campaigns_batch WHERE campaign_id = %s AND is_test = %s",
        campaign,
        False,
    )


def _machine(claimed_by: str) -> str:
    return claimed_by.rsplit(":", 1)[0]


def _accepted_by(stack, campaign: int) -> Counter:
    return Counter(
        _machine(b["claimed_by"])
        for b in _batches(stack, campaign)
        if b["status"] == "ACCEPTED"
    )


def test_two_machines_share_a_campaign_and_one_finishes_it_when_the_other_dies(
    stack,
):
    stack.env.update(
        SINCH_MAX_REQUESTS_PER_S="5",  # about 5 batches a second: a kill halfway
        DISPATCH_CONCURRENCY="4",  # drain loops for the workers of both
        DISPATCH_CLAIM_LEASE_S=str(LEASE_S),
        DISPATCH_UNCERTAIN_GRACE_S="3",
        LAUNCH_LEASE_S=str(LEASE_S),  # should the freeze be on the dead one
    )
    clusters = {name: stack.start_cluster(WORKER_NAME=name) for name in MACHINES}
    launched = stack.driver("launch", "--contacts", str(RECIPIENTS), "--imported")
    campaign = launched["campaign"]
    assert launched["status"] == "LAUNCHING"  # frozen on a worker

    # Halfway, the machine that sent the most so far dies.
    def halfway():
        accepted = _accepted_by(stack, campaign)
        return sum(accepted.values()) >= BATCHES // 2 and accepted

    before_kill = stack.wait(halfway, "half the batches to be accepted", timeout=90)
    victim, survivor = sorted(MACHINES, key=lambda m: -before_kill[m])
    killed_at = time.monotonic()
    clusters[victim].kill()
    at_kill = _accepted_by(stack, campaign)
    assert sum(at_kill.values()) < BATCHES, "the dispatch ended before the kill"

    # The survivor goes on; the dead machine's claims wait for their lease,
    # then the tick (fired here as time passes) settles them at Sinch.
    def submitted():
        if stack.campaign(campaign)["status"] == "SUBMITTED":
            return True
        if time.monotonic() > killed_at + LEASE_S:
            stack.driver("tick")
        return False

    stack.wait(submitted, "the survivor to finish the campaign", timeout=90)

    batches = _batches(stack, campaign)
    assert len(batches) == BATCHES
    assert {b["status"] for b in batches} == {"ACCEPTED"}
    assert sum(b["size"] for b in batches) == RECIPIENTS
    # Exactly one POST per batch, and everyone in exactly one of them.
    posts = [json.loads(r.body) for _, r in stack.recorder.posts()]
    keys = Counter(p["batch_metadata"][BATCH_KEY] for p in posts)
    assert sorted(keys) == sorted(b["metadata_key"] for b in batches)
    assert set(keys.values()) == {1}, "a batch was posted twice"
    identities = Counter(
        identity["identity"]
        for p in posts
        for item in p["recipient_and_params"]
        for identity in item["recipient"]["identified_by"]["channel_identities"]
    )
    assert len(identities) == RECIPIENTS
    assert set(identities.values()) == {1}, "someone was in two batches"
    assert stack.recipient_statuses(campaign) == {"SUBMITTED": RECIPIENTS}
    # Both machines did part of the work; the victim nothing after its death.
    by_machine = Counter(_machine(b["claimed_by"]) for b in batches)
    assert set(by_machine) == set(MACHINES)
    assert by_machine[victim] >= before_kill[victim] > 0
    assert by_machine[survivor] >= BATCHES - at_kill[victim] - 2  # 2 workers
    assert clusters[survivor].process.poll() is None
