"""Admin: launch, pause, resume and cancel a campaign, and its dispatch state.

The views are thin: campaigns.dispatch.launching and .control do the work
(and write the audit trail). Launch and cancel have a confirmation page (GET)
that says what will happen; the action is a POST. Only the Sender role holds
the permissions (campaigns.launch_campaign, pause_campaign, cancel_campaign).

The campaign page of a launched campaign shows its dispatch state: status and
reason, the frozen message, recipients by status, and its batches (the first
BATCHES_SHOWN, with counts by state), each saying whether it is held here,
scheduled at Sinch, processed, failed or cancelled.
"""

from datetime import datetime

from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.db.models import Count, Exists, IntegerField, OuterRef, Subquery
from django.db.models.functions import Coalesce
from django.http import HttpResponseNotAllowed
from django.shortcuts import get_object_or_404, redirect
from django.template.response import TemplateResponse
from django.urls import path
from django.utils import timezone
from django.utils.decorators import method_decorator
from django.views.decorators.http import require_POST

from campaigns import counters, transitions
from campaigns.admin.approval import approval_context
from campaigns.admin.refusals import refusal
from campaigns.admin.waves import launched_local_waves, waves_context
from campaigns.compliance import display, drift
from campaigns.dispatch import control, ingress, launching, sinch_outage
from campaigns.dispatch.batch_states import (
    BATCHES_SHOWN,
    STATE_BY_KEY,
    STATES,
    batch_counts,
    batch_description,
    batch_state,
    local_send,
    replacement_notes,
    send_plan,
    state_filters,
    status_note,
    when,
)
from campaigns.models import Batch, Campaign, Recipient
from campaigns.tracking.dashboard import exclusion_breakdown
from sinch.placeholders import strings

LAUNCH_PERM = "campaigns.launch_campaign"
PAUSE_PERM = "campaigns.pause_campaign"
CANCEL_PERM = "campaigns.cancel_campaign"
DOING = {
    LAUNCH_PERM: "launch a campaign",
    PAUSE_PERM: "pause or resume a campaign",
    CANCEL_PERM: "cancel a campaign",
}
B = Batch.Status
S = Campaign.Status


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
    by_status = counters.counts(campaign.pk)
    breakdown = exclusion_breakdown(
        campaign, by_status.get(Recipient.Status.EXCLUDED, 0)
    )
    excluded = [(row["reason"], row["count"]) for row in breakdown["rows"]]
    message = None
    if campaign.message_snapshot:
        message = "\n".join(strings(campaign.message_snapshot.get("message", {})))
    total = sum(n for n, _ in counts.values())
    scheduled = Batch.objects.filter(
        state_filters(now)["scheduled"], campaign=campaign, is_test=False
    ).values_list("send_after", flat=True)
    scheduled_for = scheduled.order_by("send_after").first()
    # Waves at several times (local-time sends, quiet hours): the last one too.
    scheduled_last = scheduled.order_by("-send_after").first()
    receipt_at = None
    if campaign.cancel_receipt and campaign.cancel_receipt.get("at"):
        receipt_at = when(datetime.fromisoformat(campaign.cancel_receipt["at"]), zone)
    return {
        "sinch_outage": sinch_outage.campaign_reason(campaign),
        "status_note": status_note(campaign, counts, zone, now),
        "sinch_sends_at": when(scheduled_for, zone),
        "sinch_last_at": when(scheduled_last, zone)
        if scheduled_last != scheduled_for
        else "",
        "local_send": local_send(campaign),
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
        "replacements": replacement_notes(campaign, now),
        "ingress": waves_context(
            ingress.Plan(
                send_at=campaign.send_at,
                recipients=0,
                waves=ingress.waves_of(campaign),
            )
            if campaign.ingress_waves
            else None,
            zone,
        ),
        "allowed": transitions.allowed(campaign),
        "quiet_hours_note": display.held_batches_note(campaign),
        "local_waves": launched_local_waves(campaign),
    }


# --- the changelist ---------------------------------------------------------


