"""Admin for message templates and their parameters."""

import json

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import ValidationError
from django.db import models
from django.utils.html import format_html

from campaigns.admin.forms import ParameterLinesField
from campaigns.admin.template_rows import (
    GROUP_IDS,
    OVERRIDES_GROUP,
    ROW_INLINES,
    posted_inlines,
)
from campaigns.authoring import writing_help
from campaigns.compliance import approval as approvals
from campaigns.compliance import footer
from campaigns.models import MessageTemplate, TemplateParameter

Kind = MessageTemplate.Kind

# The channel template's own fields, beside the text fields of KIND_FIELDS.
CHANNEL_TEMPLATE_EXTRA = ("template_channel", "template_parameters")
# Other form fields and inline groups a kind shows, beside KIND_FIELDS.
KIND_EXTRA = {
    Kind.LOCATION.value: ["latitude", "longitude"],
    Kind.OMNI_TEMPLATE.value: ["template_parameters"],
}
PLACEHOLDER_HELP = "Placeholders such as ${first_name} work here."
PARAMETERS_HELP = (
    "One parameter per line: key = value. WhatsApp names them by component: "
    "body[1]text = ${first_name} (the body's first parameter), "
    "header[1]text or header[1]image.link = https://… (the header), "
    "button[0]url[1]text = ${code} or button[0]quick_reply[1]payload = yes "
    "(a button)."
)


def kind_form_fields() -> dict[str, list[str]]:
    """The form fields each kind uses, by kind: the rest are hidden on the page.

    Built from MessageTemplate.KIND_FIELDS, so the model stays the one place
    that knows which fields a kind uses.
    """
    fields = {
        kind.value: list(names) for kind, names in MessageTemplate.KIND_FIELDS.items()
    }
    fields[Kind.CHANNEL_TEMPLATE.value] += CHANNEL_TEMPLATE_EXTRA
    for kind, names in KIND_EXTRA.items():
        fields[kind] += names
    for kind, names in GROUP_IDS.items():
        fields[kind] += names
    for kind in fields:
        if kind != Kind.CHANNEL_TEMPLATE.value:
            fields[kind].append(OVERRIDES_GROUP)
    return fields


# Every text field a message kind (not the channel template) reads.
PLACEHOLDER_FIELDS = tuple(
    dict.fromkeys(
        name
        for kind, names in MessageTemplate.KIND_FIELDS.items()
        if kind not in (Kind.CHANNEL_TEMPLATE, Kind.OMNI_TEMPLATE)
        for name in names
    )
)


class TemplateParameterInline(admin.TabularInline):
    model = TemplateParameter
    extra = 0
    fields = ("name", "source", "contact_field", "attribute", "default")
    readonly_fields = ("name",)
    # Rows follow the placeholders of the text: added and removed on save.
    can_delete = False
    verbose_name = "placeholder"
    verbose_name_plural = "placeholders and where their values come from"
    # Narrow inputs: the row fits the page, its default column included.
    formfield_overrides = {
        models.CharField: {"widget": forms.TextInput(attrs={"size": 18})}
    }

    def has_add_permission(self, request, obj=None) -> bool:
        return False


