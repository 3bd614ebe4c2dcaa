"""The rows of a message template: carousel cards, list items, channel overrides.

They hold the template's own texts (with `${param}` placeholders), never a
recipient's values, so erasure has nothing to do here. Saving or deleting a
row refreshes its template's placeholders.
"""

from typing import Any

from django.core.exceptions import ValidationError
from django.db import models

from campaigns import placeholders, text_limits
from campaigns.models import message_lines
from sinch import wire
from sinch.channels import Channel


class TemplatePart(models.Model):
    """A row of a template; `TEXT_FIELDS` may hold placeholders."""

    TEXT_FIELDS: tuple[str, ...] = ()

    position = models.PositiveSmallIntegerField(default=0)

    class Meta:
        abstract = True
        ordering = ["position", "id"]

    def save(self, *args: Any, **kwargs: Any) -> None:
        super().save(*args, **kwargs)
        self.template.update_placeholders()

    def delete(self, *args: Any, **kwargs: Any):
        result = super().delete(*args, **kwargs)
        self.template.update_placeholders()
        return result

    def clean(self) -> None:
        errors: dict[str, list[str]] = {}
        for name, label, text in self.texts():
            if name != "payload" and (problem := text_limits.too_long(label, text)):
                errors.setdefault(name, []).append(problem)
                continue
            try:
                placeholders.extract(text)
            except placeholders.PlaceholderError as exc:
                errors.setdefault(name, []).append(
                    f"{label}: malformed placeholder, {exc}."
                )
        if errors:
            raise ValidationError(errors)

    def texts(self):
        """(field, label, text) of every text that may hold placeholders."""
        for name in self.TEXT_FIELDS:
            label = str(self._meta.get_field(name).verbose_name).capitalize()
            yield name, label, getattr(self, name)


class CarouselCard(TemplatePart):
    """One card of a carousel message."""

    TEXT_FIELDS = ("title", "description", "media_url", "choices")

    template = models.ForeignKey(
        "campaigns.MessageTemplate", on_delete=models.CASCADE, related_name="cards"
    )
    title = models.CharField(max_length=200, blank=True)
    description = models.TextField(blank=True)
    media_url = models.CharField("image or video URL", max_length=1000, blank=True)
    choices = models.TextField(
        blank=True, help_text=message_lines.CHOICES_HELP + " At most 10."
    )

    class Meta(TemplatePart.Meta):
        verbose_name = "carousel card"

    def __str__(self) -> str:
        return self.title or f"card {self.position + 1}"

    def clean(self) -> None:
        errors: dict[str, Any] = {}
        try:
            super().clean()
        except ValidationError as exc:
            errors.update(exc.message_dict)
        if not (self.title.strip() or self.description.strip() or self.media_url):
            errors.setdefault("title", []).append(
                "A card needs a title, a description or an image."
            )
        try:
            message_lines.parse_choices(self.choices)
        except ValidationError as exc:
            errors.setdefault("choices", []).extend(exc.messages)
        if errors:
            raise ValidationError(errors)


class ListItem(TemplatePart):
    """One choice of a list message; rows with the same section go together."""

    TEXT_FIELDS = ("section", "title", "description", "postback_data")

    template = models.ForeignKey(
        "campaigns.MessageTemplate",
        on_delete=models.CASCADE,
        related_name="list_items",
    )
    section = models.CharField(
        "section title",
        max_length=200,
        blank=True,
        help_text="Items in a row with the same section title form one section.",
    )
    title = models.CharField("item title", max_length=200)
    description = models.CharField(max_length=500, blank=True)
    postback_data = models.CharField(
        max_length=500, blank=True, help_text="Sent back when chosen."
    )

    class Meta(TemplatePart.Meta):
        verbose_name = "list item"

    def __str__(self) -> str:
        return self.title


