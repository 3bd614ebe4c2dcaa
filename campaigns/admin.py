"""Admin for message templates and campaigns."""

import json
from datetime import datetime

from django import forms
from django.contrib import admin
from django.contrib.admin import widgets
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import FileResponse, Http404
from django.shortcuts import get_object_or_404, redirect
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils import timezone
from django.utils.decorators import method_decorator
from django.utils.html import format_html
from django.views.decorators.http import require_GET, require_POST

from campaigns import presend, preview, scheduling
from campaigns.models import Campaign, MessageTemplate, TemplateParameter
from contacts.audit import record_audit
from contacts.models import AuditEvent


class TemplateParameterInline(admin.TabularInline):
    model = TemplateParameter
    extra = 0
    fields = ("name", "source", "contact_field", "attribute", "default")
    readonly_fields = ("name",)
    # Rows follow the placeholders of the text: added and removed on save.
    can_delete = False
    verbose_name = "placeholder"
    verbose_name_plural = "placeholders and where their values come from"

    def has_add_permission(self, request, obj=None) -> bool:
        return False


@admin.register(MessageTemplate)
class MessageTemplateAdmin(admin.ModelAdmin):
    list_display = ("name", "kind", "placeholder_list", "updated_at")
    list_filter = ("kind",)
    search_fields = ("name",)
    inlines = [TemplateParameterInline]
    readonly_fields = ("placeholder_list", "sinch_message", "created_at", "updated_at")
    fieldsets = (
        (None, {"fields": ("name", "kind")}),
        (
            "Text, media, card and choice messages",
            {
                "fields": ("text", "title", "description", "media_url", "choices"),
                "description": "Fill the fields the chosen kind uses; "
                "placeholders are written ${name}.",
            },
        ),
        (
            "Channel template",
            {
                "fields": (
                    "template_channel",
                    "template_id",
                    "template_language",
                    "template_parameters",
                )
            },
        ),
        (
            "What Sinch receives",
            {
                "fields": (
                    "placeholder_list",
                    "sinch_message",
                    "created_at",
                    "updated_at",
                )
            },
        ),
    )

    @admin.display(description="placeholders")
    def placeholder_list(self, obj: MessageTemplate) -> str:
        return ", ".join(obj.placeholders) or "-"

    @admin.display(description="Sinch message object")
    def sinch_message(self, obj: MessageTemplate) -> str:
        if obj.pk is None:
            return "Shown after saving."
        try:
            message = obj.sinch_message()
        except (ValueError, ValidationError) as exc:
            return f"Cannot be built: {exc}"
        return format_html(
            "<pre>{}</pre>",
            json.dumps({"message": message}, indent=2, ensure_ascii=False),
        )

    def save_related(self, request, form, formsets, change) -> None:
        super().save_related(request, form, formsets, change)
        # The inline may have re-saved a row whose placeholder is gone.
        form.instance.sync_parameters()


class NaiveSplitDateTimeField(forms.SplitDateTimeField):
    """A date and a time as a naive wall-clock value: the zone is chosen apart."""

    def compress(self, data_list):
        if not data_list:
            return None
        day, time = data_list
        if day in self.empty_values:
            raise ValidationError(self.error_messages["invalid_date"], "invalid_date")
        if time in self.empty_values:
            raise ValidationError(self.error_messages["invalid_time"], "invalid_time")
        return datetime.combine(day, time)


class ChannelListField(forms.CharField):
    """A comma-separated list of channels, e.g. "WHATSAPP, SMS"."""

    def prepare_value(self, value):
        if isinstance(value, list):
            return ", ".join(str(item) for item in value)
        return value

    def to_python(self, value):
        text = super().to_python(value)
        return [part.strip().upper() for part in text.split(",") if part.strip()]


class CampaignForm(forms.ModelForm):
    NOW, LATER = "now", "later"
    send_mode = forms.ChoiceField(
        label="Send",
        choices=[(NOW, "When launched"), (LATER, "At a date and time")],
        widget=forms.RadioSelect,
        initial=NOW,
    )
    send_at_local = NaiveSplitDateTimeField(
        label="Date and time",
        required=False,
        widget=widgets.AdminSplitDateTime,
        help_text="Wall-clock time in the time zone below.",
    )
    channel_priority_order = ChannelListField(
        required=False,
        help_text="Fallback order, comma-separated, starting with the channel "
        "above, e.g. WHATSAPP, SMS; empty: the channel only.",
    )

    class Meta:
        model = Campaign
        fields = (
            "name",
            "template",
            "purpose",
            "lists",
            "seed_list",
            "send_time_zone",
            "channel",
            "channel_priority_order",
            "ttl_seconds",
            "sms_sender",
            "channel_properties",
            "campaign_values",
        )

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        instance = self.instance
        if instance.send_at is not None:
            self.initial.setdefault("send_mode", self.LATER)
            self.initial.setdefault("send_at_local", instance.local_send_time)

    def clean(self):
        data = super().clean()
        self.instance.send_at = None
        if data.get("send_mode") != self.LATER:
            return data
        local = data.get("send_at_local")
        zone = data.get("send_time_zone")
        if local is None and "send_at_local" not in self.errors:
            self.add_error("send_at_local", "Enter the date and time to send at.")
        if not zone and "send_time_zone" not in self.errors:
            self.add_error("send_time_zone", "Choose the time zone of the send time.")
        if local is None or not zone:
            return data
        try:
            scheduling.time_zone(zone)
        except ValidationError as exc:
            self.add_error("send_time_zone", exc)
            return data
        try:
            self.instance.send_at = scheduling.send_instant(
                local, zone, now=timezone.now()
            )
        except ValidationError as exc:
            self.add_error("send_at_local", exc)
        return data


