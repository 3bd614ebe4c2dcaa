"""Message templates, their parameters, and campaigns."""

from typing import Any

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models, transaction

from campaigns import placeholders
from config.lib.timezones import local_time, validate_time_zone
from contacts.models import ContactList, Purpose
from sinch import wire
from sinch.channels import Channel
from sinch.payloads import AppMessage


class MessageTemplate(models.Model):
    """One message definition with `${name}` placeholders in its text fields."""

    class Kind(models.TextChoices):
        TEXT = "TEXT", "Text"
        MEDIA = "MEDIA", "Media"
        CARD = "CARD", "Card"
        CHOICE = "CHOICE", "Choice"
        CHANNEL_TEMPLATE = "CHANNEL_TEMPLATE", "Channel template"

    name = models.CharField(max_length=200, unique=True)
    kind = models.CharField(max_length=20, choices=Kind.choices, default=Kind.TEXT)
    text = models.TextField(
        blank=True, help_text="Text message, or the prompt of a choice message."
    )
    title = models.CharField(max_length=200, blank=True, help_text="Card title.")
    description = models.TextField(blank=True, help_text="Card description.")
    media_url = models.CharField(
        "media URL",
        max_length=1000,
        blank=True,
        help_text="Media message, or the card's image or video.",
    )
    choices = models.TextField(
        blank=True,
        help_text=f"Card or choice replies, one per line (at most {wire.MAX_CHOICES}).",
    )
    template_channel = models.CharField(
        max_length=20, choices=Channel.choices, default=Channel.WHATSAPP
    )
    template_id = models.CharField(
        "template id", max_length=200, blank=True, help_text="As registered."
    )
    template_language = models.CharField(
        max_length=20, blank=True, help_text="Language code, e.g. en_US."
    )
    template_parameters = models.JSONField(
        default=dict,
        blank=True,
        help_text='The template\'s own parameters, e.g. {"1": "${first_name}"}.',
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
    }
    REQUIRED = {
        Kind.TEXT: ("text",),
        Kind.MEDIA: ("media_url",),
        Kind.CHOICE: ("choices",),
        Kind.CHANNEL_TEMPLATE: ("template_id",),
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

    @property
    def choice_list(self) -> list[str]:
        return [line.strip() for line in self.choices.splitlines() if line.strip()]

    def clean(self) -> None:
        errors: dict[str, list[str]] = {}
        for field in self.REQUIRED.get(self.kind, ()):
            if not getattr(self, field).strip():
                errors.setdefault(field, []).append(
                    f"Required for a {self.get_kind_display().lower()} message."
                )
        if self.kind == self.Kind.CARD and not any(
            getattr(self, f).strip() for f in ("title", "description", "media_url")
        ):
            errors.setdefault("title", []).append(
                "A card needs a title, a description or a media URL."
            )
        count = len(self.choice_list)
        if "choices" in self.KIND_FIELDS[self.kind] and count > wire.MAX_CHOICES:
            errors.setdefault("choices", []).append(
                f"At most {wire.MAX_CHOICES} choices ({count} given)."
            )
        if self.kind == self.Kind.CHANNEL_TEMPLATE and not _is_string_map(
            self.template_parameters
        ):
            errors.setdefault("template_parameters", []).append(
                'Must be an object of texts, e.g. {"1": "${first_name}"}.'
            )
        try:
            self.placeholders = self.extract_placeholders()
        except ValidationError as exc:
            for field, messages in exc.message_dict.items():
                errors.setdefault(field, []).extend(messages)
        if errors:
            raise ValidationError(errors)

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

    def _texts(self):
        for field in self.KIND_FIELDS[self.kind]:
            label = str(self._meta.get_field(field).verbose_name).capitalize()
            yield field, label, getattr(self, field)
        if self.kind == self.Kind.CHANNEL_TEMPLATE and _is_string_map(
            self.template_parameters
        ):
            for key, value in self.template_parameters.items():
                yield "template_parameters", f'Template parameter "{key}"', value

    def sinch_message(self) -> dict[str, Any]:
        """The Sinch `message` object, placeholders left for Sinch to fill."""
        kind = self.Kind
        if self.kind == kind.TEXT:
            message = AppMessage.text(self.text)
        elif self.kind == kind.MEDIA:
            message = AppMessage.media(self.media_url)
        elif self.kind == kind.CARD:
            message = AppMessage.card(
                title=self.title,
                description=self.description,
                media_url=self.media_url,
                choices=self.choice_list,
            )
        elif self.kind == kind.CHOICE:
            message = AppMessage.choice(self.text, self.choice_list)
        else:
            message = AppMessage.channel_template(
                self.template_channel,
                self.template_id,
                language_code=self.template_language,
                parameters=self.template_parameters or {},
            )
        return message.to_wire()

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


class Campaign(models.Model):
    """One send of a template to an audience of lists on a channel.

    Status changes belong to the dispatch code (a later issue); this model
    only validates what a marketer enters while the campaign is a draft.
    """

    class Status(models.TextChoices):
        DRAFT = "DRAFT", "Draft"
        LAUNCHING = "LAUNCHING", "Launching (freezing recipients)"
        SCHEDULED = "SCHEDULED", "Scheduled"
        SUBMITTING = "SUBMITTING", "Submitting"
        PAUSED = "PAUSED", "Paused"
        SUBMITTED = "SUBMITTED", "Submitted"
        COMPLETED = "COMPLETED", "Completed"
        CANCELLED = "CANCELLED", "Cancelled"
        FAILED = "FAILED", "Failed"

    class PresendState(models.TextChoices):
        NOT_RUN = "", "Not run"
        QUEUED = "QUEUED", "Queued"
        RUNNING = "RUNNING", "Running"
        DONE = "DONE", "Done"
        FAILED = "FAILED", "Failed"

    name = models.CharField(max_length=200)
    template = models.ForeignKey(
        MessageTemplate, on_delete=models.PROTECT, related_name="campaigns"
    )
    lists = models.ManyToManyField(
        ContactList,
        related_name="campaigns",
        verbose_name="audience lists",
        help_text="A person on several lists receives the message once.",
    )
    channel = models.CharField(
        max_length=16, choices=Channel.choices, default=Channel.SMS
    )
    channel_priority_order = models.JSONField(
        default=list,
        blank=True,
        help_text="Fallback order, starting with the channel above; "
        "empty: the channel only.",
    )
    purpose = models.CharField(
        max_length=13, choices=Purpose.choices, default=Purpose.MARKETING
    )
    send_at = models.DateTimeField(
        null=True, blank=True, help_text="UTC instant; empty: send when launched."
    )
    send_time_zone = models.CharField(
        max_length=64,
        blank=True,
        validators=[validate_time_zone],
        help_text="IANA name, e.g. Europe/Berlin.",
    )
    ttl_seconds = models.PositiveBigIntegerField(
        "ttl (seconds)",
        null=True,
        blank=True,
        validators=[
            MinValueValidator(wire.TTL_MIN_S),
            MaxValueValidator(wire.TTL_MAX_S),
        ],
        help_text="How long Sinch keeps trying to deliver; empty: Sinch's default.",
    )
    sms_sender = models.CharField(
        "SMS sender",
        max_length=wire.CHANNEL_PROPERTY_MAX_LEN,
        blank=True,
        help_text="Number or alphanumeric sender id (SMS_SENDER).",
    )
    channel_properties = models.JSONField(
        default=dict,
        blank=True,
        help_text='Other channel properties, e.g. {"SMS_FLASH_MESSAGE": "true"}.',
    )
    campaign_values = models.JSONField(
        default=dict,
        blank=True,
        help_text="Values of the template's campaign-sourced placeholders, "
        'e.g. {"offer": "20% off"}.',
    )
    seed_list = models.ForeignKey(
        ContactList,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="seeded_campaigns",
        help_text="Receives test sends.",
    )
    status = models.CharField(
        max_length=12, choices=Status.choices, default=Status.DRAFT, editable=False
    )
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        editable=False,
        related_name="+",
    )
    presend = models.JSONField(
        "pre-send check",
        null=True,
        blank=True,
        editable=False,
        help_text="Summary of the last pre-send check (campaigns.presend).",
    )
    presend_at = models.DateTimeField(
        "pre-send check at", null=True, blank=True, editable=False
    )
    presend_state = models.CharField(
        "pre-send check state",
        max_length=8,
        choices=PresendState.choices,
        default=PresendState.NOT_RUN,
        blank=True,
        editable=False,
    )
    presend_requested_at = models.DateTimeField(null=True, blank=True, editable=False)
    presend_progress = models.PositiveIntegerField(default=0, editable=False)
    presend_total = models.PositiveIntegerField(null=True, blank=True, editable=False)
    presend_error = models.TextField(blank=True, editable=False)
    message_snapshot = models.JSONField(
        null=True,
        blank=True,
        editable=False,
        help_text="The message and its parameter sources, frozen at launch.",
    )
    frozen_at = models.DateTimeField(null=True, blank=True, editable=False)
    launched_at = models.DateTimeField(null=True, blank=True, editable=False)
    launched_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        editable=False,
        related_name="+",
    )
    status_reason = models.TextField(
        blank=True,
        editable=False,
        help_text="Why the campaign is paused or failed, in words.",
    )
    cancel_receipt = models.JSONField(
        null=True,
        blank=True,
        editable=False,
        help_text="What a cancel prevented and what had already gone.",
    )
    last_receipt_at = models.DateTimeField(null=True, blank=True, editable=False)
    receipts_stalled = models.TextField(
        blank=True,
        editable=False,
        help_text="Set by reconciliation when receipts stopped arriving.",
    )
    parent = models.ForeignKey(
        "self",
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        editable=False,
        related_name="retries",
        help_text="The campaign whose failed recipients this one retries.",
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-created_at"]
        permissions = [
            ("launch_campaign", "Can launch campaigns"),
            ("pause_campaign", "Can pause and resume campaigns"),
            ("cancel_campaign", "Can cancel campaigns"),
        ]

    def __str__(self) -> str:
        return self.name

    def clean(self) -> None:
        errors: dict[str, list[str]] = {}
        for field, check in (
            ("channel_priority_order", self._priority_order_errors),
            ("sms_sender", self._sms_sender_errors),
            ("channel_properties", self._channel_property_errors),
            ("campaign_values", self._campaign_value_errors),
        ):
            messages = check()
            if messages:
                errors[field] = messages
        if errors:
            raise ValidationError(errors)

    @property
    def local_send_time(self):
        """The send time as wall-clock time in its own zone (None: now)."""
        if self.send_at is None:
            return None
        return local_time(self.send_at, self.send_time_zone)

    def sinch_channel_properties(self) -> dict[str, str]:
        """`channel_properties` as sent to Sinch, the SMS sender included."""
        properties = dict(self.channel_properties or {})
        if self.sms_sender:
            properties["SMS_SENDER"] = self.sms_sender
        return properties

    def _priority_order_errors(self) -> list[str]:
        order = self.channel_priority_order
        if order in (None, []):
            return []
        if not isinstance(order, list) or not all(isinstance(c, str) for c in order):
            return ['Must be a list of channels, e.g. ["WHATSAPP", "SMS"].']
        messages = []
        unknown = [c for c in order if c not in Channel.values]
        if unknown:
            messages.append(f"Unknown channel: {', '.join(unknown)}.")
        dupes = sorted({c for c in order if order.count(c) > 1})
        if dupes:
            messages.append(f"Listed more than once: {', '.join(dupes)}.")
        if self.channel and order[0] != self.channel:
            messages.append(f"Must start with the campaign's channel, {self.channel}.")
        return messages

    def _sms_sender_errors(self) -> list[str]:
        if self.sms_sender and "SMS_SENDER" in (self.channel_properties or {}):
            return ["Also set as SMS_SENDER in the channel properties; keep one."]
        return []

    def _channel_property_errors(self) -> list[str]:
        properties = self.channel_properties
        if properties in (None, {}):
            return []
        if not _is_string_map(properties):
            return ['Must be an object of texts, e.g. {"SMS_SENDER": "MyShop"}.']
        messages = []
        unknown = sorted(set(properties) - wire.CHANNEL_PROPERTY_KEYS)
        if unknown:
            messages.append(
                f"Unknown channel property: {', '.join(unknown)}. Known: "
                f"{', '.join(sorted(wire.CHANNEL_PROPERTY_KEYS))}."
            )
        limit = wire.CHANNEL_PROPERTY_MAX_LEN
        for key, value in properties.items():
            if len(value) > limit:
                messages.append(
                    f"{key} is {len(value)} characters long; at most {limit}."
                )
        return messages

    def _campaign_value_errors(self) -> list[str]:
        values = self.campaign_values
        if values is None:
            values = {}
        if not _is_string_map(values):
            return ['Must be an object of texts, e.g. {"offer": "20% off"}.']
        if self.template_id is None:
            return []
        wanted = self.template.parameters.filter(
            source=TemplateParameter.Source.CAMPAIGN
        )
        missing = [
            p.name for p in wanted if not values.get(p.name, "") and not p.default
        ]
        if missing:
            return [
                "No value for the campaign placeholder"
                f"{'s' if len(missing) > 1 else ''} {', '.join(missing)}: "
                "set it here or give it a default on the template."
            ]
        return []


def _is_string_map(value: Any) -> bool:
    return isinstance(value, dict) and all(isinstance(v, str) for v in value.values())


class Batch(models.Model):
    """One call of Sinch's Batch API: at most wire.MAX_RECIPIENTS recipients.

    `metadata_key` is sent as batch_metadata and identifies the batch at Sinch
    (after an uncertain outcome it is looked up by it before any resubmission).
    A test send is a batch with `is_test`, kept out of the campaign's figures.
    """

    class Status(models.TextChoices):
        PENDING = "PENDING", "Not submitted yet"
        SUBMITTING = "SUBMITTING", "Being submitted"
        UNCERTAIN = "UNCERTAIN", "Outcome uncertain: being checked at Sinch"
        ACCEPTED = "ACCEPTED", "Accepted by Sinch"
        FAILED = "FAILED", "Failed"
        CANCELLED = "CANCELLED", "Cancelled"

    campaign = models.ForeignKey(
        Campaign, on_delete=models.PROTECT, related_name="batches"
    )
    sequence = models.PositiveIntegerField(help_text="1, 2, ... within the campaign.")
    is_test = models.BooleanField("test send", default=False)
    size = models.PositiveIntegerField(default=0)
    metadata_key = models.CharField(max_length=64, unique=True, editable=False)
    status = models.CharField(
        max_length=10, choices=Status.choices, default=Status.PENDING
    )
    sinch_batch_id = models.CharField(
        "Sinch batch id", max_length=64, blank=True, db_index=True
    )
    remote_status = models.CharField(
        max_length=32, blank=True, help_text="As Sinch last reported it."
    )
    send_after = models.DateTimeField(
        null=True, blank=True, help_text="Effective send time as Sinch stored it."
    )
    attempts = models.PositiveSmallIntegerField(default=0)
    last_error = models.TextField(blank=True)
    not_before = models.DateTimeField(
        null=True,
        blank=True,
        help_text="Not submitted before this time (held here, or backing off).",
    )
    claimed_at = models.DateTimeField(
        null=True, blank=True, help_text="When a worker started submitting it."
    )
    uncertain_since = models.DateTimeField(null=True, blank=True)
    remote_checked_at = models.DateTimeField(null=True, blank=True)
    cancel_requested = models.BooleanField(default=False)
    last_receipt_at = models.DateTimeField(
        null=True, blank=True, help_text="When the last callback about it arrived."
    )
    requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
    )
    created_at = models.DateTimeField(auto_now_add=True)
    submitted_at = models.DateTimeField(null=True, blank=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["campaign", "is_test", "sequence"]
        verbose_name_plural = "batches"
        indexes = [models.Index(fields=["status", "not_before"])]
        constraints = [
            models.UniqueConstraint(
                fields=["campaign", "is_test", "sequence"],
                name="batch_sequence_unique",
            )
        ]

    def __str__(self) -> str:
        kind = "test batch" if self.is_test else "batch"
        return f"{self.campaign} {kind} {self.sequence}"


class Recipient(models.Model):
    """One person in one campaign (or test send): what was sent and what happened.

    `parameters` is the value snapshot sent to Sinch; `index` is the position
    in the batch, sent back with every receipt in message_metadata.
    """

    class Status(models.TextChoices):
        EXCLUDED = "EXCLUDED", "Excluded"
        PENDING = "PENDING", "Not submitted yet"
        SUBMITTED = "SUBMITTED", "Handed to Sinch"
        QUEUED_ON_CHANNEL = "QUEUED_ON_CHANNEL", "Queued on channel"
        DELIVERED = "DELIVERED", "Delivered"
        READ = "READ", "Read"
        FAILED = "FAILED", "Failed"
        CANCELLED = "CANCELLED", "Cancelled"

    # A launch writes a million rows: no database-level foreign-key checks
    # (PostgreSQL spends more on them than on the rows; the freeze writes
    # batches and recipients together and nothing deletes them, PROTECT still
    # guards deletes made through Django), and no single-column indexes the
    # (campaign, status) index and the (batch, index) constraint already give.
    campaign = models.ForeignKey(
        Campaign,
        on_delete=models.PROTECT,
        related_name="recipients",
        db_constraint=False,
        db_index=False,
    )
    batch = models.ForeignKey(
        Batch,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="recipients",
        db_constraint=False,
        db_index=False,
    )
    index = models.PositiveIntegerField(null=True, blank=True)
    contact = models.ForeignKey(
        "contacts.Contact",
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="+",
        db_constraint=False,
    )
    is_test = models.BooleanField(default=False)
    identity = models.CharField(max_length=255)
    parameters = models.JSONField(default=dict, blank=True)
    status = models.CharField(
        max_length=20, choices=Status.choices, default=Status.PENDING
    )
    reason = models.CharField(max_length=255, blank=True)
    failure_code = models.CharField(
        max_length=64, blank=True, help_text="Sinch's reason code of a failure."
    )
    switched_channel = models.BooleanField(
        default=False,
        help_text="Sinch reported SWITCHING_CHANNEL: a later success may "
        "follow a failure on the first channel.",
    )
    message_id = models.CharField(max_length=64, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["batch", "index"], name="recipient_position_unique"
            )
        ]
        indexes = [models.Index(fields=["campaign", "status"])]

    def __str__(self) -> str:
        return f"{self.identity} in {self.campaign}"


