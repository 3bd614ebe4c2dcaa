"""Admin: the recipients of campaigns, read-only, fast at a million rows.

Opened from a campaign's dashboard, filtered to it (?campaign__id__exact=).
Nothing here counts or scans a whole campaign: the paginator stops counting
at a cap, the filters offer fixed choices (no DISTINCT over the table), and
a search resolves a phone number (any format) or a channel identity to its
contacts first, then matches the recipients exactly by their contact index.
"""

from django.contrib import admin
from django.db.models import Q
from django.utils.functional import cached_property

from campaigns.models import Campaign, Recipient
from campaigns.tracking import failures
from config.lib.admin import ReadOnlyAdminMixin, id_value
from config.lib.key_values import key_value_table
from config.lib.pagination import CappedCountPaginator
from contacts.models import ChannelIdentity
from contacts.phones import phone_search_term

R = Recipient.Status
BATCH_FAILED_VALUE = "-"  # the filter value of "whole batch failed" (no code)


class RecipientPaginator(CappedCountPaginator):
    """Counts at most CAP + 1 recipients: the dashboard has the exact totals,
    and a filter matching a few thousand rows stays cheap to count."""

    CAP = 2000

    @cached_property
    def count(self) -> int:
        return self.object_list.order_by()[: self.CAP + 1].count()

    @property
    def is_capped(self) -> bool:
        return self.count > self.CAP


class FailureCodeFilter(admin.SimpleListFilter):
    """Failed recipients by Sinch's reason code, named in plain words."""

    title = "failure reason"
    parameter_name = "failure_code"

    def lookups(self, request, model_admin):
        kinds = sorted(
            (k for k in failures.KINDS.values() if k.code != failures.BATCH_FAILED),
            key=lambda k: k.label,
        )
        return [(BATCH_FAILED_VALUE, "Whole batch failed")] + [
            (k.code, k.label) for k in kinds
        ]

    def queryset(self, request, queryset):
        value = self.value()
        if not value:
            return queryset
        code = "" if value == BATCH_FAILED_VALUE else value
        return queryset.filter(status=R.FAILED, failure_code=code)


@admin.register(Recipient)
class RecipientAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = (
        "identity",
        "status",
        "delivered_channel",
        "failure",
        "reason",
        "batch_number",
        "message_id",
        "updated_at",
        "campaign",
    )
    list_filter = ("status", FailureCodeFilter)
    list_select_related = ("campaign", "batch")
    search_fields = ("identity",)
    search_help_text = (
        "A phone number in any format, or a channel identity (exact match)."
    )
    show_full_result_count = False
    paginator = RecipientPaginator
    list_per_page = 50
    ordering = ("-pk",)
    fields = (
        "campaign",
        "identity",
        "fallbacks",
        "contact",
        "status",
        "delivered_channel",
        "failure",
        "failure_code",
        "reason",
        "switched_channel",
        "batch",
        "variant",
        "index",
        "message_id",
        "message_values",
        "is_test",
        "created_at",
        "updated_at",
    )
    readonly_fields = fields

    @admin.display(description="failure")
    def failure(self, obj: Recipient) -> str:
        if obj.status != R.FAILED:
            return ""
        kind = failures.describe(obj.failure_code)
        return f"{kind.label} ({kind.class_label})"

    @admin.display(description="values in the message")
    def message_values(self, obj: Recipient) -> str:
        return key_value_table(obj.parameters, empty="None")

    @admin.display(description="then, on fallback")
    def fallbacks(self, obj: Recipient) -> str:
        """The fallback identities sent after `identity`, in priority order."""
        pairs = obj.fallback_identities or []
        return ", then ".join(f"{channel} {identity}" for channel, identity in pairs)

    @admin.display(description="batch", ordering="batch__sequence")
    def batch_number(self, obj: Recipient):
        return obj.batch.sequence if obj.batch_id else None

    def get_search_results(self, request, queryset, search_term):
        term = search_term.strip()
        if not term:
            return queryset, False
        identities = {term, phone_search_term(term)} - {None}
        # Through the contacts (indexed identities, then the recipients'
        # contact index): an identity match alone would scan the campaign.
        contacts = list(
            ChannelIdentity.objects.filter(identity__in=identities).values_list(
                "contact_id", flat=True
            )[:1000]
        )
        return queryset.filter(
            Q(contact_id__in=contacts) & Q(identity__in=identities)
        ), False

    def lookup_allowed(self, lookup, value, request=None) -> bool:
        # The dashboard links here with ?campaign__id__exact=<pk>.
        return lookup == "campaign__id__exact" or super().lookup_allowed(
            lookup, value, request
        )

    def changelist_view(self, request, extra_context=None):
        extra_context = dict(extra_context or {})
        pk = id_value(request.GET.get("campaign__id__exact", ""))
        if pk is not None:
            campaign = Campaign.objects.filter(pk=pk).only("name").first()
            if campaign is not None:
                extra_context["title"] = f"Recipients of “{campaign.name}”"
        return super().changelist_view(request, extra_context)
