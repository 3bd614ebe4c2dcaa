"""Admin: launch, pause, resume and cancel a campaign, and its dispatch state.

The views are thin: campaigns.launching and campaigns.control do the work
(and write the audit trail). Launch and cancel have a confirmation page (GET)
that says what will happen; the action is a POST. Only the Sender role holds
the permissions (campaigns.launch_campaign, pause_campaign, cancel_campaign).

The campaign page of a launched campaign shows its dispatch state: status and
reason, the frozen message, recipients by status, and its batches (the first
BATCHES_SHOWN, with counts by state), each saying whether it is held here,
scheduled at Sinch, processed, failed or cancelled.
"""

from dataclasses import dataclass
from datetime import UTC, datetime

from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.db.models import Count, Exists, IntegerField, OuterRef, Q, Subquery, Sum
from django.db.models.functions import Coalesce
from django.http import HttpResponseNotAllowed
from django.shortcuts import get_object_or_404, redirect
from django.template.response import TemplateResponse
from django.urls import path
from django.utils import timezone
from django.utils.decorators import method_decorator
from django.views.decorators.http import require_POST

from campaigns import counters
from campaigns.dispatch import control, launching
from campaigns.dispatch.launching import FILLING
from campaigns.models import Batch, Campaign, Recipient
from config.lib.timezones import local_time
from sinch.placeholders import strings

BATCHES_SHOWN = 50
LAUNCH_PERM = "campaigns.launch_campaign"
PAUSE_PERM = "campaigns.pause_campaign"
CANCEL_PERM = "campaigns.cancel_campaign"
B = Batch.Status
S = Campaign.Status


# --- how times and batch states are said ------------------------------------


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


def _state_filters(now: datetime) -> dict[str, Q]:
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
        if batch.remote_status == "PROCESSED":
            return "Processed by Sinch"
        if batch.send_after is not None:
            return f"{label} (send time {when(batch.send_after, zone)})"
    return label


def batch_counts(campaign: Campaign, now: datetime | None = None) -> dict:
    """Batches and their messages by state key: {key: (batches, messages)}."""
    now = now or timezone.now()
    aggregates = {}
    for key, condition in _state_filters(now).items():
        aggregates[f"{key}_n"] = Count("pk", filter=condition)
        aggregates[f"{key}_m"] = Coalesce(Sum("size", filter=condition), 0)
    row = Batch.objects.filter(campaign=campaign, is_test=False).aggregate(**aggregates)
    return {key: (row[f"{key}_n"], row[f"{key}_m"]) for key in STATE_BY_KEY}


def dispatch_context(campaign: Campaign) -> dict:
    """Everything the campaign page shows about the dispatch."""
    now = timezone.now()
    zone = campaign.send_time_zone
    counts = batch_counts(campaign, now)
    batches = list(
        Batch.objects.filter(campaign=campaign, is_test=False).order_by("sequence")[
            :BATCHES_SHOWN
        ]
    )
    rows = [
        {
            "batch": b,
            "state": batch_state(b, now),
            "description": batch_description(b, zone, now),
        }
        for b in batches
    ]
    # The kept counts and a bounded breakdown: never a count of a million rows.
    from campaigns.tracking.dashboard import (
        exclusion_breakdown,  # it imports this module
    )

    by_status = counters.counts(campaign.pk)
    breakdown = exclusion_breakdown(
        campaign, by_status.get(Recipient.Status.EXCLUDED, 0)
    )
    excluded = [(row["reason"], row["count"]) for row in breakdown["rows"]]
    message = None
    if campaign.message_snapshot:
        message = "\n".join(strings(campaign.message_snapshot.get("message", {})))
    total = sum(n for n, _ in counts.values())
    scheduled_for = (
        Batch.objects.filter(
            _state_filters(now)["scheduled"], campaign=campaign, is_test=False
        )
        .order_by("send_after")
        .values_list("send_after", flat=True)
        .first()
    )
    receipt_at = None
    if campaign.cancel_receipt and campaign.cancel_receipt.get("at"):
        receipt_at = when(datetime.fromisoformat(campaign.cancel_receipt["at"]), zone)
    return {
        "status_note": status_note(campaign, counts, zone, now),
        "sinch_sends_at": when(scheduled_for, zone),
        "receipt_at": receipt_at,
        "now": now,
        "zone": zone,
        "send_time": when(campaign.send_at, zone),
        "launched_at": when(campaign.launched_at, zone),
        "frozen_at": when(campaign.frozen_at, zone),
        "frozen_message": message,
        "batch_total": total,
        "batch_counts": [
            {"state": s, "batches": counts[s.key][0], "messages": counts[s.key][1]}
            for s in STATES
            if counts[s.key][0]
        ],
        "batch_rows": rows,
        "batches_more": max(0, total - len(rows)),
        "recipient_counts": [
            (label, by_status[value])
            for value, label in Recipient.Status.choices
            if by_status.get(value)
        ],
        "recipient_total": sum(by_status.values()),
        "excluded_reasons": excluded,
        "receipt": campaign.cancel_receipt,
        "can_pause": campaign.status in control.PAUSABLE,
        "can_resume": campaign.status == S.PAUSED,
        "can_cancel": campaign.status in control.CANCELLABLE,
    }