class RequestWindow(models.Model):
    """Batch API requests made in one second, counted for every worker.

    The rate limiter's store when there is no Redis (campaigns.ratelimit).
    """

    second = models.BigIntegerField(primary_key=True)
    count = models.PositiveIntegerField(default=0)

    def __str__(self) -> str:
        return f"{self.count} requests at {self.second}"


class CampaignCount(models.Model):
    """How many of a campaign's recipients are in one status, kept as they move.

    Every status change of Recipient rows goes through campaigns.counters,
    so the dashboard reads a handful of rows instead of counting a million;
    `counters.recount` rebuilds them from the recipients (and the periodic
    reconciliation checks them).
    """

    campaign = models.ForeignKey(
        Campaign, on_delete=models.CASCADE, related_name="counts"
    )
    status = models.CharField(max_length=20, choices=Recipient.Status.choices)
    count = models.BigIntegerField(default=0)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["campaign", "status"], name="campaign_count_unique"
            )
        ]

    def __str__(self) -> str:
        return f"{self.campaign}: {self.count} {self.status}"


class CampaignTimeline(models.Model):
    """Receipts of a campaign per minute, for the dashboard's timeline chart."""

    campaign = models.ForeignKey(
        Campaign, on_delete=models.CASCADE, related_name="timeline"
    )
    minute = models.DateTimeField()
    status = models.CharField(max_length=20, choices=Recipient.Status.choices)
    count = models.BigIntegerField(default=0)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["campaign", "minute", "status"],
                name="campaign_timeline_unique",
            )
        ]

    def __str__(self) -> str:
        return f"{self.campaign} {self.minute:%H:%M} {self.status}: {self.count}"


