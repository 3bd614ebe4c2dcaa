"""Admin: the batches of campaigns, read-only.

Batches are written by the dispatch only (campaigns.dispatch);
here they can be looked at, filtered by campaign (from the campaign page's
link), by state and by test sends.
"""

from django.contrib import admin
from django.utils import timezone

from campaigns.admin.dispatch import batch_description
from campaigns.models import Batch
from config.lib.admin import ReadOnlyAdminMixin


@admin.register(Batch)
class BatchAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = (
        "campaign",
        "sequence",
        "is_test",
        "state",
        "size",
        "sinch_batch_id",
        "attempts",
        "last_error",
    )
    list_display_links = ("sequence",)
    list_filter = ("status", "is_test")
    list_select_related = ("campaign",)
    search_fields = ("sinch_batch_id", "metadata_key", "campaign__name")
    ordering = ("-campaign__created_at", "campaign", "is_test", "sequence")
    show_full_result_count = False
    fields = (
        "campaign",
        "sequence",
        "is_test",
        "variant",
        "ab_remainder",
        "state",
        "status",
        "size",
        "sinch_batch_id",
        "metadata_key",
        "remote_status",
        "send_after",
        "not_before",
        "attempts",
        "last_error",
        "claimed_at",
        "claimed_by",
        "uncertain_since",
        "submitted_at",
        "remote_checked_at",
        "cancel_requested",
        "requested_by",
        "created_at",
        "updated_at",
    )
    readonly_fields = fields

    @admin.display(description="state")
    def state(self, obj: Batch) -> str:
        return batch_description(obj, obj.campaign.send_time_zone, timezone.now())

    def lookup_allowed(self, lookup, value, request=None) -> bool:
        # The campaign page links here with ?campaign__id__exact=<pk>.
        return lookup == "campaign__id__exact" or super().lookup_allowed(
            lookup, value, request
        )
