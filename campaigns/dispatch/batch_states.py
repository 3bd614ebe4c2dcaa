"""A batch's dispatch state in words: held here, scheduled at Sinch, processed...

STATES lists every state a batch can be in, as the campaign page, the
dashboard and the changelist name it; `state_filters` gives the database
condition of each (together they cover every batch exactly once) and
`batch_state` the same decision for one loaded batch. `status_note` and
`send_plan` say where a campaign stands and when it goes.
"""

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from django.conf import settings
from django.db.models import Count, Q, Sum
from django.db.models.functions import Coalesce
from django.utils import timezone

from campaigns.dispatch import cancellation, freeze
from campaigns.models import Batch, Campaign
from campaigns.models.states import (
    FILLING,
    HELD_FOR_WINNER,
    REMOTE_PROCESSED,
    RemoteBatchStatus,
)
from config.lib.timezones import local_time
from config.lib.wording import counted

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
        "wait here until the send time is near (SINCH_SCHEDULE_AHEAD_HOURS); "
        "then consent is checked again and they are handed to Sinch automatically",
    ),
    State(
        "held_for_winner",
        "held for the A/B test's winner",
        "the rest of the audience of a “test first” A/B test: once the "
        "winner is picked they get its message, consent is checked again and "
        "they are handed to Sinch",
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
        "replacing",
        "being replaced",
        "people in them opted out or were erased after the launch: their "
        "cancellation is requested at Sinch, not yet confirmed; once Sinch "
        "confirms it, a replacement batch without those people is scheduled "
        "for the same time",
    ),
    State(
        "cancel_requested",
        "cancellation requested",
        "the cancel was asked of Sinch and is not confirmed yet; it is read and "
        "asked again every minute until Sinch confirms it or the send time passes",
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
    State(
        "replaced",
        "replaced",
        "Sinch confirmed the cancellation; their other recipients went into a "
        "replacement batch for the same send time",
    ),
    State(
        "not_cancelled_in_time",
        "sent: cancel not confirmed in time",
        "Sinch did not confirm the cancellation before the send time, so they "
        "were sent as scheduled (see the error)",
    ),
)


STATE_BY_KEY = {s.key: s for s in STATES}


def state_filters(now: datetime) -> dict[str, Q]:
    """A Q per state key; together they cover every batch exactly once."""
    pending = Q(status=B.PENDING)
    due = Q(not_before__isnull=True) | Q(not_before__lte=now)
    ahead = Q(status=B.ACCEPTED, send_after__gt=now) & ~Q(
        remote_status__in=cancellation.TOO_LATE
    )
    asked = Q(cancel_requested_at__isnull=False)
    replacing = Q(replace_reason="")
    at_sinch = Q(status=B.CANCELLED) & ~Q(sinch_batch_id="")
    return {
        "held": pending
        & Q(attempts=0, not_before__gt=now)
        & ~Q(not_before=HELD_FOR_WINNER),
        "held_for_winner": pending & Q(attempts=0, not_before=HELD_FOR_WINNER),
        "queued": pending & Q(attempts=0) & due,
        "retrying": pending & Q(attempts__gt=0),
        "submitting": Q(status=B.SUBMITTING),
        "uncertain": Q(status=B.UNCERTAIN),
        "scheduled": ahead & ~asked,
        "replacing": ahead & asked & ~replacing,
        "cancel_requested": ahead & asked & replacing,
        "accepted": Q(status=B.ACCEPTED) & ~ahead & ~asked,
        "failed": Q(status=B.FAILED),
        "cancelled_here": Q(status=B.CANCELLED, sinch_batch_id=""),
        "cancelled_at_sinch": at_sinch & replacing,
        "replaced": at_sinch & ~replacing,
        "not_cancelled_in_time": Q(status=B.ACCEPTED) & ~ahead & asked,
    }


def batch_state(batch: Batch, now: datetime) -> str:
    """The key of the batch's state (see STATES)."""
    if batch.status == B.PENDING:
        if batch.attempts:
            return "retrying"
        if batch.not_before == HELD_FOR_WINNER:
            return "held_for_winner"
        if batch.not_before is not None and batch.not_before > now:
            return "held"
        return "queued"
    if batch.status == B.ACCEPTED:
        ahead = (
            batch.send_after is not None
            and batch.send_after > now
            and batch.remote_status not in cancellation.TOO_LATE
        )
        asked = batch.cancel_requested_at is not None
        if not ahead:
            return "not_cancelled_in_time" if asked else "accepted"
        if not asked:
            return "scheduled"
        return "replacing" if batch.replace_reason else "cancel_requested"
    if batch.status == B.CANCELLED:
        if not batch.sinch_batch_id:
            return "cancelled_here"
        return "replaced" if batch.replace_reason else "cancelled_at_sinch"
    return {B.SUBMITTING: "submitting", B.UNCERTAIN: "uncertain"}.get(
        batch.status, "failed"
    )


