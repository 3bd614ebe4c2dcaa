"""The app's ingress queue: a batch that would overfill it is refused.

Sinch queues at most `ingress_queue_limit` messages per app
(wire.INGRESS_QUEUE_LIMIT, 500,000) and drains them to the channels at
`drain_rate`. The queue holds the messages of due batches not yet sent:
READY ones, and PROCESSED ones the drain has not finished; a scheduled
batch joins it at its send_after. A new batch is refused as a whole when,
with it, the queue would hold more than the limit at its due time or at any
later batch's (a projection at the drain rate): 429 RESOURCE_EXHAUSTED with a
Retry-After saying when the room comes (UNCONFIRMED in sinch.wire). With
`drain_rate` 0 (no limit) nothing waits, so nothing is refused.
"""

import math
from collections import defaultdict

from sinch import wire
from sinch.simulator.validation import ApiError


def check(sim, *, due: float, size: int) -> None:
    """Raise the queue-full error if `size` messages due at `due` (simulated
    time) do not fit; call with sim.state.lock held."""
    limit, rate = sim.knobs.ingress_queue_limit, sim.knobs.drain_rate
    if not limit or not rate:  # no limit, or no drain rate: nothing waits
        return
    now = sim.clock.now()
    arrivals: dict[float, int] = defaultdict(int)
    arrivals[now] += sim.engine.queued_now()
    for batch in sim.state.batches.values():
        if batch.status == "READY":
            arrivals[now] += batch.size
        elif batch.status == "SCHEDULED":
            arrivals[max(batch.send_after, now)] += batch.size
    due = max(due, now)
    arrivals[due] += size
    queued, last, worst = 0.0, None, 0.0
    for point in sorted(arrivals):
        if last is not None:
            queued = max(0.0, queued - rate * (point - last))
        queued += arrivals[point]
        last = point
        if point >= due:
            worst = max(worst, queued)
    over = worst - limit
    if over <= 0:
        return
    sim.state.counters["batches_refused_queue_full"] += 1
    wait = (due - now) + over / rate
    retry_after = max(1, math.ceil(wait / sim.knobs.time_factor))
    raise ApiError(
        wire.INGRESS_QUEUE_FULL_STATUS,
        f"The app's message queue is full: {int(worst):,} messages would wait "
        f"to be sent, at most {limit:,} are queued per app. Try again later.",
        headers={"Retry-After": str(retry_after)},
    )
