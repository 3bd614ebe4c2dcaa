"""Admin for contacts, their identities and lists."""

from django.contrib import admin, messages
from django.contrib.admin import helpers
from django.core.exceptions import PermissionDenied
from django.db.models import Q
from django.http import HttpRequest, StreamingHttpResponse
from django.shortcuts import get_object_or_404, redirect
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils import timezone
from django.utils.html import format_html

from config.lib.key_values import key_value_table
from config.lib.pagination import CappedCountPaginator
from config.lib.redaction import mask_number
from contacts import time_zones
from contacts.admin.filters import (
    ChannelFilter,
    ConsentFilter,
    ErasedFilter,
    ListFilter,
)
from contacts.admin.forms import (
    ContactForm,
    ContactListChoiceForm,
    OptOutForm,
    RecordConsentForm,
)
from contacts.admin.history import history_context
from contacts.admin.identities import ChannelIdentityInline, ReplaceIdentityViews
from contacts.exporting import stream_csv
from contacts.models import (
    ChannelIdentity,
    ConsentEvent,
    ConsentState,
    Contact,
    ContactList,
    ListMembership,
)
from contacts.phones import phone_search_term
from contacts.services import seed_lists
from contacts.services.consent import record_consent, record_opt_out_for_contacts
from contacts.services.erasure import erase_contact
from contacts.services.lists import add_to_list, remove_from_list
from contacts.services.suppression import SuppressedIdentityError

MAX_BULK_OPT_OUT = 10_000


class MembershipInline(admin.TabularInline):
    model = ListMembership
    extra = 0
    fields = ("contact_list", "added_at", "source")
    readonly_fields = ("added_at", "source")
    verbose_name = "list membership"


def _has(request: HttpRequest, codename: str) -> bool:
    return request.user.has_perm(f"contacts.{codename}")


