"""A batch's dispatch state in words: held here, scheduled at Sinch, processed...

STATES lists every state a batch can be in, as the campaign page, the
dashboard and the changelist name it; `state_filters` gives the database
condition of each (together they cover every batch exactly once) and
`batch_state` the same decision for one loaded batch. `status_note` and
`send_plan` say where a campaign stands and when it goes.
"""

from dataclasses import dataclass
from datetime import UTC, datetime

from django.db.models import Count, Q, Sum
from django.db.models.functions import Coalesce
from django.utils import timezone

from campaigns.dispatch import freeze
from campaigns.dispatch.freeze import FILLING
from campaigns.models import Batch, Campaign
from campaigns.models.states import RemoteBatchStatus
from config.lib.timezones import local_time

B = Batch.Status
S = Campaign.Status
# Batches listed on the campaign page (the counts cover them all).
BATCHES_SHOWN = 50


def when(instant: datetime | None, zone: str = "") -> str:
    """`instant` as wall-clock time in `zone` (UTC if none), zone named."""
    if instant is None:
        return ""
    local = local_time(instant, zone)
    text = f"{local:%Y-%m-%d %H:%M} {zone or 'UTC'}"
    if zone and zone != "UTC":
        text += f" ({instant.astimezone(UTC):%H:%M} UTC)"
    return text


@dataclass(frozen=True)
class State:
    key: str
    label: str  # for a count: "3 batches <label>"
    help: str  # what it means, in words


# In the order a batch goes through them. The keys are the aggregates' names.
STATES = (
    State(
        "held",
        "held here",
        "wait here until the send time is within Sinch's "
        "7-day scheduling window; then they are handed to Sinch automatically",
    ),
    State("queued", "not submitted yet", "waiting for a worker to submit them"),
    State(
        "retrying",
        "waiting to retry",
        "Sinch refused or could not be reached; they are submitted again after a pause",
    ),
    State("submitting", "being submitted", "a worker is handing them to Sinch now"),
    State(
        "uncertain",
        "outcome uncertain",
        "the answer from Sinch was lost; they "
        "are looked up at Sinch before anything is sent again",
    ),
    State(
        "scheduled",
        "scheduled at Sinch",
        "Sinch holds them and sends them at "
        "the time shown; they can still be cancelled",
    ),
    State(
        "accepted",
        "accepted by Sinch",
        "handed to Sinch for sending now; they cannot be cancelled any more",
    ),
    State(
        "failed", "failed", "Sinch refused them or they were given up; see the error"
    ),
    State("cancelled_here", "cancelled before submission", "never sent"),
    State(
        "cancelled_at_sinch",
        "cancelled at Sinch",
        "Sinch confirmed the cancellation; never sent",
    ),
)


STATE_BY_KEY = {s.key: s for s in STATES}


def state_filters(now: datetime) -> dict[str, Q]:
    """A Q per state key; together they cover every batch exactly once."""
    pending = Q(status=B.PENDING)
    due = Q(not_before__isnull=True) | Q(not_before__lte=now)
    scheduled = Q(status=B.ACCEPTED, send_after__gt=now)
    return {
        "held": pending & Q(attempts=0, not_before__gt=now),
        "queued": pending & Q(attempts=0) & due,
        "retrying": pending & Q(attempts__gt=0),
        "submitting": Q(status=B.SUBMITTING),
        "uncertain": Q(status=B.UNCERTAIN),
        "scheduled": scheduled,
        "accepted": Q(status=B.ACCEPTED) & ~scheduled,
        "failed": Q(status=B.FAILED),
        "cancelled_here": Q(status=B.CANCELLED, sinch_batch_id=""),
        "cancelled_at_sinch": Q(status=B.CANCELLED) & ~Q(sinch_batch_id=""),
    }


def batch_state(batch: Batch, now: datetime) -> str:
    """The key of the batch's state (see STATES)."""
    if batch.status == B.PENDING:
        if batch.attempts:
            return "retrying"
        if batch.not_before is not None and batch.not_before > now:
            return "held"
        return "queued"
    if batch.status == B.ACCEPTED:
        scheduled = batch.send_after is not None and batch.send_after > now
        return "scheduled" if scheduled else "accepted"
    if batch.status == B.CANCELLED:
        return "cancelled_at_sinch" if batch.sinch_batch_id else "cancelled_here"
    return {B.SUBMITTING: "submitting", B.UNCERTAIN: "uncertain"}.get(
        batch.status, "failed"
    )


def batch_description(batch: Batch, zone: str, now: datetime) -> str:
    """What is happening to the batch, in words, with its times."""
    key = batch_state(batch, now)
    label = STATE_BY_KEY[key].label
    label = label[0].upper() + label[1:]
    if key == "held" and batch.not_before == FILLING:
        return "Being filled by the launch (recipients still being frozen)"
    if key == "held":
        return f"{label} until {when(batch.not_before, zone)}"
    if key == "retrying" and batch.not_before and batch.not_before > now:
        return f"{label} at {when(batch.not_before, zone)}"
    if key == "scheduled":
        return f"{label} for {when(batch.send_after, zone)}"
    if key == "accepted":
        if batch.remote_status == RemoteBatchStatus.PROCESSED:
            return "Processed by Sinch"
        if batch.send_after is not None:
            return f"{label} (send time {when(batch.send_after, zone)})"
    return label


def batch_counts(campaign: Campaign, now: datetime | None = None) -> dict:
    """Batches and their messages by state key: {key: (batches, messages)}."""
    now = now or timezone.now()
    aggregates = {}
    for key, condition in state_filters(now).items():
        aggregates[f"{key}_n"] = Count("pk", filter=condition)
        aggregates[f"{key}_m"] = Coalesce(Sum("size", filter=condition), 0)
    row = Batch.objects.filter(campaign=campaign, is_test=False).aggregate(**aggregates)
    return {key: (row[f"{key}_n"], row[f"{key}_m"]) for key in STATE_BY_KEY}


def status_note(campaign: Campaign, counts: dict, zone: str, now: datetime) -> str:
    """Where the campaign stands, in words (the batch table has the details)."""
    held, scheduled = counts["held"][0], counts["scheduled"][0]
    status = campaign.status
    if status == S.LAUNCHING:
        return "Freezing the recipients; the batches appear when that is done."
    if status == S.SCHEDULED and held:
        hold = freeze.hold_until(campaign)
        return (
            f"Batches held here until {when(hold, zone)}, then handed to Sinch "
            "automatically."
        )
    if status in (S.SCHEDULED, S.SUBMITTING):
        return "Batches are being handed to Sinch."
    if status == S.PAUSED:
        return "No further batch is submitted until the campaign is resumed."
    if status == S.SUBMITTED and scheduled:
        return (
            f"Every batch is at Sinch; {scheduled} wait there for their send time "
            "and can still be cancelled."
        )
    if status == S.SUBMITTED:
        return "Every batch has been handed to Sinch."
    if status == S.CANCELLED:
        return "Nothing more is sent; see the cancellation receipt."
    return ""


def send_plan(campaign: Campaign, now: datetime | None = None) -> dict:
    """When the campaign goes, and how: now, scheduled at Sinch, or held here."""
    now = now or timezone.now()
    zone = campaign.send_time_zone
    hold = freeze.hold_until(campaign)
    if campaign.send_at is None:
        mode = "now"
    elif hold is not None and hold > now:
        mode = "held"
    else:
        mode = "scheduled"
    return {
        "mode": mode,
        "send_time": when(campaign.send_at, zone),
        "hold_until": when(hold, zone),
    }
