"""Admin: request a launch, approve or reject it, and the approvals' history.

The views are thin: campaigns.compliance.approval does the work and writes
the audit trail. Requesting needs the right to edit the campaign (Marketing,
Sender); deciding needs campaigns.launch_campaign (Sender), and the service
refuses the requester. Editing a campaign here withdraws its open request or
approval at once (`save_related`).
"""

from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.db.models import OuterRef, Subquery
from django.http import HttpResponseNotAllowed
from django.shortcuts import get_object_or_404, redirect
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils.decorators import method_decorator
from django.views.decorators.http import require_POST

from campaigns.admin.refusals import change_refusal, refusal
from campaigns.authoring import presend
from campaigns.compliance import approval as approvals
from campaigns.compliance import drift
from campaigns.dispatch.batch_states import when
from campaigns.models import Campaign, LaunchApproval
from config.lib.admin import DateHierarchyGuardMixin, ReadOnlyAdminMixin
from sinch.placeholders import strings

Decision = LaunchApproval.Decision


def approval_context(campaign: Campaign) -> dict:
    """The approval rule's state for the preview, launch and campaign pages."""
    status = approvals.status(campaign)
    zone = campaign.send_time_zone
    latest = status.latest
    return {
        "needed": status.needed,
        "open": status.open,
        "latest": latest,
        "problems": status.problems,
        "approved": status.approved,
        "requested_at": when(latest.requested_at, zone) if latest else "",
        "decided_at": when(latest.decided_at, zone) if latest else "",
        "withdrawn_at": when(latest.withdrawn_at, zone) if latest else "",
        "url": reverse("admin:campaigns_campaign_approval", args=[campaign.pk]),
    }


def message_text(campaign: Campaign) -> str:
    """The message as the template defines it now, placeholders kept."""
    try:
        return "\n".join(strings(campaign.template.sinch_message()))
    except ValueError as exc:
        return f"(the template cannot be built: {exc})"