def status_note(campaign: Campaign, counts: dict, zone: str, now: datetime) -> str:
    """Where the campaign stands, in words (the batch table has the details)."""
    held, scheduled = counts["held"][0], counts["scheduled"][0]
    status = campaign.status
    if status == S.LAUNCHING:
        return "Freezing the recipients; the batches appear when that is done."
    if status == S.SCHEDULED and held:
        hold = launching.hold_until(campaign)
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
    hold = launching.hold_until(campaign)
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


# --- the changelist ---------------------------------------------------------


def _batches(state: str, now: datetime):
    return Batch.objects.filter(
        _state_filters(now)[state], campaign=OuterRef("pk"), is_test=False
    )


class DispatchFilter(admin.SimpleListFilter):
    """Campaigns with batches in a given state (the status filter has the rest)."""

    title = "batches"
    parameter_name = "batches"
    CHOICES = (
        ("held", "Held here"),
        ("scheduled", "Scheduled at Sinch"),
        ("uncertain", "Outcome uncertain"),
        ("failed", "Failed"),
    )

    def lookups(self, request, model_admin):
        return self.CHOICES

    def queryset(self, request, queryset):
        if self.value() in dict(self.CHOICES):
            return queryset.filter(Exists(_batches(self.value(), timezone.now())))
        return queryset


def _count(state: str, now: datetime):
    return Coalesce(
        Subquery(
            _batches(state, now)
            .order_by()
            .values("campaign")
            .annotate(n=Count("pk"))
            .values("n")[:1],
            output_field=IntegerField(),
        ),
        0,
    )


CHANGELIST_COUNTS = ("held", "scheduled", "accepted", "failed", "cancelled_at_sinch")


# --- the mixin --------------------------------------------------------------


