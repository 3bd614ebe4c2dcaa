"""Changelist filters that stay fast at a million contacts.

A filter on identities or memberships is planned by how many rows match,
counted on a covering index (cheap): few matches become `id IN (...)`, many
become a correlated `EXISTS`, which finds a page of matches after a few probes.
Either plan alone is slow on the other kind of value.
"""

from django.contrib import admin
from django.db.models import Exists, OuterRef

from config.lib.admin import id_value, ignore_filter_value
from contacts.models import ChannelIdentity, ConsentState, ContactList, ListMembership
from sinch.channels import Channel

SPARSE_LIMIT = 50_000


def contacts_with(queryset, related):
    """Contacts of `queryset` that have at least one row in `related`.

    `related` is a queryset of a model with a `contact` foreign key.
    """
    if related.order_by()[: SPARSE_LIMIT + 1].count() <= SPARSE_LIMIT:
        return queryset.filter(pk__in=related.values("contact_id"))
    return queryset.filter(Exists(related.filter(contact=OuterRef("pk"))))


def live_identities():
    """Identities not replaced by another number. The channel and consent
    filters probe them per contact by the live identities' index (contact,
    channel, consent; contacts.segment_indexes), which the freeze needs
    anyway: no index of their own to keep up on every imported line."""
    return ChannelIdentity.objects.filter(retired_at__isnull=True)


class ListFilter(admin.SimpleListFilter):
    title = "list"
    parameter_name = "list"

    def lookups(self, request, model_admin):
        return [
            (str(pk), name)
            for pk, name in ContactList.objects.order_by("name").values_list(
                "pk", "name"
            )
        ]

    def queryset(self, request, queryset):
        if not self.value():
            return queryset
        pk = id_value(self.value())
        if pk is None:
            ignore_filter_value(request, self.title, self.value())
            return queryset
        members = ListMembership.objects.filter(contact_list_id=pk)
        return contacts_with(queryset, members)


class ChannelFilter(admin.SimpleListFilter):
    title = "channel"
    parameter_name = "channel"

    def lookups(self, request, model_admin):
        return Channel.choices

    def queryset(self, request, queryset):
        if self.value() in Channel.values:
            identities = live_identities().filter(channel=self.value())
            return contacts_with(queryset, identities)
        return queryset


class ConsentFilter(admin.SimpleListFilter):
    """Contacts with at least one live identity in the chosen consent state
    (a replaced number is never sent to: its state is history, in its ledger)."""

    title = "consent"
    parameter_name = "consent"

    def lookups(self, request, model_admin):
        return [
            (f"{purpose}:{state.value}", f"{purpose.lower()}: {state.label}")
            for purpose in ("MARKETING", "TRANSACTIONAL")
            for state in ConsentState
        ]

    def queryset(self, request, queryset):
        purpose, _, state = (self.value() or "").partition(":")
        if purpose not in ("MARKETING", "TRANSACTIONAL") or state not in ConsentState:
            return queryset
        field = f"{purpose.lower()}_consent"
        return contacts_with(queryset, live_identities().filter(**{field: state}))


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
