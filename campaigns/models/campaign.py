"""The campaign: a template, an audience, a channel and a send time."""

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models

from campaigns import channel_properties
from campaigns.models.segments import Segment
from campaigns.models.templates import (
    MessageTemplate,
    TemplateParameter,
    is_string_map,
)
from config.lib.timezones import local_time, validate_time_zone
from contacts.models import ContactList, Purpose
from sinch import wire
from sinch.channels import Channel


class Campaign(models.Model):
    """One send of a template to an audience of lists on a channel.

    Its status changes only through campaigns.transitions; this model
    validates what a marketer enters while the campaign is a draft.
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

    class MultiZoneRule(models.TextChoices):
        WEST = "WEST", "the westernmost zone (nobody gets it early)"
        EAST = "EAST", "the easternmost zone"
        FALLBACK = "FALLBACK", "the campaign's fallback zone"

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
        blank=True,
        help_text="A person on several lists or segments receives the message once.",
    )
    segments = models.ManyToManyField(
        Segment,
        related_name="campaigns",
        blank=True,
        verbose_name="audience segments",
        help_text="Evaluated once, when the campaign is launched.",
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
    whatsapp_window_only = models.BooleanField(
        "WhatsApp: only people who wrote to us in the last 24 hours",
        default=False,
        help_text="Transactional campaigns only. WhatsApp delivers a message "
        "that is not a WhatsApp template only within 24 hours of the person's "
        "last message to you (WHATSAPP_WINDOW_HOURS); with this ticked, the "
        "others are left out with the reason.",
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
    send_in_local_time = models.BooleanField(
        "send in each recipient's local time",
        default=False,
        help_text="Each recipient gets the message at the send time's "
        "wall-clock time in their own time zone (e.g. 10:00 local for "
        "everyone); the date and time are those of the send time in its zone.",
    )
    fallback_time_zone = models.CharField(
        "recipients' fallback time zone",
        max_length=64,
        blank=True,
        validators=[validate_time_zone],
        help_text="For recipients whose zone is neither known nor inferable "
        "from their number; empty: DEFAULT_RECIPIENT_TIME_ZONE, else the send "
        "time zone, else UTC.",
    )
    multi_zone_rule = models.CharField(
        "recipients in several zones",
        max_length=8,
        choices=MultiZoneRule.choices,
        default=MultiZoneRule.WEST,
        help_text="Which zone's local time applies when a number tells only "
        "a country or area spanning several zones. Quiet hours still hold "
        "in every one of them.",
    )
    quiet_hours_exempt = models.BooleanField(
        "exempt from quiet hours",
        default=False,
        help_text="Transactional campaigns only: sent regardless of the "
        "recipients' quiet hours (QUIET_HOURS). Setting or clearing it is audited.",
    )
    quiet_hours_exempted_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        editable=False,
        related_name="+",
    )
    quiet_hours_exempted_at = models.DateTimeField(
        null=True, blank=True, editable=False
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
    track_links = models.BooleanField(
        "track links",
        default=False,
        help_text="Every URL in the message becomes a short link of its own for "
        "each recipient (SHORT_LINK_BASE_URL), so clicks are counted; the "
        "target is frozen at launch.",
    )
    utm_source = models.CharField("UTM source", max_length=100, blank=True)
    utm_medium = models.CharField("UTM medium", max_length=100, blank=True)
    utm_campaign = models.CharField(
        "UTM campaign",
        max_length=100,
        blank=True,
        help_text="Tracked links only: added to each target's query string "
        "(utm_source, utm_medium, utm_campaign), keeping its own parameters.",
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
    ingress_waves = models.JSONField(
        "waves",
        default=list,
        blank=True,
        editable=False,
        help_text="A scheduled campaign's send times at Sinch, planned at the "
        "launch so Sinch's queue never holds more than the in-flight cap "
        '(campaigns.dispatch.ingress): [{"at": ISO time, "recipients": n, '
        '"batches": n}, ...].',
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
    frozen_segments = models.JSONField(
        "segments at the freeze",
        null=True,
        blank=True,
        editable=False,
        help_text="The segments evaluated when the recipients were frozen: "
        "id, name, definition, its sentence and how many it matched.",
    )
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
        help_text="Why the campaign is paused or failed, or why its last launch "
        "failed, in words.",
    )
    # The freeze's lease while LAUNCHING (campaigns.dispatch.launch_recovery):
    # renewed by the worker freezing the recipients; a launch whose lease ran
    # out lost its worker and is resumed by the periodic tick.
    launch_lease_at = models.DateTimeField(null=True, blank=True, editable=False)
    launch_owner = models.CharField(max_length=32, blank=True, editable=False)
    launch_resumes = models.PositiveSmallIntegerField(default=0, editable=False)
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
    # The frequency cap's exemption, set and withdrawn by a Compliance user
    # only (campaigns.compliance.cap_exemption, audited).
    cap_exempt_at = models.DateTimeField(
        "exempt from the frequency cap since", null=True, blank=True, editable=False
    )
    cap_exempt_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        editable=False,
        related_name="+",
        verbose_name="exempted from the frequency cap by",
    )
    cap_exempt_reason = models.TextField(
        "reason for the frequency-cap exemption", blank=True, editable=False
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-created_at"]
        permissions = [
            ("launch_campaign", "Can launch campaigns"),
            ("pause_campaign", "Can pause and resume campaigns"),
            ("cancel_campaign", "Can cancel campaigns"),
            (
                "exempt_frequency_cap",
                "Can exempt campaigns from the frequency cap",
            ),
        ]

    def __str__(self) -> str:
        return self.name

    def clean(self) -> None:
        errors: dict[str, list[str]] = {}
        for field, check in (
            ("channel_priority_order", self._priority_order_errors),
            ("sms_sender", self._sms_sender_errors),
            ("campaign_values", self._campaign_value_errors),
            ("whatsapp_window_only", self._window_errors),
            ("quiet_hours_exempt", self._exemption_errors),
            ("send_in_local_time", self._local_time_errors),
        ):
            messages = check()
            if messages:
                errors[field] = messages
        for key, message in self.channel_property_problems():
            from_sender = key == channel_properties.SMS_SENDER and self.sms_sender
            field = "sms_sender" if from_sender else "channel_properties"
            errors.setdefault(field, []).append(message)
        if errors:
            raise ValidationError(errors)

    @property
    def local_send_time(self):
        """The send time as wall-clock time in its own zone (None: now)."""
        if self.send_at is None:
            return None
        return local_time(self.send_at, self.send_time_zone)

    def channels(self) -> list[str]:
        """The channel, then the fallback channels, each once."""
        return channel_properties.campaign_channels(
            self.channel, self.channel_priority_order
        )

    def sinch_channel_properties(self) -> dict[str, str]:
        """`channel_properties` as sent to Sinch, the SMS sender included."""
        properties = dict(self.channel_properties or {})
        if self.sms_sender:
            properties["SMS_SENDER"] = self.sms_sender
        return properties

    def channel_property_problems(self) -> list[tuple[str | None, str]]:
        """(key, message) for what Sinch would refuse or ignore in the channel
        properties, the SMS sender included (campaigns.channel_properties)."""
        properties = self.channel_properties
        if isinstance(properties, dict):
            properties = self.sinch_channel_properties()
        return channel_properties.property_problems(
            properties, channels=self.channels()
        )

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

    def _window_errors(self) -> list[str]:
        if self.whatsapp_window_only and self.purpose != Purpose.TRANSACTIONAL:
            return [
                "Only a transactional campaign may write to people within "
                "WhatsApp's 24-hour window; a marketing message on WhatsApp "
                "needs a WhatsApp template."
            ]
        return []

    def _exemption_errors(self) -> list[str]:
        if self.quiet_hours_exempt and self.purpose != Purpose.TRANSACTIONAL:
            return [
                "Only a transactional campaign may be exempted from quiet "
                "hours; a marketing message waits for each recipient's window."
            ]
        return []

    def _local_time_errors(self) -> list[str]:
        if self.send_in_local_time and self.send_at is None:
            return [
                "Choose a send time: its wall-clock time is used in each "
                "recipient's time zone."
            ]
        return []

    def _sms_sender_errors(self) -> list[str]:
        if self.sms_sender and "SMS_SENDER" in (self.channel_properties or {}):
            return ["Also set as SMS_SENDER in the channel properties; keep one."]
        return []

    def _campaign_value_errors(self) -> list[str]:
        values = self.campaign_values
        if values is None:
            values = {}
        if not is_string_map(values):
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