@admin.register(MessageTemplate)
class MessageTemplateAdmin(admin.ModelAdmin):
    list_display = ("name", "kind", "placeholder_list", "updated_at")
    list_filter = ("kind",)
    search_fields = ("name",)
    inlines = [*ROW_INLINES, TemplateParameterInline]
    readonly_fields = (
        "campaigns_using",
        "placeholder_list",
        "sinch_message",
        "sms_opt_out",
        "created_at",
        "updated_at",
    )
    fieldsets = (
        (
            None,
            {
                "fields": ("name", "kind", "campaigns_using"),
                "description": "Placeholders written ${name}, e.g. ${first_name}, "
                "work in any text field of the message. After saving, "
                "each placeholder gets a row at the bottom of the page: choose "
                "where its value comes from and, if you like, a default.",
            },
        ),
        (
            "Text, media, card, choice, carousel, list and location messages",
            {
                "fields": (
                    "text",
                    "title",
                    "description",
                    "media_url",
                    "choices",
                    ("latitude", "longitude"),
                    "label",
                ),
                "description": "Only the fields of the chosen kind are used; "
                "the others are kept but ignored. A carousel's cards and a "
                "list's items are edited below.",
            },
        ),
        (
            "Contact info",
            {
                "fields": (
                    "contact_name",
                    "contact_phones",
                    "contact_emails",
                    "contact_company",
                ),
                "description": "Used by the contact info kind only: the "
                "contact card the recipient can save.",
            },
        ),
        (
            "Channel template",
            {
                "fields": (
                    "template_channel",
                    "template_id",
                    "template_version",
                    "template_language",
                    "template_parameters",
                ),
                "description": "Used by the channel template and omni template "
                "kinds only. An omni template is one of Sinch's Template "
                "Management; it needs its id and version.",
            },
        ),
        (
            "What Sinch receives",
            {
                "fields": (
                    "placeholder_list",
                    "sinch_message",
                    "sms_opt_out",
                    "created_at",
                    "updated_at",
                )
            },
        ),
    )

    class Media:
        # Shows only the fields of the chosen kind; without JS all are shown.
        # The writing help (counter, syntax warnings, picker, preview) reads
        # the rules the page carries as JSON (writing_help.editor_config).
        js = (
            "campaigns/template_kind.js",
            "campaigns/template_rules.js",
            "campaigns/template_writing.js",
        )

    def render_change_form(
        self, request, context, add=False, change=False, form_url="", obj=None
    ):
        context["writing_help"] = writing_help.editor_config(obj)
        return super().render_change_form(request, context, add, change, form_url, obj)

    def get_inline_instances(self, request, obj=None):
        return posted_inlines(request, super().get_inline_instances(request, obj))

    def formfield_for_dbfield(self, db_field, request, **kwargs):
        if db_field.name == "template_parameters":
            return ParameterLinesField(
                label="Template parameters", required=False, help_text=PARAMETERS_HELP
            )
        field = super().formfield_for_dbfield(db_field, request, **kwargs)
        if field is not None and db_field.name in PLACEHOLDER_FIELDS:
            field.help_text = f"{field.help_text} {PLACEHOLDER_HELP}".strip()
        if field is not None and db_field.name == "text":
            # Short enough that the counter below it shows at 768 px high.
            field.widget.attrs["rows"] = 5
        return field

    def formfield_for_choice_field(self, db_field, request, **kwargs):
        if db_field.name == "kind":
            # The script reads which fields each kind uses from the select.
            kwargs["widget"] = forms.Select(
                attrs={"data-kind-fields": json.dumps(kind_form_fields())}
            )
        return super().formfield_for_choice_field(db_field, request, **kwargs)

    @admin.display(description="used by")
    def campaigns_using(self, obj: MessageTemplate) -> str:
        if obj.pk is None:
            return "-"
        campaigns = list(obj.campaigns.only("name", "frozen_at").order_by("name"))
        if not campaigns:
            return "No campaign yet."
        frozen = [c.name for c in campaigns if c.frozen_at]
        drafts = [c.name for c in campaigns if not c.frozen_at]
        parts = []
        if drafts:
            parts.append(
                f"Draft campaigns, which get your changes: {', '.join(drafts)}."
            )
        if frozen:
            parts.append(
                "Launched campaigns, which keep the message as it was at "
                f"launch: {', '.join(frozen)}."
            )
        return " ".join(parts)

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

    @admin.display(description="SMS opt-out")
    def sms_opt_out(self, obj: MessageTemplate) -> str:
        if obj.pk is None:
            return "Shown after saving."
        warning = footer.template_warning(obj)
        if warning:
            return format_html('<strong class="opt-out-warning">{}</strong>', warning)
        if obj.kind != MessageTemplate.Kind.TEXT:
            return (
                "The compliance footer is added to text messages only; other "
                "kinds need their own opt-out wording on SMS."
            )
        conf = footer.footer_settings()
        if conf.enabled:
            return (
                "Marketing SMS campaigns append the compliance footer "
                f"“{conf.line(conf.opt_out)}” (in the contact's language where "
                "configured), unless the text already ends with it."
            )
        return "The text tells people how to opt out."

    def save_related(self, request, form, formsets, change) -> None:
        super().save_related(request, form, formsets, change)
        # Rows may have gained or lost placeholders; the inline may have
        # re-saved a row whose placeholder is gone.
        form.instance.update_placeholders()
        if change and (form.has_changed() or any(f.has_changed() for f in formsets)):
            # The drafts using it would send something else than was approved.
            withdrawn = approvals.withdraw_for_template(
                form.instance,
                request.user,
                f"its template “{form.instance}” was edited by "
                f"{request.user.get_username()}",
            )
            if withdrawn:
                self.message_user(
                    request,
                    f"The launch approval or request of {withdrawn} draft "
                    f"campaign{'s' if withdrawn != 1 else ''} using this template "
                    "was withdrawn: they need a new pre-send check and request.",
                    messages.WARNING,
                )
        # A warning, not an error: the template may be meant for transactional
        # messages, which need no opt-out wording.
        if warning := footer.template_warning(form.instance):
            self.message_user(request, warning, messages.WARNING)
        # Warnings, not errors: "[first_name]" may be meant as written.
        for warning in form.instance.foreign_placeholders():
            self.message_user(request, warning, messages.WARNING)
