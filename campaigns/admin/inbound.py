"""Admin: messages people sent us (replies, STOP, START, HELP), read-only.

Written by campaigns.tracking.receipts only. A contact's replies are one click away:
the list filtered with ?contact__id__exact=<id> shows one contact's replies.
Replies that read like an opt-out without a keyword are flagged "needs review"
(a filter, and a count on the admin home); whoever may record consent records
the opt-out from one with one click (POST), the reply being the evidence.
"""

from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.http import HttpResponseNotAllowed
from django.shortcuts import get_object_or_404, redirect
from django.urls import path, reverse
from django.utils.html import format_html

from campaigns.admin.refusals import refusal
from campaigns.models import InboundMessage
from campaigns.tracking.reply_review import ReviewError, record_opt_out_from_reply
from config.lib.admin import DateHierarchyGuardMixin, ReadOnlyAdminMixin
from config.lib.wording import counted

RECORD_CONSENT = "contacts.record_consent"


@admin.register(InboundMessage)
class InboundMessageAdmin(
    DateHierarchyGuardMixin, ReadOnlyAdminMixin, admin.ModelAdmin
):
    list_display = (
        "received_at",
        "channel",
        "identity",
        "contact_link",
        "campaign_label",
        "keyword_label",
        "review_label",
        "excerpt",
    )
    list_display_links = ("received_at",)
    list_filter = ("review", "keyword", "channel", "campaign_inferred")
    list_select_related = ("contact", "campaign")
    search_fields = ("identity", "text", "message_id")
    date_hierarchy = "received_at"
    show_full_result_count = False
    actions = ("record_opt_outs",)
    fields = (
        "received_at",
        "channel",
        "identity",
        "contact",
        "campaign",
        "campaign_inferred",
        "keyword",
        "review",
        "text",
        "message_id",
        "event",
    )
    readonly_fields = fields

    def has_record_consent_permission(self, request) -> bool:
        return request.user.has_perm(RECORD_CONSENT)

    @admin.display(description="contact", ordering="contact")
    def contact_link(self, obj: InboundMessage):
        if obj.contact_id is None:
            return "unknown"
        url = reverse("admin:contacts_contact_change", args=[obj.contact_id])
        return format_html('<a href="{}">{}</a>', url, obj.contact)

    @admin.display(description="campaign", ordering="campaign")
    def campaign_label(self, obj: InboundMessage) -> str:
        if obj.campaign_id is None:
            return "-"
        return (
            f"{obj.campaign} (inferred)" if obj.campaign_inferred else str(obj.campaign)
        )

    @admin.display(description="keyword", ordering="keyword")
    def keyword_label(self, obj: InboundMessage) -> str:
        return obj.get_keyword_display() if obj.keyword else "reply"

    @admin.display(description="review", ordering="review")
    def review_label(self, obj: InboundMessage) -> str:
        return obj.get_review_display() if obj.review else ""

    @admin.display(description="text")
    def excerpt(self, obj: InboundMessage) -> str:
        return obj.text if len(obj.text) <= 80 else obj.text[:79] + "…"

    @admin.action(
        description="Record opt-out from selected replies",
        permissions=["record_consent"],
    )
    def record_opt_outs(self, request, queryset):
        done = [r for r in queryset if self._record(request, r, quiet=True)]
        self.message_user(
            request, f"Recorded opt-outs from {counted(len(done), 'reply', 'replies')}."
        )

    def get_urls(self):
        return [
            path(
                "<int:pk>/record-opt-out/",
                self.admin_site.admin_view(self.record_opt_out_view),
                name="campaigns_inboundmessage_record_opt_out",
            ),
            *super().get_urls(),
        ]

    def record_opt_out_view(self, request, pk):
        if request.method != "POST":
            return HttpResponseNotAllowed(["POST"])
        if not self.has_record_consent_permission(request):
            raise PermissionDenied(refusal(RECORD_CONSENT, "record an opt-out"))
        self._record(request, get_object_or_404(InboundMessage, pk=pk))
        return redirect("admin:campaigns_inboundmessage_change", pk)

    def _record(self, request, reply: InboundMessage, *, quiet=False) -> bool:
        try:
            events = record_opt_out_from_reply(reply, actor=request.user)
        except ReviewError as exc:
            self.message_user(request, f"Reply #{reply.pk}: {exc}", messages.ERROR)
            return False
        purposes = ", ".join(e.get_purpose_display() for e in events)
        self.log_change(request, reply, f"Recorded opt-out ({purposes}) from reply")
        if not quiet:
            self.message_user(
                request,
                f"Recorded opt-out ({purposes}) for {reply.channel} "
                f"{reply.identity}, with this reply as evidence.",
            )
        return True

    def change_view(self, request, object_id, form_url="", extra_context=None):
        extra_context = {
            **(extra_context or {}),
            "can_record_opt_out": self.has_record_consent_permission(request),
        }
        return super().change_view(request, object_id, form_url, extra_context)