@admin.register(Contact)
class ContactAdmin(ReplaceIdentityViews, admin.ModelAdmin):
    list_display = (
        "display_name",
        "identities_display",
        "marketing_display",
        "external_id",
        "language",
        "created_at",
    )
    list_filter = (ListFilter, ChannelFilter, ConsentFilter, ErasedFilter)
    search_fields = ("external_id",)
    search_help_text = (
        "A phone number in any format (exact match), a name (starts with), or an "
        "external id."
    )
    show_full_result_count = False
    paginator = CappedCountPaginator
    list_per_page = 50
    ordering = ("-pk",)
    inlines = (ChannelIdentityInline, MembershipInline)
    form = ContactForm
    fields = (
        ("first_name", "last_name"),
        "external_id",
        ("language", "time_zone"),
        "recipient_time_zone",
        "attributes",
        ("created_at", "updated_at", "erased_at"),
    )
    readonly_fields = (
        "recipient_time_zone",
        "attributes_table",
        "created_at",
        "updated_at",
        "erased_at",
    )
    actions = ("add_to_list", "remove_from_list", "record_opt_out", "export_csv")

    def get_queryset(self, request):
        return super().get_queryset(request).prefetch_related("identities")

    def get_fields(self, request, obj=None):
        """Read-only (a viewer, an erased contact): the attributes as a
        table, never as JSON."""
        fields = super().get_fields(request, obj)
        if obj is not None and not self.has_change_permission(request, obj):
            fields = ["attributes_table" if f == "attributes" else f for f in fields]
        return fields

    def has_delete_permission(self, request, obj=None):
        return False  # people are erased, never deleted: the ledger must stay

    def has_change_permission(self, request, obj=None):
        if obj is not None and obj.erased_at:
            return False
        return super().has_change_permission(request, obj)

    def has_record_consent_permission(self, request):
        return _has(request, "record_consent")

    def has_export_permission(self, request):
        return _has(request, "export_contacts")

    def has_manage_lists_permission(self, request):
        return _has(request, "add_listmembership") and _has(
            request, "delete_listmembership"
        )

    # --- columns ------------------------------------------------------------

    @admin.display(description="name", ordering="last_name")
    def display_name(self, obj: Contact) -> str:
        return str(obj)

    @admin.display(description="channel identities")
    def identities_display(self, obj: Contact) -> str:
        return ", ".join(
            f"{i.channel} {i.identity}" + (" (retired)" if i.retired_at else "")
            for i in obj.identities.all()
        )

    @admin.display(description="marketing consent")
    def marketing_display(self, obj: Contact) -> str:
        states = {i.marketing_consent for i in obj.identities.all()}
        return ", ".join(ConsentState(s).label for s in sorted(states)) or "-"

    @admin.display(description="custom attributes")
    def attributes_table(self, obj: Contact) -> str:
        return key_value_table(obj.attributes, empty="None")

    @admin.display(description="zone for sends")
    def recipient_time_zone(self, obj: Contact) -> str:
        """Where quiet hours and local-time sends place this person."""
        if obj.pk is None:
            return "-"
        return str(time_zones.zone_of_contact(obj))

    # --- search -------------------------------------------------------------

    def get_search_results(self, request, queryset, search_term):
        term = search_term.strip()
        if not term:
            return queryset, False
        phone = phone_search_term(term)
        # Exact matches are resolved to ids first: an OR across tables would
        # make the database scan every contact.
        ids = set(
            ChannelIdentity.objects.filter(
                identity__in={term, phone} - {None}
            ).values_list("contact_id", flat=True)[:1000]
        )
        # The exclude() repeats the partial unique index's condition, so
        # SQLite can prove the index applies.
        ids.update(
            Contact.objects.filter(external_id=term)
            .exclude(external_id="")
            .values_list("pk", flat=True)
        )
        if phone is not None:
            return queryset.filter(pk__in=ids), False
        match = Q(pk__in=ids)
        for word in term.split()[:3]:
            match |= Q(first_name__istartswith=word) | Q(last_name__istartswith=word)
        return queryset.filter(match), False

    # --- actions ------------------------------------------------------------

    def _form_page(self, request, queryset, form, title, intro, action):
        return TemplateResponse(
            request,
            "admin/contacts/contact/action_form.html",
            {
                **self.admin_site.each_context(request),
                "title": title,
                "intro": intro,
                "form": form,
                "action": action,
                "queryset": queryset,
                "count": queryset.count(),
                "select_across": request.POST.get("select_across") == "1",
                "selected": request.POST.getlist(helpers.ACTION_CHECKBOX_NAME),
                "action_checkbox_name": helpers.ACTION_CHECKBOX_NAME,
                "opts": self.model._meta,
                "media": self.media + form.media,
            },
        )

    @admin.action(
        description="Add selected contacts to a list", permissions=["manage_lists"]
    )
    def add_to_list(self, request, queryset):
        form = ContactListChoiceForm(request.POST if "apply" in request.POST else None)
        if form.is_valid():
            lst = form.cleaned_data["contact_list"]
            n = add_to_list(contacts=queryset, contact_list=lst, actor=request.user)
            self.message_user(request, f"Added {n} contacts to {lst.name}.")
            return None
        return self._form_page(
            request,
            queryset,
            form,
            "Add to list",
            "Add these contacts to:",
            "add_to_list",
        )

    @admin.action(
        description="Remove selected contacts from a list", permissions=["manage_lists"]
    )
    def remove_from_list(self, request, queryset):
        form = ContactListChoiceForm(request.POST if "apply" in request.POST else None)
        if form.is_valid():
            lst = form.cleaned_data["contact_list"]
            n = remove_from_list(
                contacts=queryset, contact_list=lst, actor=request.user
            )
            self.message_user(request, f"Removed {n} contacts from {lst.name}.")
            return None
        return self._form_page(
            request,
            queryset,
            form,
            "Remove from list",
            "Remove these contacts from:",
            "remove_from_list",
        )

    @admin.action(
        description="Record opt-out for selected contacts",
        permissions=["record_consent"],
    )
    def record_opt_out(self, request, queryset):
        count = queryset.count()
        if count > MAX_BULK_OPT_OUT:
            self.message_user(
                request,
                f"{count} contacts selected; record opt-outs for at most "
                f"{MAX_BULK_OPT_OUT:,} at a time, or import a file with a consent "
                "column.",
                messages.ERROR,
            )
            return None
        form = OptOutForm(request.POST if "apply" in request.POST else None)
        if form.is_valid():
            n = record_opt_out_for_contacts(
                contacts=queryset,
                purposes=form.cleaned_data["purposes"],
                evidence=form.evidence(),
                actor=request.user,
            )
            self.message_user(request, f"Recorded {n} opt-outs for {count} contacts.")
            return None
        return self._form_page(
            request,
            queryset,
            form,
            "Record opt-out",
            "Every channel identity of these contacts will be opted out. The ledger "
            "keeps the evidence you give here.",
            "record_opt_out",
        )

    @admin.action(description="Export selected contacts to CSV", permissions=["export"])
    def export_csv(self, request, queryset):
        stamp = timezone.now().strftime("%Y%m%d-%H%M%S")
        response = StreamingHttpResponse(
            stream_csv(
                queryset,
                actor=request.user,
                description=f"{queryset.count()} contacts from the admin",
            ),
            content_type="text/csv; charset=utf-8",
        )
        response["Content-Disposition"] = f'attachment; filename="contacts-{stamp}.csv"'
        return response

    # --- record consent and erase (object tools) ----------------------------

    def get_urls(self):
        view = self.admin_site.admin_view
        return [
            path(
                "<int:pk>/record-consent/",
                view(self.record_consent_view),
                name="contacts_contact_record_consent",
            ),
            path(
                "<int:pk>/erase/", view(self.erase_view), name="contacts_contact_erase"
            ),
            *self.identity_urls(),
            *super().get_urls(),
        ]

    def record_consent_view(self, request, pk):
        if not self.has_record_consent_permission(request):
            raise PermissionDenied
        contact = get_object_or_404(Contact, pk=pk, erased_at__isnull=True)
        form = RecordConsentForm(
            request.POST if request.method == "POST" else None,
            contact=contact,
            identity_id=request.GET.get("identity"),
        )
        if request.method == "POST" and form.is_valid():
            data = form.cleaned_data
            try:
                event = record_consent(
                    identity=data["identity"],
                    kind=data["kind"],
                    purpose=data["purpose"],
                    source=data["source"],
                    evidence=form.evidence(),
                    actor=request.user,
                    occurred_at=data["occurred_at"],
                )
            except SuppressedIdentityError as exc:
                form.add_error("identity", str(exc))
                return self._object_page(request, contact, "Record consent", form)
            number = mask_number(data["identity"].identity)
            self.log_change(request, contact, f"Recorded {event} on {number}")
            # Say what the ledger made of it: an opt-in may leave the number
            # opted out (an opt-out that wins), and the admin must not read
            # "Recorded" as "changed".
            now = ConsentState(data["identity"].consent_for(data["purpose"]))
            wanted = {
                ConsentEvent.Kind.OPT_IN: ConsentState.OPTED_IN,
                ConsentEvent.Kind.OPT_OUT: ConsentState.OPTED_OUT,
            }[event.kind]
            self.message_user(
                request,
                f"Recorded {event} on {number} for {contact}; the number is now "
                f"{now.label}."
                + ("" if now == wanted else " (an opt-out of theirs wins over it)"),
                messages.SUCCESS if now == wanted else messages.WARNING,
            )
            return redirect("admin:contacts_contact_change", contact.pk)
        return self._object_page(request, contact, "Record consent", form)

    def erase_view(self, request, pk):
        if not _has(request, "erase_contact"):
            raise PermissionDenied
        contact = get_object_or_404(Contact, pk=pk)
        if request.method == "POST":
            # The log entry names the contact as erased, never by its old name.
            contact = erase_contact(contact=contact, actor=request.user)
            self.log_change(request, contact, "Erased personal data")
            self.message_user(
                request,
                f"Contact #{contact.pk} erased: personal data removed, numbers kept "
                "only as suppressed hashes, consent ledger kept.",
            )
            return redirect("admin:contacts_contact_change", contact.pk)
        return self._object_page(request, contact, "Erase personal data", None)

    def _object_page(self, request, contact, title, form):
        return TemplateResponse(
            request,
            "admin/contacts/contact/object_form.html",
            {
                **self.admin_site.each_context(request),
                "title": f"{title}: {contact}",
                "form": form,
                "object": contact,
                "opts": self.model._meta,
                "erase": form is None,
            },
        )

    def change_view(self, request, object_id, form_url="", extra_context=None):
        extra_context = {
            **(extra_context or {}),
            "can_record_consent": self.has_record_consent_permission(request),
            "can_erase": _has(request, "erase_contact"),
        }
        contact = self.get_object(request, object_id)
        if contact is not None and self.has_view_or_change_permission(request, contact):
            extra_context.update(history_context(request, contact))
        return super().change_view(request, object_id, form_url, extra_context)


