"""Admin for campaigns: editing drafts, preview and the pre-send check."""

from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.http import Http404, JsonResponse, StreamingHttpResponse
from django.shortcuts import get_object_or_404, redirect
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils.decorators import method_decorator
from django.utils.html import format_html, format_html_join
from django.utils.safestring import mark_safe
from django.views.decorators.http import require_GET, require_POST

from campaigns import transitions
from campaigns.admin import channel_property_fields as props
from campaigns.admin.ab_tests import ABTestAdminMixin, ABTestInline, VariantInline
from campaigns.admin.approval import ApprovalAdminMixin, approval_context
from campaigns.admin.campaign_list import CampaignListAdminMixin
from campaigns.admin.cap_exemption import CapExemptionAdminMixin
from campaigns.admin.dashboard import DashboardAdminMixin
from campaigns.admin.dispatch import LAUNCH_PERM, DispatchAdminMixin, DispatchFilter
from campaigns.admin.forms import CampaignForm, PreviewForm
from campaigns.admin.refusals import VIEW_PERM, change_refusal, refusal
from campaigns.admin.retry import RetryFailedAdminMixin
from campaigns.admin.test_send import SendTestAdminMixin
from campaigns.authoring import presend, preview
from campaigns.compliance import display, exemptions
from campaigns.models import Campaign
from config.lib import key_values
from config.lib.admin import IdRangeGuardMixin
from contacts.models import AuditEvent
from contacts.number_visibility import masked_note, may_see_numbers
from contacts.services.audit import record_audit

# Read-only, the form-only fields give way to what they set, and JSON fields
# to tables and words (business data is never shown as raw JSON).
READ_ONLY_AS = {
    "send_mode": "send_time",
    "campaign_values": "campaign_values_table",
    "channel_properties": "channel_properties_table",
    "channel_priority_order": "channel_order",
}


