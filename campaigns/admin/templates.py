"""Admin for message templates and their parameters."""

import json

from django.contrib import admin
from django.core.exceptions import ValidationError
from django.utils.html import format_html

from campaigns.models import MessageTemplate, TemplateParameter


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
