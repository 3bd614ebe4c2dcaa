"""Admin: the notifications sent (read only): superusers see who was told
what and whether it was e-mailed; others see their own (also on the home
page)."""

from django.contrib import admin

from campaigns.models import Notification


@admin.register(Notification)
class NotificationAdmin(admin.ModelAdmin):
    list_display = ("created_at", "recipient", "kind", "text", "read_at", "emailed_at")
    list_filter = ("kind", ("read_at", admin.EmptyFieldListFilter))
    search_fields = ("recipient__username", "key")
    list_select_related = ("recipient",)
    readonly_fields = (
        "recipient",
        "kind",
        "campaign",
        "key",
        "text",
        "link",
        "created_at",
        "read_at",
        "emailed_at",
    )
    ordering = ("-created_at", "-id")

    def get_queryset(self, request):
        """Superusers see everyone's; others their own."""
        mine = super().get_queryset(request)
        if request.user.is_superuser:
            return mine
        return mine.filter(recipient=request.user)

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False
