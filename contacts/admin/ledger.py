"""Read-only admins for the consent ledger and the audit trail."""

from django.contrib import admin

from config.lib.admin import (
    DateHierarchyGuardMixin,
    ReadOnlyAdminMixin,
    id_value,
    ignore_filter_value,
)
from config.lib.key_values import key_value_table
from config.lib.pagination import CappedCountPaginator
from contacts.models import AuditEvent, ConsentEvent
from contacts.phones import phone_search_term


class ReadOnlyAdmin(DateHierarchyGuardMixin, ReadOnlyAdminMixin, admin.ModelAdmin):
    """A million-row ledger: read-only, capped counts."""

    show_full_result_count = False
    paginator = CappedCountPaginator


class ContactFilter(admin.SimpleListFilter):
    """Reached from a contact page ("Full ledger for this contact")."""

    title = "contact"
    parameter_name = "contact"

    def lookups(self, request, model_admin):
        pk = id_value(self.value())
        return [(str(pk), f"contact #{pk}")] if pk is not None else []

    def queryset(self, request, queryset):
        if not self.value():
            return queryset
        pk = id_value(self.value())
        if pk is None:
            ignore_filter_value(request, self.title, self.value())
            return queryset
        return queryset.filter(identity__contact_id=pk)


@admin.register(ConsentEvent)
class ConsentEventAdmin(ReadOnlyAdmin):
    list_display = (
        "occurred_at",
        "identity",
        "kind",
        "purpose",
        "source",
        "actor_label",
        "recorded_at",
    )
    list_filter = (ContactFilter, "kind", "purpose", "source", "channel")
    list_select_related = ("identity",)
    search_fields = ("identity__identity",)
    search_help_text = "A phone number in any format or an identity (exact match)."
    ordering = ("-occurred_at", "-pk")

    def get_search_results(self, request, queryset, search_term):
        term = search_term.strip()
        if not term:
            return queryset, False
        values = {term, phone_search_term(term)} - {None}
        return queryset.filter(identity__identity__in=values), False


@admin.register(AuditEvent)
class AuditEventAdmin(ReadOnlyAdmin):
    list_display = ("at", "actor_label", "action", "summary")
    list_filter = ("action",)
    search_fields = ("summary", "actor_label")
    date_hierarchy = "at"
    ordering = ("-at", "-pk")
    readonly_fields = ("details_table",)

    @admin.display(description="details")
    def details_table(self, obj: AuditEvent) -> str:
        return key_value_table(obj.details, empty="None")

    def get_fields(self, request, obj=None):
        # The details as a table, not as the JSON they are stored in.
        return [
            "details_table" if f == "details" else f
            for f in super().get_fields(request, obj)
            if f != "details_table"
        ]
