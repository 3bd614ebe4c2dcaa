"""Authoring: message templates and their parameters."""

from typing import Any

from django.core.exceptions import ValidationError
from django.db import models, transaction

from campaigns import placeholders, text_limits
from campaigns.models import message_lines, messages
from sinch import channel_templates, wire
from sinch.channels import Channel

# Only these channels have channel-specific templates at Sinch.
TEMPLATE_CHANNEL_CHOICES = [
    (c.value, c.label)
    for c in Channel
    if c.value in channel_templates.TEMPLATE_CHANNELS
]


def template_channel_error(value: str) -> str:
    """Why a channel template cannot be registered on `value`, in words."""
    names = ", ".join(label for _, label in TEMPLATE_CHANNEL_CHOICES)
    return (
        f"{value} has no channel-specific templates at Sinch; only {names} do. "
        "For other channels write the message itself (a text, media, card or "
        "choice message)."
    )


class MessageTemplate(models.Model):
    """One message definition with `${name}` placeholders in its text fields."""

    class Kind(models.TextChoices):
        TEXT = "TEXT", "Text"
        MEDIA = "MEDIA", "Media"
        CARD = "CARD", "Card"
        CHOICE = "CHOICE", "Choice"
        CHANNEL_TEMPLATE = "CHANNEL_TEMPLATE", "Channel template"
        CAROUSEL = "CAROUSEL", "Carousel"
        LIST = "LIST", "List"
        LOCATION = "LOCATION", "Location"
        CONTACT_INFO = "CONTACT_INFO", "Contact info"
        OMNI_TEMPLATE = "OMNI_TEMPLATE", "Omni template"

    name = models.CharField(max_length=200, unique=True)
    kind = models.CharField(max_length=20, choices=Kind.choices, default=Kind.TEXT)
    text = models.TextField(
        blank=True, help_text="Text message, or the prompt of a choice message."
    )
    title = models.CharField(
        max_length=200, blank=True, help_text="Card, list or location title."
    )
    description = models.TextField(blank=True, help_text="Card or list description.")
    media_url = models.CharField(
        "media URL",
        max_length=1000,
        blank=True,
        help_text="Media message, or the card's or list's image or video.",
    )
    choices = models.TextField(
        blank=True,
        help_text=f"Card or choice buttons (at most {wire.MAX_CHOICES}), or the "
        f"buttons below a carousel (at most {wire.MAX_CAROUSEL_CHOICES}). "
        + message_lines.CHOICES_HELP,
    )
    latitude = models.FloatField(
        null=True, blank=True, help_text="Location, e.g. 52.5200."
    )
    longitude = models.FloatField(
        null=True, blank=True, help_text="Location, e.g. 13.4050."
    )
    label = models.CharField(
        max_length=200, blank=True, help_text="Location label, e.g. the address."
    )
    contact_name = models.CharField(
        "contact name", max_length=200, blank=True, help_text="Full name."
    )
    contact_phones = models.TextField(
        "phone numbers",
        blank=True,
        help_text="One per line, with an optional type: +493012345678 | WORK",
    )
    contact_emails = models.TextField(
        "email addresses",
        blank=True,
        help_text="One per line, with an optional type: info@shop.example | WORK",
    )
    contact_company = models.CharField("company", max_length=200, blank=True)
    template_channel = models.CharField(
        max_length=20, choices=TEMPLATE_CHANNEL_CHOICES, default=Channel.WHATSAPP
    )
    template_id = models.CharField(
        "template id", max_length=200, blank=True, help_text="As registered."
    )
    template_language = models.CharField(
        max_length=20,
        blank=True,
        help_text="The language it is registered in, e.g. en or en_US "
        "(required for WhatsApp; en-us is stored as en_US).",
    )
    template_version = models.CharField(
        max_length=50,
        blank=True,
        help_text="Omni template version, e.g. 2, or latest.",
    )
    template_parameters = models.JSONField(
        default=dict,
        blank=True,
        help_text="The template's own parameters. WhatsApp names them by "
        'component, e.g. {"body[1]text": "${first_name}", '
        '"header[1]image.link": "https://…", "button[0]url[1]text": "${code}"}.',
    )
    placeholders = models.JSONField(default=list, editable=False)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    # The text fields each kind uses; placeholders are only looked for there.
    KIND_FIELDS = {
        Kind.TEXT: ("text",),
        Kind.MEDIA: ("media_url",),
        Kind.CARD: ("title", "description", "media_url", "choices"),
        Kind.CHOICE: ("text", "choices"),
        Kind.CHANNEL_TEMPLATE: ("template_id", "template_language"),
        Kind.CAROUSEL: ("choices",),
        Kind.LIST: ("title", "description", "media_url"),
        Kind.LOCATION: ("title", "label"),
        Kind.CONTACT_INFO: (
            "contact_name",
            "contact_phones",
            "contact_emails",
            "contact_company",
        ),
        Kind.OMNI_TEMPLATE: ("template_id", "template_version", "template_language"),
    }
    REQUIRED = {
        Kind.TEXT: ("text",),
        Kind.MEDIA: ("media_url",),
        Kind.CHOICE: ("choices",),
        Kind.CHANNEL_TEMPLATE: ("template_id",),
        Kind.LIST: ("title",),
        Kind.LOCATION: ("title",),
        Kind.CONTACT_INFO: ("contact_name", "contact_phones"),
        Kind.OMNI_TEMPLATE: ("template_id", "template_version"),
    }
    # The one-per-line fields, their parser and how many lines they may have.
    LINE_FIELDS = {
        Kind.CARD: {"choices": message_lines.parse_choices},
        Kind.CHOICE: {"choices": message_lines.parse_choices},
        Kind.CAROUSEL: {
            "choices": lambda text: message_lines.parse_choices(
                text, wire.MAX_CAROUSEL_CHOICES
            )
        },
        Kind.CONTACT_INFO: {
            "contact_phones": message_lines.parse_phones,
            "contact_emails": message_lines.parse_emails,
        },
    }

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name

    def save(self, *args: Any, **kwargs: Any) -> None:
        # Refuses a malformed placeholder even when clean() was not called.
        self.placeholders = self.extract_placeholders()
        with transaction.atomic():
            super().save(*args, **kwargs)
            self.sync_parameters()

    def clean(self) -> None:
        errors: dict[str, list[str]] = {}
        kind = self.get_kind_display().lower()
        article = "an" if kind[0] in "aeiou" else "a"
        for field in self.REQUIRED.get(self.kind, ()):
            if not getattr(self, field).strip():
                errors.setdefault(field, []).append(
                    f"Required for {article} {kind} message."
                )
        if self.kind == self.Kind.CARD and not any(
            getattr(self, f).strip() for f in ("title", "description", "media_url")
        ):
            errors.setdefault("title", []).append(
                "A card needs a title, a description or a media URL."
            )
        for field, parse in self.LINE_FIELDS.get(self.kind, {}).items():
            try:
                parse(getattr(self, field))
            except ValidationError as exc:
                errors.setdefault(field, []).extend(exc.messages)
        if self.kind == self.Kind.LOCATION:
            for field, bound in (("latitude", 90), ("longitude", 180)):
                value = getattr(self, field)
                if value is None or not -bound <= value <= bound:
                    errors.setdefault(field, []).append(
                        f"Required for a location: a number from -{bound} to {bound}."
                    )
        if self.kind == self.Kind.OMNI_TEMPLATE and not is_string_map(
            self.template_parameters
        ):
            errors.setdefault("template_parameters", []).append(
                'Must be an object of texts, e.g. {"name": "${first_name}"}.'
            )
        if self.kind == self.Kind.CHANNEL_TEMPLATE:
            for field, messages in self.channel_template_errors().items():
                errors.setdefault(field, []).extend(messages)
        for field, label, text in self._own_texts():
            if problem := text_limits.too_long(label, text):
                errors.setdefault(field, []).append(problem)
        if errors:
            raise ValidationError(errors)  # a too long text: nothing more to read
        try:
            self.placeholders = self.extract_placeholders()
        except ValidationError as exc:
            for field, messages in exc.message_dict.items():
                errors.setdefault(field, []).extend(messages)
        if errors:
            raise ValidationError(errors)

    def clean_fields(self, exclude=None) -> None:
        # A channel stored before the choices were narrowed gets its own
        # message (from clean()), and none when the kind does not use it.
        try:
            super().clean_fields(exclude=exclude)
        except ValidationError as exc:
            errors = exc.error_dict
            if self.template_channel not in channel_templates.TEMPLATE_CHANNELS:
                errors.pop("template_channel", None)
            if errors:
                raise ValidationError(errors) from None

    def channel_template_errors(self) -> dict[str, list[str]]:
        """What Sinch would refuse in this channel template, by field.

        The language of a WhatsApp template is normalised on the way
        (`en-us` -> `en_US`).
        """
        errors: dict[str, list[str]] = {}
        channel = self.template_channel
        if channel not in channel_templates.TEMPLATE_CHANNELS:
            errors["template_channel"] = [template_channel_error(channel)]
        params = self.template_parameters
        if not is_string_map(params):
            errors["template_parameters"] = [
                'Must be an object of texts, e.g. {"body[1]text": "${first_name}"}.'
            ]
        elif channel == Channel.WHATSAPP and (
            bad := channel_templates.whatsapp_key_errors(params)
        ):
            errors["template_parameters"] = bad
        if channel == Channel.WHATSAPP:
            language = self.template_language.strip()
            if not language:
                errors["template_language"] = [
                    "Required for a WhatsApp template: the language it is "
                    "registered in, e.g. en or en_US."
                ]
            elif not wire.PLACEHOLDER.fullmatch(language):
                try:
                    self.template_language = channel_templates.normalise_language(
                        language
                    )
                except ValueError as exc:
                    errors["template_language"] = [str(exc)]
        return errors

    def extract_placeholders(self) -> list[str]:
        """Every placeholder of the kind's text fields, in order of first use.

        Raises ValidationError naming the field and the character position.
        """
        names: list[str] = []
        errors: dict[str, list[str]] = {}
        for field, label, text in self._texts():
            try:
                found = placeholders.extract(text)
            except placeholders.PlaceholderError as exc:
                errors.setdefault(field, []).append(
                    f"{label}: malformed placeholder, {exc}."
                )
                continue
            names.extend(name for name in found if name not in names)
        if errors:
            raise ValidationError(errors)
        return names

    def foreign_placeholders(self) -> list[str]:
        """Warnings for placeholders written in another tool's syntax
        ("{{first_name}}"), each naming its field and the ${name} to write."""
        return [
            f"{label}: {found.message}"
            for _field, label, text in self._texts()
            for found in placeholders.foreign_syntax(text)
        ]

    def _own_texts(self):
        """(field, label, text) of the template's own fields, rows left out."""
        for field in self.KIND_FIELDS[self.kind]:
            label = str(self._meta.get_field(field).verbose_name).capitalize()
            yield field, label, getattr(self, field)
        if is_string_map(self.template_parameters):
            for key, value in self.template_parameters.items():
                yield "template_parameters", f'Template parameter "{key}"', value

    def _texts(self):
        for field in self.KIND_FIELDS[self.kind]:
            label = str(self._meta.get_field(field).verbose_name).capitalize()
            yield field, label, getattr(self, field)
        templates = (self.Kind.CHANNEL_TEMPLATE, self.Kind.OMNI_TEMPLATE)
        if self.kind in templates and is_string_map(self.template_parameters):
            for key, value in self.template_parameters.items():
                yield "template_parameters", f'Template parameter "{key}"', value
        if self.pk is None:
            return
        rows = []
        if self.kind == self.Kind.CAROUSEL:
            rows += self.cards.all()
        if self.kind == self.Kind.LIST:
            rows += self.list_items.all()
        if self.kind != self.Kind.CHANNEL_TEMPLATE:
            rows += self.overrides.all()
        for row in rows:
            what = f"{row._meta.verbose_name.capitalize()} {row}"
            for field, label, text in row.texts():
                yield field, f"{what}: {label}", text

    def update_placeholders(self) -> None:
        """Placeholders read again, rows included (after rows were edited)."""
        try:
            found = self.extract_placeholders()
        except ValidationError:
            return  # a malformed row is refused by its own clean()
        if found != self.placeholders:
            self.placeholders = found
            MessageTemplate.objects.filter(pk=self.pk).update(placeholders=found)
        self.sync_parameters()

    def sinch_message(self) -> dict[str, Any]:
        """The Sinch `message` object, placeholders left for Sinch to fill.

        Raises ValidationError or ValueError when the template is incomplete.
        """
        return messages.build(self)

    def sync_parameters(self) -> None:
        """One TemplateParameter per placeholder: add new ones, drop old ones."""
        self.parameters.exclude(name__in=self.placeholders).delete()
        existing = set(self.parameters.values_list("name", flat=True))
        TemplateParameter.objects.bulk_create(
            [
                TemplateParameter.for_name(self, name)
                for name in self.placeholders
                if name not in existing
            ]
        )


