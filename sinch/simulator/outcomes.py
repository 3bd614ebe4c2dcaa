"""The fate of one message: which receipts it produces, on which channel, when.

QUEUED_ON_CHANNEL -> DELIVERED (-> READ where the channel reports reads), or
FAILED with a reason; with more than one channel, a failure on all but the
last gives SWITCHING_CHANNEL and the next channel is tried. A channel whose
sending window is closed for the identity (WhatsApp's 24 hours, for a
message other than a WhatsApp template) fails with
OUTSIDE_ALLOWED_SENDING_WINDOW.
"""

import random
import re
from collections.abc import Callable
from dataclasses import dataclass

from sinch import wire
from sinch.channels import PHONE_CHANNELS
from sinch.simulator.knobs import Knobs

PHONE = re.compile(r"^\+?[1-9][0-9]{6,14}$")
# Failures that happen before the channel accepted the message: no
# QUEUED_ON_CHANNEL receipt precedes them.
BEFORE_CHANNEL = frozenset(
    {
        "RECIPIENT_INVALID_CHANNEL_IDENTITY",
        "RECIPIENT_NOT_OPTED_IN",
        "MESSAGE_EXPIRED",
        wire.WHATSAPP_WINDOW_REASON,
    }
)


@dataclass(frozen=True, slots=True)
class Step:
    delay: float  # simulated seconds after the message was sent
    status: str
    channel: str
    identity: str
    reason: str = ""


def order_identities(
    identities: list[tuple[str, str]], priority: list[str]
) -> list[tuple[str, str]]:
    """The identities Sinch tries, in order (wire: fallback). With a channel
    priority order, its channels in its order, each through the recipient's
    (first) identity on it: a channel without one is skipped, an identity on a
    channel the order does not list is not tried. Without one, the
    identities as given. Empty: no channel left (NO_CHANNELS_LEFT)."""
    if not priority:
        return identities
    mine: dict[str, str] = {}
    for channel, identity in identities:
        mine.setdefault(channel, identity)
    return [(channel, mine[channel]) for channel in priority if channel in mine]


def no_channels_left(
    named: tuple[str, str], *, knobs: Knobs, rng: random.Random
) -> list[Step]:
    """The receipt of a message with no channel to try: FAILED, naming the
    recipient's first identity (wire: fallback)."""
    return [Step(_gap(knobs, rng), "FAILED", *named, wire.NO_CHANNELS_LEFT)]


def plan(
    identities: list[tuple[str, str]],
    *,
    knobs: Knobs,
    rng: random.Random,
    blocked: Callable[[str], bool],
    expired: bool = False,
    window_closed: Callable[[str, str], bool] = lambda channel, identity: False,
) -> list[Step]:
    """The receipts of one message sent to `identities` (in fallback order).

    `window_closed(channel, identity)`: the channel's sending window is closed.
    """
    steps: list[Step] = []
    clock = 0.0
    last = len(identities) - 1
    for n, (channel, identity) in enumerate(identities):
        reason = _failure(channel, identity, knobs, rng, blocked, expired)
        if not reason and window_closed(channel, identity):
            reason = wire.WHATSAPP_WINDOW_REASON
        if not reason:
            clock += _gap(knobs, rng)
            steps.append(Step(clock, "QUEUED_ON_CHANNEL", channel, identity))
            clock += _gap(knobs, rng)
            steps.append(Step(clock, "DELIVERED", channel, identity))
            if (
                channel in wire.READ_RECEIPT_CHANNELS
                and rng.random() < knobs.read_ratio
            ):
                clock += _gap(knobs, rng) * 3
                steps.append(Step(clock, "READ", channel, identity))
            break
        if reason not in BEFORE_CHANNEL:
            clock += _gap(knobs, rng)
            steps.append(Step(clock, "QUEUED_ON_CHANNEL", channel, identity))
        clock += _gap(knobs, rng)
        status = "FAILED" if n == last else "SWITCHING_CHANNEL"
        steps.append(Step(clock, status, channel, identity, reason))
    if len(steps) > 1 and rng.random() < knobs.out_of_order_ratio:
        # The last receipt overtakes the one before it.
        a, b = steps[-2], steps[-1]
        steps[-2:] = [
            Step(b.delay, a.status, a.channel, a.identity, a.reason),
            Step(a.delay, b.status, b.channel, b.identity, b.reason),
        ]
    return steps


def _failure(
    channel: str,
    identity: str,
    knobs: Knobs,
    rng: random.Random,
    blocked: Callable[[str], bool],
    expired: bool,
) -> str:
    if expired:
        return "MESSAGE_EXPIRED"
    if channel in PHONE_CHANNELS and not PHONE.match(identity):
        return "RECIPIENT_INVALID_CHANNEL_IDENTITY"
    if blocked(identity):
        return "RECIPIENT_NOT_OPTED_IN"
    if knobs.failure_ratio and rng.random() < knobs.failure_ratio:
        reasons = knobs.failure_reasons
        return rng.choices(list(reasons), weights=list(reasons.values()))[0]
    return ""


def _gap(knobs: Knobs, rng: random.Random) -> float:
    return knobs.latency_s * rng.uniform(0.5, 1.5)
