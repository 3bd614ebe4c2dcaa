"""Admin for segments: the list (with counts on demand), the condition editor
with its live count, and the campaigns that use a segment.

Counting a segment reads the contacts table, so the list never counts on
page load: each row has a "Count" button (and one counts the page's rows one
after the other). The live count is a JSON endpoint the editor calls as the
conditions change.
"""

from django.contrib import admin
from django.db.models import Count
from django.http import JsonResponse
from django.shortcuts import get_object_or_404
from django.urls import path, reverse
from django.utils.decorators import method_decorator
from django.utils.html import format_html
from django.utils.text import Truncator
from django.views.decorators.http import require_GET, require_POST

from campaigns.admin.segment_editor import SegmentForm, campaign_add_url, count_result
from campaigns.models import Campaign, Segment
from campaigns.segments import definition
from config.lib.json_input import JsonInputError, parse_json
from contacts.models import ContactList

CAMPAIGNS_SHOWN = 50


def first_problem(value) -> str | None:
    """The first problem of a definition's shape or conditions (no database
    access: names of lists and campaigns are checked when it is saved or used)."""
    groups = value.get("groups") if isinstance(value, dict) else None
    if not isinstance(groups, list) or not groups:
        return "no conditions yet."
    for g, group in enumerate(groups, start=1):
        conditions = group.get("conditions") if isinstance(group, dict) else None
        if not isinstance(conditions, list) or not conditions:
            return f"group {g} has no conditions."
        for c, condition in enumerate(conditions, start=1):
            if problems := definition.condition_errors(condition):
                return f"group {g}, condition {c}: {problems[0]}"
    return None


def reference_names(definitions: list) -> dict:
    """("list", id) and ("campaign", id) -> name, for what the definitions name."""
    wanted: dict[str, set[int]] = {"list": set(), "campaign": set()}
    for value in definitions:
        groups = value.get("groups") if isinstance(value, dict) else None
        for group in groups if isinstance(groups, list) else []:
            conditions = group.get("conditions") if isinstance(group, dict) else None
            for c in conditions if isinstance(conditions, list) else []:
                if not isinstance(c, dict):
                    continue
                if c.get("field") == "list" and isinstance(c.get("value"), list):
                    wanted["list"].update(i for i in c["value"] if isinstance(i, int))
                if c.get("field") == "engagement" and isinstance(
                    c.get("campaign"), int
                ):
                    wanted["campaign"].add(c["campaign"])
    names = {
        ("list", pk): name
        for pk, name in ContactList.objects.filter(pk__in=wanted["list"]).values_list(
            "pk", "name"
        )
    }
    campaigns = Campaign.objects.filter(pk__in=wanted["campaign"])
    names.update((("campaign", pk), n) for pk, n in campaigns.values_list("pk", "name"))
    return names


def _refused(message: str, status: int) -> JsonResponse:
    return JsonResponse(
        {"count": None, "description": "", "errors": [message], "ms": 0},
        status=status,
    )