class ChannelOverride(TemplatePart):
    """What one channel gets instead of the template's message."""

    class Form(models.TextChoices):
        TEXT = "TEXT", "Text instead"
        TEMPLATE = "TEMPLATE", "Omni template instead"
        PAYLOAD = "PAYLOAD", "The channel's own payload"

    TEXT_FIELDS = ("text", "omni_template_id", "omni_language", "payload")

    template = models.ForeignKey(
        "campaigns.MessageTemplate",
        on_delete=models.CASCADE,
        related_name="overrides",
    )
    channel = models.CharField(
        max_length=20,
        choices=Channel.choices,
        help_text="A text or an omni template instead: "
        + ", ".join(wire.OMNI_OVERRIDE_CHANNELS)
        + " only. The channel's own payload: any channel.",
    )
    form = models.CharField(
        "override with", max_length=10, choices=Form.choices, default=Form.TEXT
    )
    text = models.TextField(blank=True)
    omni_template_id = models.CharField("template id", max_length=200, blank=True)
    omni_version = models.CharField(
        "template version", max_length=50, blank=True, help_text="e.g. 2, or latest."
    )
    omni_language = models.CharField(
        "template language", max_length=20, blank=True, help_text="e.g. en_US"
    )
    payload = models.TextField(
        blank=True,
        help_text="Sent as written (explicit_channel_message), e.g. the JSON "
        "body of the channel's own API.",
    )

    class Meta(TemplatePart.Meta):
        verbose_name = "channel override"

    def __str__(self) -> str:
        return f"{self.channel}: {self.get_form_display()}"

    def clean(self) -> None:
        errors: dict[str, Any] = {}
        try:
            super().clean()
        except ValidationError as exc:
            errors.update(exc.message_dict)
        needed = {
            self.Form.TEXT: ("text",),
            self.Form.TEMPLATE: ("omni_template_id", "omni_version"),
            self.Form.PAYLOAD: ("payload",),
        }[self.form]
        for name in needed:
            if not getattr(self, name).strip():
                errors.setdefault(name, []).append(
                    f"Required for “{self.get_form_display()}”."
                )
        if (
            self.form != self.Form.PAYLOAD
            and self.channel not in wire.OMNI_OVERRIDE_CHANNELS
        ):
            allowed = ", ".join(wire.OMNI_OVERRIDE_CHANNELS)
            errors.setdefault("channel", []).append(
                f"Sinch replaces the message by another kind only on {allowed}; "
                "for this channel give the channel's own payload."
            )
        if errors:
            raise ValidationError(errors)


def row_set_problems(kind: str, rows: list[Any]) -> list[str]:
    """What is wrong with the rows a template of `kind` is about to have.

    `rows` are the CarouselCard, ListItem or ChannelOverride rows (of one
    model) that remain after an edit; an empty list is fine for the rows a
    kind does not use.
    """
    if not rows:
        return []
    model = type(rows[0])
    if (
        model is CarouselCard
        and kind == "CAROUSEL"
        and len(rows) > wire.MAX_CAROUSEL_CARDS
    ):
        return [
            f"A carousel has at most {wire.MAX_CAROUSEL_CARDS} cards "
            f"({len(rows)} given)."
        ]
    if model is ListItem and kind == "LIST":
        problems = []
        if len(rows) > wire.MAX_LIST_ITEMS:
            problems.append(
                f"A list has at most {wire.MAX_LIST_ITEMS} items in all "
                f"({len(rows)} given)."
            )
        sections = len({row.section for row in rows})
        if sections > wire.MAX_LIST_SECTIONS:
            problems.append(
                f"A list has at most {wire.MAX_LIST_SECTIONS} sections "
                f"({sections} given)."
            )
        return problems
    if model is ChannelOverride:
        seen: set[tuple[str, bool]] = set()
        problems = []
        for row in rows:
            key = (row.channel, row.form == ChannelOverride.Form.PAYLOAD)
            if key in seen:
                what = "payload" if key[1] else "replacement message"
                problems.append(f"{row.channel} has more than one {what}.")
            seen.add(key)
        return problems
    return []


# The rows each kind needs at least one of, and what to say when it has none.
REQUIRED_ROWS = {
    "CAROUSEL": (CarouselCard, "A carousel needs at least one card."),
    "LIST": (ListItem, "A list needs at least one item."),
}