def batch_description(batch: Batch, zone: str, now: datetime) -> str:
    """What is happening to the batch, in words, with its times (and, for a
    replacement batch, which batch it replaces)."""
    text = _describe(batch, batch_state(batch, now), zone, now)
    if batch.replaces_id is not None:
        replaced = Batch.objects.filter(pk=batch.replaces_id).values_list(
            "sequence", flat=True
        )
        text = f"{text} (replaces batch {replaced.get()})"
    return text


def _describe(batch: Batch, key: str, zone: str, now: datetime) -> str:
    label = STATE_BY_KEY[key].label
    label = label[0].upper() + label[1:]
    if key == "held_for_winner":
        return label
    if key == "held" and batch.not_before == FILLING:
        return "Being filled by the launch (recipients still being frozen)"
    if key == "held":
        return f"{label} until {when(batch.not_before, zone)}"
    if key == "retrying" and batch.not_before and batch.not_before > now:
        return f"{label} at {when(batch.not_before, zone)}"
    if key == "scheduled":
        return f"{label} for {when(batch.send_after, zone)}"
    if key == "replacing":
        return (
            f"Being replaced: {batch.replace_reason} (cancellation requested at "
            f"Sinch, not yet confirmed; send time {when(batch.send_after, zone)})"
        )
    if key == "cancel_requested":
        return (
            "Cancellation requested at Sinch, not yet confirmed (send time "
            f"{when(batch.send_after, zone)})"
        )
    if key == "replaced":
        by = batch.replacements.values_list("sequence", flat=True).first()
        into = f"by batch {by}" if by else "(nobody left to send to)"
        return f"Replaced {into}: {batch.replace_reason}"
    if key == "not_cancelled_in_time":
        extra = f", with {batch.replace_reason}" if batch.replace_reason else ""
        return (
            "Sent as scheduled: Sinch did not confirm the cancellation before "
            f"the send time{extra}"
        )
    if key == "accepted":
        if batch.remote_status == RemoteBatchStatus.PROCESSED:
            return "Processed by Sinch"
        if batch.remote_status in REMOTE_PROCESSED:
            outcome = RemoteBatchStatus(batch.remote_status).label.lower()
            return f"Processed by Sinch ({outcome})"
        if batch.send_after is not None:
            return f"{label} (send time {when(batch.send_after, zone)})"
    return label


def replacement_notes(campaign: Campaign, now: datetime | None = None) -> dict:
    """What late opt-outs did to the campaign's batches, in words: `notes`
    (being replaced, replaced by which batch) and `warnings` (a batch sent
    because Sinch did not confirm its cancellation before the send time)."""
    now = now or timezone.now()
    filters = state_filters(now)
    batches = Batch.objects.filter(campaign=campaign, is_test=False)
    notes, warnings = [], []
    for batch in batches.filter(filters["replacing"]).order_by("sequence"):
        notes.append(f"Batch {batch.sequence} being replaced: {batch.replace_reason}")
    for batch in batches.filter(filters["replaced"]).order_by("sequence"):
        text = _describe(batch, "replaced", campaign.send_time_zone, now)
        notes.append(f"Batch {batch.sequence} {text[0].lower()}{text[1:]}")
    for batch in batches.filter(filters["not_cancelled_in_time"]).order_by("sequence"):
        extra = f", with {batch.replace_reason}" if batch.replace_reason else ""
        warnings.append(
            f"Batch {batch.sequence} ({counted(batch.size, 'message')}) was sent as "
            "scheduled: Sinch did not confirm its cancellation before the send "
            f"time{extra}."
        )
    return {"notes": notes, "warnings": warnings}


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
    """When the campaign goes, and how: now, scheduled at Sinch, or held here;
    `local`: "10:00 on 2026-12-05" when it goes at that time in each
    recipient's own zone ("" otherwise)."""
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
        "local": local_send(campaign),
        "send_time": when(campaign.send_at, zone),
        "hold_until": when(hold, zone),
        "ahead": duration(freeze.schedule_horizon()),
        "optout_margin": duration(
            timedelta(seconds=settings.SCHEDULED_OPTOUT_MARGIN_S)
        ),
    }


def local_send(campaign: Campaign) -> str:
    """ "10:00 on 2026-12-05" for a campaign sent at that time in each
    recipient's own zone, "" for one sent at one instant."""
    if not campaign.send_in_local_time or campaign.send_at is None:
        return ""
    wall = campaign.local_send_time
    return f"{wall:%H:%M} on {wall:%Y-%m-%d}"


def duration(span: timedelta) -> str:
    """A setting's span in words: "24 hours", "10 minutes", "90 seconds"."""
    seconds = int(span.total_seconds())
    for unit, size in (("day", 86400), ("hour", 3600), ("minute", 60)):
        if seconds >= size and seconds % size == 0:
            n = seconds // size
            return f"{n} {unit}{'s' if n != 1 else ''}"
    return f"{seconds} second{'s' if seconds != 1 else ''}"
