"""Admin: messages people sent us (replies, STOP, START, HELP), read-only.

Written by campaigns.tracking.receipts only. A contact's replies are one click away:
the list filtered with ?contact__id__exact=<id> shows one contact's replies.
"""

from django.contrib import admin
from django.urls import reverse
from django.utils.html import format_html

from campaigns.models import InboundMessage
from config.lib.admin import ReadOnlyAdminMixin


@admin.register(InboundMessage)
class InboundMessageAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = (
        "received_at",
        "channel",
        "identity",
        "contact_link",
        "campaign",
        "keyword_label",
        "excerpt",
    )
    list_display_links = ("received_at",)
    list_filter = ("keyword", "channel")
    list_select_related = ("contact", "campaign")
    search_fields = ("identity", "text", "message_id")
    date_hierarchy = "received_at"
    show_full_result_count = False
    fields = (
        "received_at",
        "channel",
        "identity",
        "contact",
        "campaign",
        "keyword",
        "text",
        "message_id",
        "event",
    )
    readonly_fields = fields

    @admin.display(description="contact", ordering="contact")
    def contact_link(self, obj: InboundMessage):
        if obj.contact_id is None:
            return "unknown"
        url = reverse("admin:contacts_contact_change", args=[obj.contact_id])
        return format_html('<a href="{}">{}</a>', url, obj.contact)

    @admin.display(description="keyword", ordering="keyword")
    def keyword_label(self, obj: InboundMessage) -> str:
        return obj.get_keyword_display() if obj.keyword else "reply"

    @admin.display(description="text")
    def excerpt(self, obj: InboundMessage) -> str:
        return obj.text if len(obj.text) <= 80 else obj.text[:79] + "…"
