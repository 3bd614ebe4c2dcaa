"""Admin: the campaign list's figures, the status label, and Duplicate.

The figures come from annotations (campaigns.tracking.campaign_list): the
page reads them with the campaigns, in one query, and sorts by any of them.
Duplicate (a button on the campaign page, an action on the list) copies a
campaign as a new draft (campaigns.authoring.duplicating) and opens it.
"""

from django.conf import settings
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.shortcuts import get_object_or_404, redirect
from django.urls import path
from django.utils.decorators import method_decorator
from django.utils.html import format_html
from django.views.decorators.http import require_POST

from campaigns.admin.refusals import refusal
from campaigns.authoring import duplicating
from campaigns.models import Campaign, Recipient
from campaigns.models.states import ENDED
from campaigns.tracking import campaign_list

ADD_PERM = "campaigns.add_campaign"
S = Campaign.Status
# The label's colour class by status: what a marketer should notice.
STATUS_CLASS = {
    S.DRAFT: "draft",
    S.LAUNCHING: "active",
    S.SCHEDULED: "active",
    S.SUBMITTING: "active",
    S.SUBMITTED: "active",
    S.PAUSED: "paused",
    S.COMPLETED: "done",
    S.CANCELLED: "stopped",
    S.FAILED: "failed",
}
CHANGELIST = "campaigns_campaign_changelist"


def _count(obj: Campaign, name: str) -> str:
    if obj.status == S.DRAFT:
        return "—"
    return f"{getattr(obj, name, 0):,}"


# Column names are not those of the campaign's relations (recipients,
# replies): the list would sort by the relation instead.
class CampaignListAdminMixin:
    """Figures columns for list_display, and the Duplicate view and action.

    Wire `duplicate_urls()` into get_urls and "duplicate_selected" into actions.
    """

    def get_queryset(self, request):
        queryset = super().get_queryset(request)
        match = getattr(request, "resolver_match", None)
        if match and match.url_name == CHANGELIST:
            queryset = campaign_list.with_figures(queryset)
        return queryset

    def change_view(self, request, object_id, form_url="", extra_context=None):
        """The campaign page offers only the buttons that make sense now."""
        extra_context = dict(extra_context or {})
        campaign = Campaign.objects.filter(pk=object_id).only("status").first()
        if campaign is not None:
            extra_context["ended"] = campaign.status in ENDED
            # One probe of the (campaign, status) index, whatever the size.
            extra_context["has_failures"] = Recipient.objects.filter(
                campaign=campaign, is_test=False, status=Recipient.Status.FAILED
            ).exists()
        return super().change_view(request, object_id, form_url, extra_context)

    @admin.display(description="status", ordering="status")
    def status_label(self, obj: Campaign) -> str:
        """The status as a coloured label; under it, a draft's approval state
        or a launched campaign's batches (dispatch_state)."""
        label = format_html(
            '<span class="status-label status-{}">{}</span>',
            STATUS_CLASS.get(obj.status, "draft"),
            obj.get_status_display(),
        )
        if obj.status == S.DRAFT:
            detail, kind = self.approval_state(obj), "approval"
        else:
            detail, kind = self.dispatch_state(obj), "dispatch"
        if detail in ("—", obj.get_status_display()):
            return label
        return format_html(
            '{}<br><span class="status-detail status-{}">{}</span>',
            label,
            kind,
            detail,
        )

    @admin.display(description="recipients", ordering="recipients_count")
    def recipient_count(self, obj: Campaign) -> str:
        return _count(obj, "recipients_count")

    @admin.display(description="delivered", ordering="delivered_percent")
    def delivered(self, obj: Campaign) -> str:
        if obj.status == S.DRAFT:
            return "—"
        return campaign_list.percent_text(
            getattr(obj, "delivered_count", 0), getattr(obj, "expected_count", 0)
        )

    @admin.display(description="failed", ordering="failed_count")
    def failed(self, obj: Campaign) -> str:
        return _count(obj, "failed_count")

    @admin.display(description="replies", ordering="replies_count")
    def reply_count(self, obj: Campaign) -> str:
        return _count(obj, "replies_count")

    @admin.display(description="opt-outs", ordering="opt_outs_count")
    def opt_outs(self, obj: Campaign) -> str:
        return _count(obj, "opt_outs_count")

    @admin.display(description="clicked", ordering="click_percent")
    def click_rate(self, obj: Campaign) -> str:
        """Unique clickers of delivered; "—" without tracked links."""
        if obj.status == S.DRAFT:
            return "—"
        return campaign_list.click_rate_text(
            getattr(obj, "has_links", False),
            getattr(obj, "clickers_count", 0),
            getattr(obj, "delivered_count", 0),
        )

    @admin.display(description="cost (est.)", ordering="cost_estimate")
    def estimated_cost(self, obj: Campaign) -> str:
        return campaign_list.cost_text(
            getattr(obj, "cost_estimate", None), settings.SMS_PRICE_CURRENCY
        )

    # Duplicate.

    def duplicate_urls(self):
        return [
            path(
                "<int:pk>/duplicate/",
                self.admin_site.admin_view(self.duplicate_view),
                name="campaigns_campaign_duplicate",
            )
        ]

    def _duplicated(self, request, campaign: Campaign, copy: Campaign) -> None:
        notes = ["Choose its send time, run its pre-send check, then launch it."]
        if campaign.quiet_hours_exempt or campaign.cap_exempt_at:
            notes.append(
                "The original's exemptions were not copied: a Compliance user "
                "grants them again if this one needs them."
            )
        self.message_user(
            request,
            f"Created the draft “{copy}”, a copy of “{campaign}” with its "
            "template, audience and channel settings. " + " ".join(notes),
            messages.SUCCESS,
        )

    @method_decorator(require_POST)
    def duplicate_view(self, request, pk):
        campaign = get_object_or_404(Campaign, pk=pk)
        if not (
            self.has_view_permission(request, campaign)
            and self.has_add_permission(request)
        ):
            raise PermissionDenied(refusal(ADD_PERM, "duplicate a campaign"))
        copy = duplicating.duplicate_campaign(campaign, request.user)
        self._duplicated(request, campaign, copy)
        return redirect("admin:campaigns_campaign_change", copy.pk)

    @admin.action(
        description="Duplicate the selected campaigns as new drafts",
        permissions=["add"],
    )
    def duplicate_selected(self, request, queryset):
        originals = list(queryset.order_by("pk"))
        copies = [duplicating.duplicate_campaign(c, request.user) for c in originals]
        if len(copies) == 1:
            self._duplicated(request, originals[0], copies[0])
            return redirect("admin:campaigns_campaign_change", copies[0].pk)
        self.message_user(
            request,
            f"Created {len(copies)} drafts: "
            + ", ".join(f"“{copy}”" for copy in copies)
            + ". Each needs its send time and pre-send check before its launch.",
            messages.SUCCESS,
        )
        return None