@admin.register(ContactList)
class ContactListAdmin(admin.ModelAdmin):
    list_display = (
        "name",
        "description",
        "is_seed_list",
        "seed_marked_by",
        "created_at",
        "contacts_link",
    )
    list_filter = ("is_seed_list",)
    search_fields = ("name",)
    readonly_fields = ("seed_marked_by", "seed_marked_at")

    def get_readonly_fields(self, request, obj=None):
        # Marketing builds lists; a Sender or Compliance marks seed lists.
        fields = super().get_readonly_fields(request, obj)
        if not seed_lists.may_mark_seed_lists(request.user):
            return ("is_seed_list", *fields)
        return fields

    def save_model(self, request, obj, form, change):
        wanted = form.cleaned_data.get("is_seed_list")
        if "is_seed_list" in form.cleaned_data:
            # Stored as it was; set_seed_list marks it and records who did.
            obj.is_seed_list = form.initial.get("is_seed_list", False)
        super().save_model(request, obj, form, change)
        if wanted is not None:
            seed_lists.set_seed_list(obj, seed=wanted, actor=request.user)

    @admin.display(description="contacts")
    def contacts_link(self, obj: ContactList) -> str:
        url = reverse("admin:contacts_contact_changelist")
        return format_html('<a href="{}?list={}">View contacts</a>', url, obj.pk)
