"""Changelist filters that stay on indexes at a million contacts (EXISTS, not JOIN)."""

from django.contrib import admin
from django.db.models import Exists, OuterRef

from contacts.models import ChannelIdentity, ConsentState, ContactList, ListMembership
from sinch.channels import Channel


class ListFilter(admin.SimpleListFilter):
    title = "list"
    parameter_name = "list"

    def lookups(self, request, model_admin):
        return [
            (str(pk), name)
            for pk, name in ContactList.objects.values_list("pk", "name")
        ]

    def queryset(self, request, queryset):
        if self.value():
            return queryset.filter(
                Exists(
                    ListMembership.objects.filter(
                        contact=OuterRef("pk"), contact_list_id=self.value()
                    )
                )
            )
        return queryset


class ChannelFilter(admin.SimpleListFilter):
    title = "channel"
    parameter_name = "channel"

    def lookups(self, request, model_admin):
        return Channel.choices

    def queryset(self, request, queryset):
        if self.value():
            return queryset.filter(
                Exists(
                    ChannelIdentity.objects.filter(
                        contact=OuterRef("pk"), channel=self.value()
                    )
                )
            )
        return queryset


class ConsentFilter(admin.SimpleListFilter):
    """Contacts with at least one identity in the chosen consent state."""

    title = "consent"
    parameter_name = "consent"

    def lookups(self, request, model_admin):
        return [
            (f"{purpose}:{state.value}", f"{purpose.lower()}: {state.label}")
            for purpose in ("MARKETING", "TRANSACTIONAL")
            for state in ConsentState
        ]

    def queryset(self, request, queryset):
        if not self.value() or ":" not in self.value():
            return queryset
        purpose, state = self.value().split(":", 1)
        if purpose not in ("MARKETING", "TRANSACTIONAL") or state not in ConsentState:
            return queryset
        field = f"{purpose.lower()}_consent"
        return queryset.filter(
            Exists(
                ChannelIdentity.objects.filter(contact=OuterRef("pk"), **{field: state})
            )
        )


class ErasedFilter(admin.SimpleListFilter):
    title = "erased"
    parameter_name = "erased"

    def lookups(self, request, model_admin):
        return [("no", "active"), ("yes", "erased")]

    def queryset(self, request, queryset):
        if self.value() == "no":
            return queryset.filter(erased_at__isnull=True)
        if self.value() == "yes":
            return queryset.filter(erased_at__isnull=False)
        return queryset