class DispatchAdminMixin:
    """Launch, pause, resume, cancel views and the dispatch state of a campaign.

    Wire `dispatch_urls()` into get_urls, "dispatch_state" into list_display
    and DispatchFilter into list_filter.
    """

    def dispatch_urls(self):
        view = self.admin_site.admin_view
        return [
            path(
                "<int:pk>/launch/",
                view(self.launch_view),
                name="campaigns_campaign_launch",
            ),
            path(
                "<int:pk>/pause/",
                view(self.pause_view),
                name="campaigns_campaign_pause",
            ),
            path(
                "<int:pk>/resume/",
                view(self.resume_view),
                name="campaigns_campaign_resume",
            ),
            path(
                "<int:pk>/cancel/",
                view(self.cancel_view),
                name="campaigns_campaign_cancel",
            ),
        ]

    # The changelist: the dispatch state at a glance.

    def get_queryset(self, request):
        queryset = super().get_queryset(request)
        match = getattr(request, "resolver_match", None)
        if match and match.url_name == "campaigns_campaign_changelist":
            now = timezone.now()
            queryset = queryset.annotate(
                **{f"batches_{key}": _count(key, now) for key in CHANGELIST_COUNTS}
            )
        return queryset

    @admin.display(description="dispatch")
    def dispatch_state(self, obj: Campaign) -> str:
        if obj.status == S.DRAFT:
            return "—"
        parts = []
        for key in CHANGELIST_COUNTS:
            n = getattr(obj, f"batches_{key}", 0)
            if n:
                parts.append(
                    f"{n} {'batch' if n == 1 else 'batches'} {STATE_BY_KEY[key].label}"
                )
        if obj.status == S.PAUSED and obj.status_reason:
            parts.insert(0, obj.status_reason)
        return "; ".join(parts) or obj.get_status_display()

    def change_view(self, request, object_id, form_url="", extra_context=None):
        extra_context = dict(extra_context or {})
        campaign = Campaign.objects.filter(pk=object_id).first()
        if campaign is not None and campaign.status != S.DRAFT:
            extra_context["dispatch"] = dispatch_context(campaign)
        return super().change_view(request, object_id, form_url, extra_context)

    # Actions.

    def _campaign_for(self, request, pk, perm: str) -> Campaign:
        campaign = get_object_or_404(Campaign.objects.select_related("template"), pk=pk)
        if not (
            self.has_view_permission(request, campaign) and request.user.has_perm(perm)
        ):
            raise PermissionDenied
        return campaign

    def _to_campaign(self, campaign: Campaign):
        return redirect("admin:campaigns_campaign_change", campaign.pk)

    def _page(self, request, campaign, template: str, title: str, **context):
        return TemplateResponse(
            request,
            f"admin/campaigns/campaign/{template}",
            {
                **self.admin_site.each_context(request),
                "title": title,
                "opts": self.opts,
                "original": campaign,
                **context,
            },
        )

    def launch_view(self, request, pk):
        if request.method not in ("GET", "POST"):
            return HttpResponseNotAllowed(["GET", "POST"])
        campaign = self._campaign_for(request, pk, LAUNCH_PERM)
        if request.method == "POST":
            return self._launch(request, campaign)
        return self._page(
            request,
            campaign,
            "launch.html",
            f"Launch: {campaign}",
            problems=launching.launch_problems(campaign),
            presend=campaign.presend,
            plan=send_plan(campaign),
            lists=list(campaign.lists.all()),
            presend_at=when(campaign.presend_at, campaign.send_time_zone),
        )

    def _launch(self, request, campaign: Campaign):
        if self._already_launched(request, campaign):
            return self._to_campaign(campaign)
        try:
            inline = launching.launch(campaign, request.user)
        except launching.LaunchError as exc:
            campaign.refresh_from_db()
            # Lost the race against a second click, or a colleague.
            if self._already_launched(request, campaign):
                return self._to_campaign(campaign)
            self.message_user(
                request,
                "The campaign was not launched: " + " ".join(exc.problems),
                messages.ERROR,
            )
            return redirect("admin:campaigns_campaign_launch", campaign.pk)
        campaign.refresh_from_db()
        plan = send_plan(campaign)
        if plan["mode"] == "now":
            going = "Its batches are being submitted to Sinch now."
        elif plan["mode"] == "held":
            going = (
                f"Its batches are held here until {plan['hold_until']}, then "
                f"scheduled at Sinch for {plan['send_time']}."
            )
        else:
            going = f"Its batches are scheduled at Sinch for {plan['send_time']}."
        if not inline:
            going = (
                "Its recipients are being frozen on a worker; then: "
                + going[0].lower()
                + going[1:]
            )
        self.message_user(request, f"Launched “{campaign}”. {going}", messages.SUCCESS)
        return self._to_campaign(campaign)

    def _already_launched(self, request, campaign: Campaign) -> bool:
        """A second click, or a second tab: say the campaign went once."""
        if campaign.status == S.DRAFT or campaign.launched_at is None:
            return False
        self.message_user(
            request,
            f"This campaign was already launched by {campaign.launched_by} at "
            f"{when(campaign.launched_at, campaign.send_time_zone)}; "
            "nothing more was done.",
            messages.WARNING,
        )
        return True

    @method_decorator(require_POST)
    def pause_view(self, request, pk):
        campaign = self._campaign_for(request, pk, PAUSE_PERM)
        if control.pause(campaign, request.user):
            self.message_user(
                request,
                "Paused: no further batch is submitted. Batches already scheduled "
                "at Sinch stay scheduled there; cancel the campaign to stop them.",
                messages.SUCCESS,
            )
        else:
            self.message_user(
                request,
                f"A {campaign.get_status_display().lower()} campaign cannot be "
                "paused; nothing was changed.",
                messages.ERROR,
            )
        return self._to_campaign(campaign)

    @method_decorator(require_POST)
    def resume_view(self, request, pk):
        campaign = self._campaign_for(request, pk, PAUSE_PERM)
        try:
            control.resume(campaign, request.user)
        except control.ControlError as exc:
            self.message_user(request, f"{exc} Nothing was changed.", messages.ERROR)
        else:
            self.message_user(
                request,
                "Resumed: submission continues with the next batch not yet submitted.",
                messages.SUCCESS,
            )
        return self._to_campaign(campaign)

    def cancel_view(self, request, pk):
        if request.method not in ("GET", "POST"):
            return HttpResponseNotAllowed(["GET", "POST"])
        campaign = self._campaign_for(request, pk, CANCEL_PERM)
        if request.method == "POST":
            try:
                receipt = control.cancel(campaign, request.user)
            except control.ControlError as exc:
                self.message_user(
                    request, f"{exc} Nothing was changed.", messages.ERROR
                )
            else:
                self.message_user(
                    request,
                    f"Cancelled “{campaign}”: {receipt['prevented']:,} "
                    f"message{'s' if receipt['prevented'] != 1 else ''} prevented, "
                    f"{receipt['already_sent']:,} already gone. "
                    "The cancellation receipt is below.",
                    messages.SUCCESS,
                )
            return self._to_campaign(campaign)
        counts = batch_counts(campaign)
        return self._page(
            request,
            campaign,
            "cancel.html",
            f"Cancel: {campaign}",
            cancellable=campaign.status in control.CANCELLABLE,
            counts={
                key: {"batches": n, "messages": m} for key, (n, m) in counts.items()
            },
        )