class WebhookEvent(models.Model):
    """One Sinch callback as received: stored first, processed in bulk later.

    The nonce is unique: a replayed callback is refused before it is stored.
    An event that matches no message, batch or contact is kept as an ORPHAN
    for reconciliation.
    """

    class State(models.TextChoices):
        NEW = "NEW", "Not processed yet"
        PROCESSED = "PROCESSED", "Processed"
        ORPHAN = "ORPHAN", "Orphan: no matching message or batch"
        IGNORED = "IGNORED", "Ignored (nothing to do)"
        FAILED = "FAILED", "Processing failed"

    received_at = models.DateTimeField()
    signed_at = models.DateTimeField(help_text="The signature's timestamp.")
    nonce = models.CharField(max_length=128, unique=True)
    body = models.TextField(help_text="The raw JSON as received.")
    kind = models.CharField(max_length=40, blank=True)
    state = models.CharField(max_length=10, choices=State.choices, default=State.NEW)
    processed_at = models.DateTimeField(null=True, blank=True)
    error = models.TextField(blank=True)
    campaign = models.ForeignKey(
        Campaign,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
        db_constraint=False,
    )

    class Meta:
        indexes = [
            models.Index(fields=["state", "id"]),
            models.Index(fields=["received_at"]),
            # What the processor reads: small whatever the table's size.
            models.Index(
                fields=["id"],
                condition=models.Q(state="NEW"),
                name="webhook_event_new",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.kind or 'callback'} #{self.pk} ({self.state})"


class InboundMessage(models.Model):
    """A message a person sent us (a reply), linked to the contact when known."""

    class Keyword(models.TextChoices):
        STOP = "STOP", "Stop (opt-out recorded)"
        START = "START", "Start (opt-in recorded)"
        HELP = "HELP", "Help (logged)"
        NONE = "", "Reply"

    received_at = models.DateTimeField()
    channel = models.CharField(max_length=16)
    identity = models.CharField(max_length=255)
    contact = models.ForeignKey(
        "contacts.Contact",
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="inbound_messages",
    )
    campaign = models.ForeignKey(
        Campaign,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="replies",
    )
    text = models.TextField(blank=True)
    keyword = models.CharField(
        max_length=5, choices=Keyword.choices, default=Keyword.NONE, blank=True
    )
    event = models.ForeignKey(
        WebhookEvent, on_delete=models.SET_NULL, null=True, blank=True
    )
    message_id = models.CharField(max_length=64, blank=True)

    class Meta:
        ordering = ["-received_at"]
        indexes = [models.Index(fields=["contact", "received_at"])]

    def __str__(self) -> str:
        return f"{self.channel} {self.identity}: {self.text[:40]}"