class ApprovalAdminMixin:
    """Request and decide views, the changelist's approval column and the
    withdrawal on edit. Wire `approval_urls()` into get_urls and
    "approval_state" into list_display."""

    def approval_urls(self):
        view = self.admin_site.admin_view
        return [
            path(
                "<int:pk>/request-launch/",
                view(self.request_launch_view),
                name="campaigns_campaign_request_launch",
            ),
            path(
                "<int:pk>/approval/",
                view(self.approval_view),
                name="campaigns_campaign_approval",
            ),
        ]

    def get_queryset(self, request):
        queryset = super().get_queryset(request)
        match = getattr(request, "resolver_match", None)
        if match and match.url_name == "campaigns_campaign_changelist":
            open_ones = LaunchApproval.objects.filter(
                campaign=OuterRef("pk"),
                withdrawn_at__isnull=True,
                decision__in=[Decision.PENDING, Decision.APPROVED],
            )
            queryset = queryset.annotate(
                open_approval=Subquery(open_ones.values("decision")[:1])
            )
        return queryset

    @admin.display(description="approval")
    def approval_state(self, obj: Campaign) -> str:
        if obj.status != Campaign.Status.DRAFT:
            return "—"
        state = getattr(obj, "open_approval", None)
        if state == Decision.PENDING:
            return "Waiting for approval"
        if state == Decision.APPROVED:
            return "Approved"
        return "—"

    def change_view(self, request, object_id, form_url="", extra_context=None):
        extra_context = dict(extra_context or {})
        campaign = Campaign.objects.filter(pk=object_id).first()
        # A draft shows whether it needs approval; a launched campaign, the
        # approval it was launched with.
        if campaign is not None and (
            campaign.status == Campaign.Status.DRAFT or campaign.approvals.exists()
        ):
            extra_context["approval"] = approval_context(campaign)
        return super().change_view(request, object_id, form_url, extra_context)

    def save_related(self, request, form, formsets, change) -> None:
        super().save_related(request, form, formsets, change)
        changed = form.has_changed() or any(f.has_changed() for f in formsets)
        if not (change and changed):
            return
        fields = ", ".join(form.changed_data) or "related rows"
        withdrawn = approvals.withdraw(
            form.instance,
            request.user,
            f"the campaign was edited by {request.user.get_username()} ({fields})",
        )
        if withdrawn is not None:
            what = "approval" if withdrawn.decision == Decision.APPROVED else "request"
            self.message_user(
                request,
                f"The launch {what} was withdrawn because the campaign changed: "
                "run the pre-send "
                "check and request the launch again.",
                messages.WARNING,
            )

    @method_decorator(require_POST)
    def request_launch_view(self, request, pk):
        campaign = get_object_or_404(Campaign.objects.select_related("template"), pk=pk)
        if not self.has_change_permission(request, campaign):
            raise PermissionDenied(
                change_refusal(request.user, campaign, "request a launch")
            )
        link = request.build_absolute_uri(
            reverse("admin:campaigns_campaign_approval", args=[campaign.pk])
        )
        try:
            approvals.request_launch(campaign, request.user, link=link)
        except approvals.ApprovalError as exc:
            self.message_user(request, f"Not requested: {exc}", messages.ERROR)
        else:
            self.message_user(
                request,
                "Launch requested: the Senders see it on the admin home (and by "
                "e-mail where they have an address). A Sender other than you "
                "approves or rejects it.",
                messages.SUCCESS,
            )
        return redirect(
            reverse("admin:campaigns_campaign_preview", args=[campaign.pk])
            + "#approval"
        )

    def approval_view(self, request, pk):
        if request.method not in ("GET", "POST"):
            return HttpResponseNotAllowed(["GET", "POST"])
        campaign = get_object_or_404(Campaign.objects.select_related("template"), pk=pk)
        if not self.has_view_permission(request, campaign):
            raise PermissionDenied(
                refusal("campaigns.view_campaign", "see a launch approval")
            )
        if request.method == "POST":
            return self._decide(request, campaign)
        context = approval_context(campaign)
        pending = context["open"]
        if pending is not None and pending.decision != Decision.PENDING:
            pending = None
        summary = campaign.presend or {}
        moved = drift.audience_drift(campaign)
        return TemplateResponse(
            request,
            "admin/campaigns/campaign/approval.html",
            {
                **self.admin_site.each_context(request),
                "title": f"Launch approval: {campaign}",
                "opts": self.opts,
                "original": campaign,
                "approval": context,
                "pending": pending,
                "message_text": message_text(campaign),
                "presend": summary,
                "presend_at": when(campaign.presend_at, campaign.send_time_zone),
                "drift": moved,
                "lists": list(campaign.lists.order_by("name")),
                "segments": list(campaign.segments.all()),
                "send_time": when(campaign.send_at, campaign.send_time_zone)
                or "when launched",
                "may_decide": request.user.has_perm(approvals.LAUNCH_PERM),
                "is_requester": pending is not None
                and pending.requested_by_id == request.user.pk,
                "history": list(
                    campaign.approvals.select_related("requested_by", "decided_by")[:20]
                ),
                "can_launch_now": presend.campaign_can_launch(campaign)[0]
                and not context["problems"],
            },
        )

    def _decide(self, request, campaign: Campaign):
        decision = request.POST.get("decision")
        if decision not in ("approve", "reject"):
            self.message_user(
                request, "Choose to approve or to reject the launch.", messages.ERROR
            )
            return redirect("admin:campaigns_campaign_approval", campaign.pk)
        try:
            approval_id = int(request.POST.get("approval", ""))
        except ValueError:
            approval_id = -1
        try:
            approvals.decide(
                campaign,
                request.user,
                approve=decision == "approve",
                approval_id=approval_id,
                reason=request.POST.get("reason", ""),
            )
        except approvals.ApprovalError as exc:
            self.message_user(request, f"Nothing was decided: {exc}", messages.ERROR)
            return redirect("admin:campaigns_campaign_approval", campaign.pk)
        if decision == "approve":
            self.message_user(
                request,
                f"Approved the launch of “{campaign}”: a Sender can launch it now.",
                messages.SUCCESS,
            )
        else:
            self.message_user(
                request,
                f"Rejected the launch of “{campaign}”; the requester is told why.",
                messages.SUCCESS,
            )
        return redirect("admin:campaigns_campaign_approval", campaign.pk)


@admin.register(LaunchApproval)
class LaunchApprovalAdmin(
    DateHierarchyGuardMixin, ReadOnlyAdminMixin, admin.ModelAdmin
):
    """The history of launch requests and decisions (read-only)."""

    list_display = (
        "campaign",
        "state",
        "requested_by",
        "requested_at",
        "decided_by",
        "decided_at",
        "audience",
        "withdrawn_reason",
    )
    list_filter = ("decision",)
    list_select_related = ("campaign", "requested_by", "decided_by")
    search_fields = ("campaign__name",)
    date_hierarchy = "requested_at"

    @admin.display(description="state")
    def state(self, obj: LaunchApproval) -> str:
        return obj.state_label

    @admin.display(description="audience lists")
    def audience_lists(self, obj: LaunchApproval) -> str:
        """The lists at the request, by name (stored as JSON)."""
        return ", ".join(
            str(item.get("name", item)) if isinstance(item, dict) else str(item)
            for item in obj.lists or []
        )

    def get_fields(self, request, obj=None):
        # The lists in words, not as the JSON they are stored in.
        return [
            "audience_lists" if f == "lists" else f
            for f in super().get_fields(request, obj)
        ]