class TemplateParameter(models.Model):
    """Where the value of one placeholder comes from, and its fallback."""

    class Source(models.TextChoices):
        CONTACT_FIELD = "CONTACT_FIELD", "Contact field"
        ATTRIBUTE = "ATTRIBUTE", "Custom attribute"
        CAMPAIGN = "CAMPAIGN", "Value set on the campaign"

    class ContactField(models.TextChoices):
        FIRST_NAME = "first_name", "First name"
        LAST_NAME = "last_name", "Last name"
        LANGUAGE = "language", "Language"
        TIME_ZONE = "time_zone", "Time zone"
        EXTERNAL_ID = "external_id", "External id"

    template = models.ForeignKey(
        MessageTemplate, on_delete=models.CASCADE, related_name="parameters"
    )
    name = models.CharField(max_length=200)
    source = models.CharField(
        max_length=20, choices=Source.choices, default=Source.ATTRIBUTE
    )
    contact_field = models.CharField(
        max_length=20, choices=ContactField.choices, blank=True
    )
    attribute = models.CharField(
        "attribute key",
        max_length=200,
        blank=True,
        help_text="Key in the contact's custom attributes.",
    )
    default = models.CharField(
        max_length=1000,
        blank=True,
        help_text="Used when the contact (or campaign) has no value; "
        "leave empty to block such recipients.",
    )

    class Meta:
        ordering = ["template", "id"]
        constraints = [
            models.UniqueConstraint(
                fields=["template", "name"], name="template_parameter_unique_name"
            )
        ]

    def __str__(self) -> str:
        return self.name

    @classmethod
    def for_name(cls, template: MessageTemplate, name: str) -> "TemplateParameter":
        """A new parameter with the obvious source for `name`."""
        if name in cls.ContactField.values:
            return cls(
                template=template,
                name=name,
                source=cls.Source.CONTACT_FIELD,
                contact_field=name,
            )
        return cls(template=template, name=name, attribute=name)

    def clean(self) -> None:
        if self.source == self.Source.CONTACT_FIELD and not self.contact_field:
            raise ValidationError({"contact_field": "Choose the contact field."})
        if self.source == self.Source.ATTRIBUTE and not self.attribute.strip():
            raise ValidationError({"attribute": "Enter the attribute key."})


def is_string_map(value: Any) -> bool:
    """A JSON object whose values are all texts."""
    return isinstance(value, dict) and all(isinstance(v, str) for v in value.values())