@admin.register(Segment)
class SegmentAdmin(admin.ModelAdmin):
    form = SegmentForm
    list_display = (
        "name",
        "short_description",
        "conditions",
        "count_column",
        "used_by",
        "updated_at",
    )
    search_fields = ("name", "description")
    readonly_fields = ("conditions", "created_by", "created_at", "updated_at")
    fieldsets = (
        (None, {"fields": ("name", "description")}),
        (
            "Who is in it",
            {
                "fields": ("definition",),
                "description": "Contacts who match the conditions when a "
                "campaign on this segment is launched: the segment is "
                "evaluated then, and the campaign keeps the people it froze.",
            },
        ),
        ("Record", {"fields": ("created_by", "created_at", "updated_at")}),
    )
    change_list_template = "admin/campaigns/segment/change_list.html"
    change_form_template = "admin/campaigns/segment/change_form.html"

    def get_queryset(self, request):
        return super().get_queryset(request).annotate(campaign_count=Count("campaigns"))

    @admin.display(description="description")
    def short_description(self, obj: Segment) -> str:
        return Truncator(obj.description).chars(80)

    @admin.display(description="conditions")
    def conditions(self, obj: Segment) -> str:
        names = getattr(obj, "reference_names", None)
        if names is None:  # one segment's page: its own check, names read
            if errors := definition.validate(obj.definition):
                return f"Incomplete: {errors[0]}"
            return definition.describe(obj.definition)
        if problem := first_problem(obj.definition):
            return f"Incomplete: {problem}"
        return definition.describe(obj.definition, names)

    def get_changelist_instance(self, request):
        """The page's segments share one read of the lists and campaigns
        their conditions name (two queries, not two per row)."""
        changelist = super().get_changelist_instance(request)
        rows = list(changelist.result_list)  # the rows the page then shows
        names = reference_names([row.definition for row in rows])
        for row in rows:
            row.reference_names = names
        return changelist

    @admin.display(description="contacts now")
    def count_column(self, obj: Segment) -> str:
        if getattr(obj, "reference_names", None) is not None and first_problem(
            obj.definition
        ):
            return "—"  # incomplete: nothing to count
        url = reverse("admin:campaigns_segment_row_count", args=[obj.pk])
        return format_html(
            '<button type="button" class="button segment-count-button" '
            'data-count-url="{}">Count</button> '
            '<span class="segment-row-count"></span>',
            url,
        )

    @admin.display(description="used by", ordering="campaign_count")
    def used_by(self, obj: Segment) -> str:
        n = obj.campaign_count
        return f"{n} campaign{'' if n == 1 else 's'}" if n else "—"

    def get_fieldsets(self, request, obj=None):
        if obj is not None and not self.has_change_permission(request, obj):
            # Read-only: the conditions as a sentence, not the builder.
            fields = {"fields": ("name", "description", "conditions")}
            return ((None, fields), self.fieldsets[-1])
        return self.fieldsets if obj else self.fieldsets[:-1]  # no record yet

    def get_urls(self):
        view = self.admin_site.admin_view
        return [
            path("count/", view(self.count_view), name="campaigns_segment_count"),
            path(
                "<int:pk>/count/",
                view(self.row_count_view),
                name="campaigns_segment_row_count",
            ),
            *super().get_urls(),
        ]

    @method_decorator(require_POST)
    def count_view(self, request):
        """The live count of the definition being edited: POST
        {"definition": {...}} as JSON (with the CSRF token)."""
        if not (
            self.has_add_permission(request) or self.has_change_permission(request)
        ):
            return _refused(
                "You may not edit segments, so you may not count them.", 403
            )
        try:
            payload = parse_json(request.body)
        except JsonInputError as exc:
            return _refused(
                f"The request is not JSON the count can read ({exc}); send "
                '{"definition": {...}}.',
                400,
            )
        if not isinstance(payload, dict) or "definition" not in payload:
            return _refused(
                'The request has no definition: send {"definition": {...}}.', 400
            )
        response = JsonResponse(count_result(payload["definition"]))
        response["Cache-Control"] = "no-store"
        return response

    @method_decorator(require_GET)
    def row_count_view(self, request, pk):
        """How many contacts a saved segment matches now (the list's button)."""
        segment = get_object_or_404(Segment, pk=pk)
        if not self.has_view_permission(request, segment):
            return _refused("You may not view segments.", 403)
        response = JsonResponse(count_result(segment.definition))
        response["Cache-Control"] = "no-store"
        return response

    def changeform_view(self, request, object_id=None, form_url="", extra_context=None):
        extra = dict(extra_context or {})
        segment = self.get_object(request, object_id) if object_id else None
        if segment is not None:
            using = Campaign.objects.filter(segments=segment).order_by("-created_at")
            extra.update(
                segment_campaigns=list(using[:CAMPAIGNS_SHOWN]),
                segment_campaign_total=using.count(),
            )
            if request.user.has_perm("campaigns.add_campaign"):
                extra["campaign_add_url"] = campaign_add_url(segment)
        return super().changeform_view(request, object_id, form_url, extra)

    def has_delete_permission(self, request, obj=None) -> bool:
        # A segment a campaign names stays: the campaign's audience says so.
        allowed = super().has_delete_permission(request, obj)
        return allowed and (obj is None or not obj.campaigns.exists())

    def get_deleted_objects(self, objs, request):
        """A segment a campaign names is protected, in the bulk action too:
        the confirmation page names the campaigns and deletes nothing."""
        deleted, counts, perms, protected = super().get_deleted_objects(objs, request)
        pks = [obj.pk for obj in objs]
        using = Campaign.objects.filter(segments__in=pks).distinct().order_by("name")
        named = [f"Campaign “{c.name}” uses this segment" for c in using]
        if named:  # refused because of them, not for want of a permission
            return deleted, counts, set(), [*protected, *named]
        return deleted, counts, perms, protected

    def save_model(self, request, obj, form, change) -> None:
        if not change:
            obj.created_by = request.user
        super().save_model(request, obj, form, change)

    def construct_change_message(self, request, form, formsets, add=False):
        """The history says what the conditions became, in words."""
        message = super().construct_change_message(request, form, formsets, add)
        if "definition" in form.changed_data:
            sentence = definition.describe(form.cleaned_data["definition"])
            message.append({"changed": {"fields": [f"Conditions: {sentence}"]}})
        return message
