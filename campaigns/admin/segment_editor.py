"""The segment editor as a form field: the condition builder widget, the
field that validates what it posts, and the live count's answer.

The widget draws the builder (templates/admin/campaigns/segment/_builder.html)
from the definition and reads it back from the posted inputs
(campaigns.admin.segment_form); the field runs the engine's validate(), so
the errors show beside the builder and the builder shows what was typed.
"""

import json
import time

from django import forms
from django.core.exceptions import ValidationError
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils.safestring import mark_safe

from campaigns.admin import segment_form
from campaigns.models import Segment
from campaigns.segments import catalogue, definition, evaluate
from contacts.models import ConsentState

ACTION = "segment_action"


def editor_fields() -> list[dict]:
    return segment_form.prepare_fields(
        catalogue.fields(), states=[[v, label] for v, label in ConsentState.choices]
    )


def count_result(value) -> dict:
    """The live count's answer: {"count", "description", "errors", "ms"};
    an invalid definition is not counted (count None, the errors said)."""
    errors = definition.validate(value)
    if errors:
        return {"count": None, "description": "", "errors": errors, "ms": 0}
    started = time.perf_counter()
    n = evaluate.count(value)
    ms = round((time.perf_counter() - started) * 1000)
    return {
        "count": n,
        "description": definition.describe(value),
        "errors": [],
        "ms": ms,
    }


class SegmentBuilder(forms.Widget):
    """Groups of conditions as plain named inputs; segment_editor.js adds
    and removes rows in place and keeps the live count."""

    template_name = "admin/campaigns/segment/_builder.html"

    class Media:
        js = ("campaigns/segment_editor.js",)

    def value_from_datadict(self, data, files, name):
        fields = editor_fields()
        value = segment_form.definition_from_post(data, fields)
        if data.get(ACTION):  # "Add"/"Remove" pressed without JavaScript
            value = segment_form.apply_action(value, str(data[ACTION]), fields)
        return value

    def render(self, name, value, attrs=None, renderer=None):
        # The project's templates (templates/admin/...), which the default
        # form renderer does not search.
        context = self.get_context(name, value, attrs)
        return mark_safe(render_to_string(self.template_name, context))

    def format_value(self, value):
        return value  # a dict, drawn by the template, never a string

    def get_context(self, name, value, attrs):
        context = super().get_context(name, value, attrs)
        fields = editor_fields()
        if isinstance(value, str):  # an initial value given as JSON text
            try:
                value = json.loads(value)
            except ValueError:
                value = None
        if not value:
            value = segment_form.blank_definition(fields)
        editor = segment_form.editor_view(value, fields)
        sizes = [len(g["conditions"]) for g in editor["groups"]]
        valid = isinstance(value, dict) and not definition.validate(value)
        context.update(
            editor=editor,
            catalogue=fields,
            matches=segment_form.MATCHES,
            count_url=reverse("admin:campaigns_segment_count"),
            next_group=len(sizes),
            next_condition=max(sizes, default=0),
            attribute_keys=catalogue.attribute_keys(),
            definition_json=json.dumps(value, indent=2, ensure_ascii=False),
            description=definition.describe(value) if valid else "",
        )
        return context


class SegmentDefinitionField(forms.Field):
    widget = SegmentBuilder

    def clean(self, value):
        if value is None:
            raise ValidationError("Add at least one group of conditions.")
        errors = definition.validate(value)
        if errors:
            raise ValidationError(errors)
        return value

    def has_changed(self, initial, data) -> bool:
        return json.dumps(initial or {}, sort_keys=True) != json.dumps(
            data or {}, sort_keys=True
        )


class SegmentForm(forms.ModelForm):
    definition = SegmentDefinitionField(label="Conditions")

    class Meta:
        model = Segment
        fields = ("name", "description", "definition")
        widgets = {"description": forms.Textarea(attrs={"rows": 2, "cols": 60})}

    def clean(self):
        cleaned = super().clean()
        if self.data.get(ACTION):
            # The builder was redrawn with a group or condition added or
            # removed (no JavaScript): show it again, save nothing yet.
            raise ValidationError(
                "Not saved yet: the conditions were updated. Save when they are "
                "complete."
            )
        return cleaned


def campaign_add_url(segment: Segment) -> str:
    """The campaign add form with this segment chosen as its audience."""
    return reverse("admin:campaigns_campaign_add") + f"?segments={segment.pk}"