class PreviewForm(forms.Form):
    q = forms.CharField(
        label="Contact",
        required=False,
        max_length=200,
        help_text="Phone number in any format, another identity, "
        "an external id or a contact id.",
    )
    n = forms.IntegerField(
        label="Sample size",
        required=False,
        min_value=1,
        max_value=preview.SAMPLE_MAX,
        initial=preview.SAMPLE_DEFAULT,
    )


@admin.register(Campaign)
class CampaignAdmin(admin.ModelAdmin):
    form = CampaignForm
    list_display = (
        "name",
        "template",
        "channel",
        "status",
        "send_time",
        "created_at",
        "preview_link",
    )
    list_filter = ("status", "channel", "purpose")
    list_select_related = ("template",)
    search_fields = ("name",)
    filter_horizontal = ("lists",)
    readonly_fields = ("status", "send_at", "created_by", "created_at", "updated_at")
    fieldsets = (
        (None, {"fields": ("name", "template", "purpose", "status")}),
        ("Audience", {"fields": ("lists", "seed_list")}),
        (
            "Send time",
            {
                "fields": ("send_mode", "send_at_local", "send_time_zone", "send_at"),
                "description": "Send when launched, or at a wall-clock time "
                "in the chosen time zone (stored in UTC).",
            },
        ),
        (
            "Channel",
            {
                "fields": (
                    "channel",
                    "channel_priority_order",
                    "ttl_seconds",
                    "sms_sender",
                    "channel_properties",
                )
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
        ("Record", {"fields": ("created_by", "created_at", "updated_at")}),
    )

    @admin.display(description="send time", ordering="send_at")
    def send_time(self, obj: Campaign) -> str:
        local = obj.local_send_time
        if local is None:
            return "when launched"
        return f"{local:%Y-%m-%d %H:%M} {obj.send_time_zone}"

    @admin.display(description="preview")
    def preview_link(self, obj: Campaign) -> str:
        url = reverse("admin:campaigns_campaign_preview", args=[obj.pk])
        return format_html('<a href="{}">Preview</a>', url)

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
                "<int:pk>/presend.csv",
                view(self.presend_csv_view),
                name="campaigns_campaign_presend_csv",
            ),
            *super().get_urls(),
        ]

    @method_decorator(require_POST)
    def presend_view(self, request, pk):
        """Run the pre-send check inline (a background task is a later issue)."""
        campaign = get_object_or_404(Campaign.objects.select_related("template"), pk=pk)
        if not self.has_change_permission(request, campaign):
            raise PermissionDenied
        result = presend.run_presend_check(campaign)
        self.message_user(
            request,
            f"Pre-send check done: {result.ok:,} ok, {result.blocking:,} blocking, "
            f"{result.excluded:,} excluded.",
        )
        return redirect("admin:campaigns_campaign_preview", pk=campaign.pk)

    @method_decorator(require_GET)
    def presend_csv_view(self, request, pk):
        campaign = get_object_or_404(Campaign, pk=pk)
        if not self.has_view_permission(request, campaign):
            raise PermissionDenied
        path = presend.csv_path(campaign)
        if not path.exists():
            raise Http404("No pre-send check has been run for this campaign.")
        # Identities and rendered texts are personal data: the download is audited.
        record_audit(
            actor=request.user,
            action=AuditEvent.Action.EXPORT,
            target_type="campaign",
            target_id=campaign.pk,
            summary=f"Downloaded the pre-send check CSV of campaign {campaign}",
        )
        return FileResponse(
            open(path, "rb"),  # closed by FileResponse
            as_attachment=True,
            filename=path.name,
            content_type="text/csv",
        )

    @method_decorator(require_GET)
    def preview_view(self, request, pk):
        campaign = get_object_or_404(Campaign.objects.select_related("template"), pk=pk)
        if not self.has_view_permission(request, campaign):
            raise PermissionDenied
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
                "lists": list(campaign.lists.all()),
                "presend": campaign.presend,
                "can_launch": presend.campaign_can_launch(campaign),
                "can_run_presend": self.has_change_permission(request, campaign),
            },
        )

    def get_fieldsets(self, request, obj=None):
        fieldsets = super().get_fieldsets(request, obj)
        if obj is None or self.has_change_permission(request, obj):
            return fieldsets
        # Read-only: the form-only send fields give way to the send time shown.
        return tuple(
            (
                title,
                {
                    **options,
                    "fields": tuple(
                        "send_time" if f == "send_mode" else f
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

    def save_model(self, request, obj, form, change) -> None:
        if not change:
            obj.created_by = request.user
        super().save_model(request, obj, form, change)