@admin.register(Campaign)
class CampaignAdmin(
    IdRangeGuardMixin,
    ABTestAdminMixin,
    CampaignListAdminMixin,
    ApprovalAdminMixin,
    CapExemptionAdminMixin,
    DashboardAdminMixin,
    DispatchAdminMixin,
    RetryFailedAdminMixin,
    SendTestAdminMixin,
    admin.ModelAdmin,
):
    form = CampaignForm
    inlines = (VariantInline, ABTestInline)
    list_display = (
        "name",
        "status_label",
        "recipient_count",
        "delivered",
        "failed",
        "reply_count",
        "opt_outs",
        "click_rate",
        "estimated_cost",
        "send_time",
        "pages",
    )
    actions = ("duplicate_selected",)
    list_per_page = 100
    list_filter = ("status", DispatchFilter, "channel", "purpose")
    list_select_related = ("template",)
    search_fields = ("name",)
    filter_horizontal = ("lists", "segments")
    readonly_fields = (
        "frozen_audience",
        "status",
        "send_at",
        "quiet_hours_exemption",
        "tracked_links",
        "created_by",
        "created_at",
        "updated_at",
    )
    fieldsets = (
        (None, {"fields": ("name", "template", "purpose", "status")}),
        ("Audience", {"fields": ("lists", "segments", "frozen_audience", "seed_list")}),
        (
            "Send time",
            {
                "fields": ("send_mode", "send_at_local", "send_time_zone", "send_at"),
                "description": "Send when launched, or at a wall-clock time "
                "in the chosen time zone (stored in UTC).",
            },
        ),
        (
            "Recipients' time zones and quiet hours",
            {
                "fields": (
                    "send_in_local_time",
                    "fallback_time_zone",
                    "multi_zone_rule",
                    "quiet_hours_exempt",
                    "quiet_hours_exemption",
                ),
                "description": "Marketing messages arrive only within each "
                "recipient's quiet-hours window (QUIET_HOURS, local time); "
                "the others are held until their window opens.",
            },
        ),
        (
            "Channel",
            {
                "fields": (
                    "channel",
                    "channel_priority_order",
                    "whatsapp_window_only",
                    "ttl_seconds",
                ),
                "description": "The properties of the campaign's channels "
                "follow, one section per channel.",
            },
        ),
        (
            "Campaign values",
            {
                "fields": ("campaign_values",),
                "description": "Values for the template's placeholders whose "
                "source is the campaign.",
            },
        ),
        (
            "Tracked links",
            {
                "fields": (
                    "track_links",
                    "utm_source",
                    "utm_medium",
                    "utm_campaign",
                    "tracked_links",
                ),
                "description": "Each recipient gets short links of their own "
                "(counted clicks); the preview shows each short link and its target.",
            },
        ),
        ("Record", {"fields": ("created_by", "created_at", "updated_at")}),
    )

    @admin.display(description="send time", ordering="send_at")
    def send_time(self, obj: Campaign) -> str:
        local = obj.local_send_time
        if local is None:
            return "when launched"
        return f"{local:%Y-%m-%d %H:%M} {obj.send_time_zone}"

    @admin.display(description="campaign values")
    def campaign_values_table(self, obj: Campaign) -> str:
        return key_values.key_value_table(obj.campaign_values, empty="None")

    @admin.display(description="channel properties")
    def channel_properties_table(self, obj: Campaign) -> str:
        return key_values.key_value_table(obj.channel_properties, empty="None")

    @admin.display(description="channel priority order")
    def channel_order(self, obj: Campaign) -> str:
        return " → ".join(obj.channels())

    @admin.display(description="audience at the launch")
    def frozen_audience(self, obj: Campaign) -> str:
        """After the freeze, the audience is the recipients; the segments
        are shown as they were evaluated then (editing them later changes
        nothing here)."""
        if obj is None or (obj.frozen_at is None and not obj.frozen_segments):
            return "Not launched: lists and segments are read at the launch."
        lines = [
            format_html(
                "“{}”: {} ({} matched)",
                used["name"],
                used["description"],
                f"{used['matched']:,}",
            )
            for used in obj.frozen_segments or []
        ]
        url = (
            reverse("admin:campaigns_recipient_changelist")
            + f"?campaign__id__exact={obj.pk}"
        )
        lines.append(format_html('<a href="{}">The frozen recipients</a>', url))
        return format_html_join(mark_safe("<br>"), "{}", ((line,) for line in lines))

    @admin.display(description="exemption record")
    def quiet_hours_exemption(self, obj: Campaign) -> str:
        return exemptions.exemption_text(obj)

    @admin.display(description="links and clicks")
    def tracked_links(self, obj: Campaign) -> str:
        """Its frozen links, with the people who clicked each (read-only pages)."""
        n = obj.tracked_links.count() if obj.pk else 0
        if not n:
            return "—"
        links = reverse("admin:campaigns_trackedlink_changelist")
        clicks = reverse("admin:campaigns_click_changelist")
        return format_html(
            '<a href="{}?campaign__id__exact={}">{} tracked link(s)</a> · '
            '<a href="{}?campaign_id={}">every click</a>',
            links,
            obj.pk,
            n,
            clicks,
            obj.pk,
        )

    @admin.display(description="preview")
    def preview_link(self, obj: Campaign) -> str:
        url = reverse("admin:campaigns_campaign_preview", args=[obj.pk])
        return format_html('<a href="{}">Preview</a>', url)

    @admin.display(description="pages")
    def pages(self, obj: Campaign) -> str:
        """The dashboard of a launched campaign and the preview, one column."""
        dashboard = self.dashboard_link(obj)
        if dashboard == "—":
            return self.preview_link(obj)
        return format_html("{}<br>{}", dashboard, self.preview_link(obj))

    def get_urls(self):
        view = self.admin_site.admin_view
        return [
            path(
                "<int:pk>/preview/",
                view(self.preview_view),
                name="campaigns_campaign_preview",
            ),
            path(
                "<int:pk>/presend/",
                view(self.presend_view),
                name="campaigns_campaign_presend",
            ),
            path(
                "<int:pk>/presend/status/",
                view(self.presend_status_view),
                name="campaigns_campaign_presend_status",
            ),
            path(
                "<int:pk>/presend.csv",
                view(self.presend_csv_view),
                name="campaigns_campaign_presend_csv",
            ),
            path(
                "<int:pk>/test-send/",
                view(self.test_send_view),
                name="campaigns_campaign_test_send",
            ),
            path(
                "<int:pk>/retry/",
                view(self.retry_view),
                name="campaigns_campaign_retry",
            ),
            *self.duplicate_urls(),
            *self.cap_exemption_urls(),
            *self.dispatch_urls(),
            *self.approval_urls(),
            *self.dashboard_urls(),
            *self.ab_urls(),
            *super().get_urls(),
        ]

    @method_decorator(require_POST)
    def presend_view(self, request, pk):
        """Run the pre-send check: inline for a small audience, else on a worker."""
        campaign = get_object_or_404(Campaign.objects.select_related("template"), pk=pk)
        if not self.has_change_permission(request, campaign):
            raise PermissionDenied(
                change_refusal(request.user, campaign, "run a pre-send check")
            )
        if presend.request_check(campaign):
            summary = campaign.presend
            self.message_user(
                request,
                f"Pre-send check done: {summary['ok']:,} ok, "
                f"{summary['blocking']:,} blocking, {summary['excluded']:,} excluded.",
            )
        elif campaign.presend_state == Campaign.PresendState.QUEUED:
            self.message_user(
                request,
                f"Pre-send check of {campaign.presend_total:,} audience members "
                "started on the worker; this page shows its progress.",
            )
        else:
            self.message_user(
                request,
                "A pre-send check of this campaign is already running.",
                messages.WARNING,
            )
        return redirect(
            reverse("admin:campaigns_campaign_preview", args=[campaign.pk]) + "#presend"
        )

    @method_decorator(require_GET)
    def presend_status_view(self, request, pk):
        """The check's state and progress, polled by the preview page."""
        campaign = get_object_or_404(Campaign, pk=pk)
        if not self.has_view_permission(request, campaign):
            raise PermissionDenied(refusal(VIEW_PERM, "follow a pre-send check"))
        return JsonResponse(
            {
                "state": campaign.presend_state,
                "running": presend.check_in_progress(campaign),
                "state_label": campaign.get_presend_state_display(),
                "checked": campaign.presend_progress,
                "total": campaign.presend_total,
                "error": campaign.presend_error,
            }
        )

    def can_download_presend(self, request) -> bool:
        """Every recipient's identity and message: for those who author
        campaigns or may export contacts, not for read-only viewers."""
        return any(
            request.user.has_perm(perm)
            for perm in ("campaigns.change_campaign", "contacts.export_contacts")
        )

    @method_decorator(require_GET)
    def presend_csv_view(self, request, pk):
        campaign = get_object_or_404(Campaign, pk=pk)
        if not self.can_download_presend(request):
            raise PermissionDenied(
                refusal("campaigns.change_campaign", "download a pre-send check")
            )
        path = presend.csv_path(campaign)
        if not path.exists():
            raise Http404("No pre-send check has been run for this campaign.")
        full = may_see_numbers(request.user)
        # Identities and rendered texts are personal data: the download is audited.
        record_audit(
            actor=request.user,
            action=AuditEvent.Action.EXPORT,
            target_type="campaign",
            target_id=campaign.pk,
            summary=f"Downloaded the pre-send check CSV of campaign {campaign}"
            + masked_note(full),
        )
        response = StreamingHttpResponse(
            presend.csv_download(campaign, full_numbers=full),
            content_type="text/csv; charset=utf-8",
        )
        response["Content-Disposition"] = f'attachment; filename="{path.name}"'
        return response

    @method_decorator(require_GET)
    def preview_view(self, request, pk):
        campaign = get_object_or_404(Campaign.objects.select_related("template"), pk=pk)
        if not self.has_view_permission(request, campaign):
            raise PermissionDenied(refusal(VIEW_PERM, "preview a campaign"))
        form = PreviewForm(request.GET or None)
        chosen, error, size = None, None, preview.SAMPLE_DEFAULT
        if form.is_valid():
            size = form.cleaned_data["n"] or size
            if form.cleaned_data["q"]:
                try:
                    chosen = preview.find_audience_contact(
                        campaign, form.cleaned_data["q"]
                    )
                except preview.NotInAudience as exc:
                    error = str(exc)
        sample = preview.sample_audience(campaign, size)
        previews = preview.preview_contacts(
            campaign, ([chosen] if chosen else []) + sample
        )
        can_launch = presend.campaign_can_launch(campaign)
        approval = approval_context(campaign)
        # Who may edit it asks for the launch when approval is needed, or
        # when they may not launch it themselves.
        can_request = (
            self.has_change_permission(request, campaign)
            and can_launch[0]
            and approval["open"] is None
            and (approval["needed"] or not request.user.has_perm(LAUNCH_PERM))
        )
        return TemplateResponse(
            request,
            "admin/campaigns/campaign/preview.html",
            {
                **self.admin_site.each_context(request),
                "title": f"Preview: {campaign}",
                "opts": self.opts,
                "original": campaign,
                "form": form,
                "error": error,
                "chosen": previews[0] if chosen else None,
                "sample": previews[1:] if chosen else previews,
                "sample_size": size,
                "variant_links": preview.variant_links(campaign),
                "lists": list(campaign.lists.all()),
                "segments": list(campaign.segments.all()),
                "presend": campaign.presend,
                "zones": display.zone_summary(campaign.presend),
                "can_launch": can_launch,
                "allowed": transitions.allowed(campaign),
                "presend_running": presend.check_in_progress(campaign),
                "can_run_presend": self.has_change_permission(request, campaign),
                "approval": approval,
                "can_request_launch": can_request,
                "can_download_presend": self.can_download_presend(request),
            },
        )

    def get_fieldsets(self, request, obj=None):
        """The fixed sections; after "Channel", one section of typed channel
        properties per channel (channel_property_fields.channel_fieldsets),
        or, read-only, the properties as sent."""
        fieldsets = list(super().get_fieldsets(request, obj))
        at = [name for name, _ in fieldsets].index("Channel") + 1
        if obj is None or self.has_change_permission(request, obj):
            if request.method == "POST":  # shown again with errors
                used = props.posted_channels(request.POST)
            else:
                used = obj.channels() if obj else [Campaign.channel.field.default]
            unshown = props.stored_values(obj)[1] if obj else {}
            fieldsets[at:at] = props.channel_fieldsets(used, unshown)
            return fieldsets
        fields = {"fields": ("sms_sender", "channel_properties")}
        fieldsets[at:at] = [("Channel properties", fields)]
        return tuple(
            (
                title,
                {
                    **options,
                    "fields": tuple(
                        READ_ONLY_AS.get(f, f)
                        for f in options["fields"]
                        if f != "send_at_local"
                    ),
                },
            )
            for title, options in fieldsets
        )

    def has_change_permission(self, request, obj=None) -> bool:
        # Only a draft is edited; a launched campaign is changed by its actions.
        allowed = super().has_change_permission(request, obj)
        return allowed and (obj is None or obj.status == Campaign.Status.DRAFT)

    def has_delete_permission(self, request, obj=None) -> bool:
        # A launched campaign keeps its record: only drafts are deleted.
        allowed = super().has_delete_permission(request, obj)
        return allowed and (obj is None or obj.status == Campaign.Status.DRAFT)

    def save_model(self, request, obj, form, change) -> None:
        if not change:
            obj.created_by = request.user
        super().save_model(request, obj, form, change)
        if "quiet_hours_exempt" in form.changed_data or (
            not change and obj.quiet_hours_exempt
        ):
            exemptions.quiet_hours_exemption_changed(obj, request.user)