def _batches(state: str, now: datetime):
    return Batch.objects.filter(
        state_filters(now)[state], campaign=OuterRef("pk"), is_test=False
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
        outage = sinch_outage.campaign_reason(obj)
        if outage:
            parts.insert(0, outage)
        return "; ".join(parts) or obj.get_status_display()

    def change_view(self, request, object_id, form_url="", extra_context=None):
        extra_context = dict(extra_context or {})
        campaign = Campaign.objects.filter(pk=object_id).first()
        if campaign is not None:
            extra_context["allowed"] = transitions.allowed(campaign)
            if extra_context["allowed"]["launched"]:
                extra_context["dispatch"] = dispatch_context(campaign)
        return super().change_view(request, object_id, form_url, extra_context)

    # Actions.

    def _campaign_for(self, request, pk, perm: str) -> Campaign:
        campaign = get_object_or_404(Campaign.objects.select_related("template"), pk=pk)
        if not (
            self.has_view_permission(request, campaign) and request.user.has_perm(perm)
        ):
            raise PermissionDenied(refusal(perm, DOING[perm]))
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
        if campaign.status != S.DRAFT and campaign.launched_at is not None:
            # Reloaded after the launch: who launched it, when, and where to look.
            return self._page(
                request,
                campaign,
                "launch.html",
                f"Launched: {campaign}",
                launched={
                    "by": campaign.launched_by,
                    "at": when(campaign.launched_at, campaign.send_time_zone),
                },
            )
        waves = ingress.plan_for(campaign)
        return self._page(
            request,
            campaign,
            "launch.html",
            f"Launch: {campaign}",
            problems=launching.launch_problems(campaign),
            presend=campaign.presend,
            plan=send_plan(campaign),
            ingress=waves_context(waves, campaign.send_time_zone),
            zones=display.zone_summary(campaign.presend),
            local_waves=display.wave_rows(campaign, waves)
            if display.shows_local_waves(campaign)
            else None,
            lists=list(campaign.lists.all()),
            segments=list(campaign.segments.all()),
            presend_at=when(campaign.presend_at, campaign.send_time_zone),
            drift=drift.audience_drift(campaign),
            approval=approval_context(campaign),
        )

    def _launch(self, request, campaign: Campaign):
        if self._already_launched(request, campaign):
            return self._to_campaign(campaign)
        try:
            inline = launching.launch(campaign, request.user)
        except launching.LaunchError as exc:
            campaign.refresh_from_db()
            if campaign.status == S.LAUNCHING and campaign.status_reason:
                # Interrupted after part of it was frozen: it resumes.
                self.message_user(request, campaign.status_reason, messages.WARNING)
                return self._to_campaign(campaign)
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
        target = plan["send_time"]
        if plan["local"]:
            target = f"{plan['local']} in each recipient's own time zone"
        if plan["mode"] == "now":
            going = "Its batches are being submitted to Sinch now."
        elif plan["mode"] == "held":
            going = (
                f"Its batches are held here until {plan['hold_until']}, then "
                f"scheduled at Sinch for {target}."
            )
        else:
            going = f"Its batches are scheduled at Sinch for {target}."
        waves = ingress.waves_of(campaign)
        if len(waves) > 1:
            why = "Sinch's queue"
            if display.shows_local_waves(campaign):
                why = "recipients' local times, quiet hours, Sinch's queue"
            going += (
                f" It goes in {len(waves)} waves ({why}), the first at "
                f"{when(min(w.at for w in waves), campaign.send_time_zone)}, "
                f"the last at "
                f"{when(max(w.at for w in waves), campaign.send_time_zone)}."
            )
        note = display.held_batches_note(campaign)
        if note:
            going += " " + note
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
                asked = receipt.get("cancel_requested", 0)
                unconfirmed = (
                    f", {asked:,} requested at Sinch and not yet confirmed"
                    if asked
                    else ""
                )
                self.message_user(
                    request,
                    f"Cancelled “{campaign}”: {receipt['prevented']:,} "
                    f"message{'s' if receipt['prevented'] != 1 else ''} prevented, "
                    f"{receipt['already_sent']:,} already gone{unconfirmed}. "
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
            cancellable=transitions.allowed(campaign)["cancel"],
            counts={
                key: {"batches": n, "messages": m} for key, (n, m) in counts.items()
            },
        )
