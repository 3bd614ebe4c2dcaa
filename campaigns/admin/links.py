"""Admin: tracked links and their clicks, read-only.

Links are frozen at launch and clicks written by the redirect
(campaigns.tracking.redirect): here Marketing sees where each link goes and
how many people opened it, and Compliance sees what is kept of a click (no
number, no name: a time, a recipient row, a link and a user-agent class).
The campaign page links here ("Tracked links").
"""

from django.contrib import admin
from django.db.models import Count, Q

from campaigns.models import Click, TrackedLink
from config.lib.admin import ReadOnlyAdminMixin
from config.lib.pagination import CappedCountPaginator


@admin.register(TrackedLink)
class TrackedLinkAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = (
        "campaign",
        "parameter",
        "target",
        "people",
        "clicks_by_people",
        "previews",
        "expires_at",
    )
    list_select_related = ("campaign",)
    search_fields = ("campaign__name", "target")
    fields = ("campaign", "parameter", "url", "target", "expires_at", "created_at")
    readonly_fields = fields

    def get_queryset(self, request):
        people = Q(clicks__is_preview=False, clicks__is_test=False)
        return (
            super()
            .get_queryset(request)
            .annotate(
                n_people=Count("clicks__recipient_id", filter=people, distinct=True),
                n_clicks=Count("clicks", filter=people),
                n_previews=Count("clicks", filter=Q(clicks__is_preview=True)),
            )
        )

    @admin.display(description="people who clicked", ordering="n_people")
    def people(self, obj) -> int:
        return obj.n_people

    @admin.display(description="clicks", ordering="n_clicks")
    def clicks_by_people(self, obj) -> int:
        return obj.n_clicks

    @admin.display(description="preview fetches", ordering="n_previews")
    def previews(self, obj) -> int:
        return obj.n_previews


@admin.register(Click)
class ClickAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = (
        "clicked_at",
        "link",
        "recipient_id",
        "is_preview",
        "agent",
        "is_test",
    )
    list_filter = ("is_preview", "is_test", "agent")
    list_select_related = ("link",)
    paginator = CappedCountPaginator
    show_full_result_count = False
    fields = (
        "clicked_at",
        "campaign_id",
        "link",
        "recipient_id",
        "is_preview",
        "agent",
        "is_test",
    )
    readonly_fields = fields
