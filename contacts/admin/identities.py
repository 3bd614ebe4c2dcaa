"""Channel identities in the admin: shown, added, replaced; never edited.

A stored number is a fact (see ChannelIdentity): the inline and the identity
page show it read-only, and "Replace number" adds the new one and retires the
old one through contacts.services.identities.
"""

from django.contrib import admin
from django.core.exceptions import PermissionDenied
from django.shortcuts import get_object_or_404, redirect
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils.html import format_html

from config.lib.pagination import CappedCountPaginator
from config.lib.redaction import mask_number
from contacts.admin.forms import ChannelIdentityForm, ReplaceIdentityForm
from contacts.models import ChannelIdentity, Contact
from contacts.phones import InvalidIdentity, phone_search_term
from contacts.services.identities import IdentityTaken, replace_identity
from contacts.services.suppression import SuppressedIdentityError


class ChannelIdentityInline(admin.TabularInline):
    model = ChannelIdentity
    form = ChannelIdentityForm
    extra = 0
    fields = (
        "channel",
        "identity",
        "marketing_consent",
        "transactional_consent",
        "retired_at",
        "replace_link",
    )
    # Consent changes only through the ledger ("Record consent"); the number
    # only through "Replace number" (the form disables stored rows' fields).
    readonly_fields = (
        "marketing_consent",
        "transactional_consent",
        "retired_at",
        "replace_link",
    )
    can_delete = False

    @admin.display(description="")
    def replace_link(self, obj: ChannelIdentity) -> str:
        if not obj.pk or obj.retired_at or obj.contact.erased_at:
            return ""
        url = reverse(
            "admin:contacts_contact_replace_identity", args=[obj.contact_id, obj.pk]
        )
        return format_html('<a href="{}">Replace number</a>', url)


class ReplaceIdentityViews:
    """ContactAdmin's "Replace number" page (mixed into ContactAdmin)."""

    def identity_urls(self):
        return [
            path(
                "<int:pk>/identities/<int:identity_pk>/replace/",
                self.admin_site.admin_view(self.replace_identity_view),
                name="contacts_contact_replace_identity",
            )
        ]

    def has_replace_identity_permission(self, request, contact) -> bool:
        user = request.user
        return (
            self.has_change_permission(request, contact)
            and user.has_perm("contacts.add_channelidentity")
            and user.has_perm("contacts.change_channelidentity")
        )

    def replace_identity_view(self, request, pk, identity_pk):
        """GET shows the form; only a POST changes anything."""
        contact = get_object_or_404(Contact, pk=pk, erased_at__isnull=True)
        if not self.has_replace_identity_permission(request, contact):
            raise PermissionDenied
        identity = get_object_or_404(
            ChannelIdentity, pk=identity_pk, contact=contact, retired_at__isnull=True
        )
        posted = request.POST if request.method == "POST" else None
        form = ReplaceIdentityForm(posted, identity=identity)
        if posted is not None and form.is_valid():
            data = form.cleaned_data
            try:
                new = replace_identity(
                    identity,
                    data["new_identity"],
                    actor=request.user,
                    retire=data["retire"],
                    note=data["note"],
                )
            except (InvalidIdentity, SuppressedIdentityError, IdentityTaken) as exc:
                form.add_error("new_identity", str(exc))
            else:
                old = mask_number(identity.identity)
                change = f"{identity.channel} {old} -> {mask_number(new.identity)}"
                self.log_change(request, contact, f"Replaced number: {change}")
                self.message_user(
                    request,
                    f"Added {change}"
                    + (", the old number retired" if data["retire"] else "")
                    + ". The new number has no consent yet.",
                )
                return redirect("admin:contacts_contact_change", contact.pk)
        return TemplateResponse(
            request,
            "admin/contacts/contact/object_form.html",
            {
                **self.admin_site.each_context(request),
                "title": f"Replace {identity.channel} "
                f"{mask_number(identity.identity)}: {contact}",
                "intro": "A number is never edited: the new one is added as a new "
                "identity with no consent, and the old one, if retired, keeps its "
                "consent ledger (and its opt-out) and is never sent to again.",
                "submit_label": "Replace number",
                "form": form,
                "object": contact,
                "opts": Contact._meta,
                "erase": False,
            },
        )


@admin.register(ChannelIdentity)
class ChannelIdentityAdmin(admin.ModelAdmin):
    form = ChannelIdentityForm
    list_display = (
        "identity",
        "channel",
        "contact",
        "marketing_consent",
        "transactional_consent",
        "retired_at",
    )
    list_filter = ("channel", "marketing_consent", "transactional_consent")
    list_select_related = ("contact",)
    search_fields = ("identity",)
    search_help_text = "A phone number in any format or an identity (exact match)."
    raw_id_fields = ("contact",)
    show_full_result_count = False
    paginator = CappedCountPaginator
    ordering = ("-pk",)
    readonly_fields = (
        "marketing_consent",
        "marketing_consent_at",
        "transactional_consent",
        "transactional_consent_at",
        "retired_at",
        "origin_import",
        "origin_line",
        "created_at",
    )
    fields = ("contact", "channel", "identity", *readonly_fields)

    def get_readonly_fields(self, request, obj=None):
        if obj is not None:  # stored: a fact (replace it on the contact's page)
            return ("contact", "channel", "identity", *self.readonly_fields)
        return self.readonly_fields

    def has_delete_permission(self, request, obj=None):
        return False

    def get_search_results(self, request, queryset, search_term):
        term = search_term.strip()
        if not term:
            return queryset, False
        return queryset.filter(
            identity__in={term, phone_search_term(term)} - {None}
        ), False
