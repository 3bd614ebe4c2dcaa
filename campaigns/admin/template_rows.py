"""Inlines for a template's rows: carousel cards, list items, channel overrides.

The page shows each inline for the kinds that use it (template_kind.js). A
POST without an inline's management form leaves that inline's rows as they
are, so a form written for the older page still saves.
"""

from django import forms
from django.contrib import admin
from django.core.exceptions import ValidationError
from django.db import models
from django.forms.models import BaseInlineFormSet

from campaigns.models import CarouselCard, ChannelOverride, ListItem
from campaigns.models.template_parts import REQUIRED_ROWS, row_set_problems
from sinch import wire


class RowFormSet(BaseInlineFormSet):
    """Checks the rows together against the template's kind."""

    def kept_forms(self):
        return [
            form
            for form in self.forms
            if form.has_changed() or form.instance.pk
            if not (self.can_delete and self._should_delete_form(form))
        ]

    def clean(self) -> None:
        super().clean()
        if any(self.errors):
            return
        kind = self.instance.kind
        rows = [form.instance for form in self.kept_forms()]
        problems = row_set_problems(kind, rows)
        model, message = REQUIRED_ROWS.get(kind, (None, ""))
        if model is self.model and not rows:
            problems.append(message)
        if problems:
            raise ValidationError(problems)

    def save(self, commit=True):
        # Rows keep the order of the page: position is the form's place.
        for index, form in enumerate(self.forms):
            form.instance.position = index
        return super().save(commit)


class RowInline(admin.StackedInline):
    formset = RowFormSet
    extra = 0
    formfield_overrides = {
        models.TextField: {"widget": forms.Textarea(attrs={"rows": 3, "cols": 60})}
    }


class CarouselCardInline(RowInline):
    model = CarouselCard
    fields = ("title", "description", "media_url", "choices")
    extra = 1
    verbose_name_plural = (
        f"carousel cards: 1 to {wire.MAX_CAROUSEL_CARDS}, shown side by side"
    )


class ListItemInline(admin.TabularInline):
    model = ListItem
    formset = RowFormSet
    fields = ("section", "title", "description", "postback_data")
    extra = 1
    verbose_name_plural = (
        f"list items: 1 to {wire.MAX_LIST_ITEMS} in all; the same section title "
        "makes one section"
    )
    formfield_overrides = {
        models.CharField: {"widget": forms.TextInput(attrs={"size": 22})}
    }


class ChannelOverrideInline(RowInline):
    model = ChannelOverride
    fields = (
        "channel",
        "form",
        "text",
        ("omni_template_id", "omni_version", "omni_language"),
        "payload",
    )
    verbose_name_plural = (
        "channel overrides (optional): what one channel gets instead of this message"
    )


ROW_INLINES = [CarouselCardInline, ListItemInline, ChannelOverrideInline]
# The id of each inline's group on the page, for template_kind.js.
GROUP_IDS = {
    "CAROUSEL": ["cards-group"],
    "LIST": ["list_items-group"],
}
OVERRIDES_GROUP = "overrides-group"


def posted_inlines(request, inlines):
    """The inlines to bind: on a POST, only those whose forms were posted."""
    if request.method != "POST":
        return inlines
    return [
        inline
        for inline in inlines
        if not isinstance(inline, RowInline | ListItemInline)
        or f"{inline.get_formset(request).get_default_prefix()}-TOTAL_FORMS"
        in request.POST
    ]
