"""Admin: the delivery dashboard of a campaign, its live figures and its CSV.

Thin views over campaigns.tracking.dashboard. Whoever may view the campaign sees the
dashboard (figures only); the per-recipient CSV holds every identity, so it
is for those who author campaigns or may export contacts (as the pre-send
CSV), and every download is audited.
"""

from django.contrib import admin
from django.core.exceptions import PermissionDenied
from django.http import JsonResponse, StreamingHttpResponse
from django.shortcuts import get_object_or_404
from django.template.loader import render_to_string
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils import timezone
from django.utils.decorators import method_decorator
from django.utils.html import format_html
from django.views.decorators.http import require_GET

from campaigns.admin.ab_tests import ab_context
from campaigns.admin.approval import approval_context
from campaigns.admin.refusals import refusal
from campaigns.admin.waves import launched_local_waves
from campaigns.compliance import display, footer
from campaigns.dispatch import sinch_outage
from campaigns.models import Campaign
from campaigns.tracking import dashboard as data
from campaigns.tracking import results_csv
from contacts.models import AuditEvent
from contacts.number_visibility import masked_note, may_see_numbers
from contacts.services.audit import record_audit

VIEW_PERM = "campaigns.view_campaign"
EXPORT_PERMS = ("campaigns.change_campaign", "contacts.export_contacts")
POLL_MS = 3000


class DashboardAdminMixin:
    """Wire `dashboard_urls()` into get_urls and "dashboard_link" into
    list_display."""

    def dashboard_urls(self):
        view = self.admin_site.admin_view
        return [
            path(
                "<int:pk>/dashboard/",
                view(self.dashboard_view),
                name="campaigns_campaign_dashboard",
            ),
            path(
                "<int:pk>/dashboard/live/",
                view(self.dashboard_live_view),
                name="campaigns_campaign_dashboard_live",
            ),
            path(
                "<int:pk>/results.csv",
                view(self.results_csv_view),
                name="campaigns_campaign_results_csv",
            ),
        ]

    @admin.display(description="delivery")
    def dashboard_link(self, obj: Campaign) -> str:
        if obj.status == Campaign.Status.DRAFT:
            return "—"
        url = reverse("admin:campaigns_campaign_dashboard", args=[obj.pk])
        return format_html('<a href="{}">Dashboard</a>', url)

    def can_export_results(self, request) -> bool:
        return any(request.user.has_perm(perm) for perm in EXPORT_PERMS)

    def _viewable(self, request, pk) -> Campaign:
        campaign = get_object_or_404(Campaign, pk=pk)
        if not self.has_view_permission(request, campaign):
            raise PermissionDenied(refusal(VIEW_PERM, "see a campaign's dashboard"))
        return campaign

    def _recipients_url(self, request, campaign: Campaign) -> str | None:
        if not request.user.has_perm("campaigns.view_recipient"):
            return None
        return (
            reverse("admin:campaigns_recipient_changelist")
            + f"?campaign__id__exact={campaign.pk}"
        )

    def _replies_url(self, request, campaign: Campaign) -> str | None:
        if not request.user.has_perm("campaigns.view_inboundmessage"):
            return None
        return (
            reverse("admin:campaigns_inboundmessage_changelist")
            + f"?campaign__id__exact={campaign.pk}"
        )

    @method_decorator(require_GET)
    def dashboard_view(self, request, pk):
        campaign = self._viewable(request, pk)
        recipients_url = self._recipients_url(request, campaign)
        return TemplateResponse(
            request,
            "admin/campaigns/campaign/dashboard.html",
            {
                **self.admin_site.each_context(request),
                "title": f"Delivery: {campaign}",
                "opts": self.opts,
                "original": campaign,
                "d": data.page(campaign),
                "live_url": reverse(
                    "admin:campaigns_campaign_dashboard_live", args=[campaign.pk]
                ),
                "poll_ms": POLL_MS,
                "recipients_url": recipients_url,
                "replies_url": self._replies_url(request, campaign),
                "can_export": self.can_export_results(request),
                "footer_note": footer.frozen_note(campaign),
                "quiet_hours_note": display.held_batches_note(campaign),
                "local_waves": launched_local_waves(campaign),
                "approval": approval_context(campaign),
                "sinch_outage": sinch_outage.campaign_reason(campaign),
                "ab": ab_context(campaign, request.user),
            },
        )

    @method_decorator(require_GET)
    def dashboard_live_view(self, request, pk):
        campaign = self._viewable(request, pk)
        live = data.live(campaign)
        # The failure reasons and the batch table, as the page shows them.
        context = {
            "d": {
                "fig": {"counts": live["counts"]},
                "failures": data.failure_breakdown(campaign, live["counts"]["failed"]),
                "batches": data.batch_overview(campaign),
            },
            "original": campaign,
            "recipients_url": self._recipients_url(request, campaign),
        }
        for part in ("failures", "batches"):
            live[f"{part}_html"] = render_to_string(
                f"admin/campaigns/campaign/_dashboard_{part}.html", context, request
            )
        response = JsonResponse(live)
        response["Cache-Control"] = "no-store"
        return response

    @method_decorator(require_GET)
    def results_csv_view(self, request, pk):
        campaign = get_object_or_404(Campaign, pk=pk)
        if not self.can_export_results(request):
            raise PermissionDenied(
                refusal(EXPORT_PERMS[0], "download every recipient's result")
            )
        full = may_see_numbers(request.user)
        # Identities and outcomes are personal data: the download is audited.
        record_audit(
            actor=request.user,
            action=AuditEvent.Action.EXPORT,
            target_type="campaign",
            target_id=campaign.pk,
            summary=f"Downloaded the per-recipient results of campaign {campaign}"
            + masked_note(full),
        )
        stamp = timezone.now().strftime("%Y%m%d-%H%M%S")
        response = StreamingHttpResponse(
            results_csv.stream_results(campaign, full_numbers=full),
            content_type="text/csv; charset=utf-8",
        )
        response["Content-Disposition"] = (
            f'attachment; filename="campaign-{campaign.pk}-results-{stamp}.csv"'
        )
        return response
