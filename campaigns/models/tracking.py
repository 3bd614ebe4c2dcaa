"""Tracking: the webhook inbox, inbound messages and the delivery timeline."""

from django.db import models

from campaigns.models.campaign import Campaign
from campaigns.models.sending import Recipient


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
        UNKNOWN = "UNKNOWN", "Unknown kind: kept, not applied"
        MISMATCH = "MISMATCH", "Names someone else: kept, not applied"

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

    class Review(models.TextChoices):
        NONE = "", "No review needed"
        PENDING = "PENDING", "Needs review"
        OPTED_OUT = "OPTED_OUT", "Reviewed: opt-out recorded"

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
    campaign_inferred = models.BooleanField(
        "campaign inferred",
        default=False,
        help_text="Sinch did not say which batch this answers: the campaign is "
        "the last one delivered to this number within REPLY_ATTRIBUTION_DAYS.",
    )
    text = models.TextField(blank=True)
    keyword = models.CharField(
        max_length=5, choices=Keyword.choices, default=Keyword.NONE, blank=True
    )
    review = models.CharField(
        max_length=10,
        choices=Review.choices,
        default=Review.NONE,
        blank=True,
        help_text="Replies that read like an opt-out but matched no keyword.",
    )
    event = models.ForeignKey(
        WebhookEvent, on_delete=models.SET_NULL, null=True, blank=True
    )
    message_id = models.CharField(max_length=64, blank=True)

    class Meta:
        ordering = ["-received_at"]
        indexes = [
            models.Index(fields=["contact", "received_at"]),
            models.Index(fields=["campaign", "keyword"]),
            # The admin home counts these: small whatever the table's size.
            models.Index(
                fields=["id"],
                condition=models.Q(review="PENDING"),
                name="inbound_needs_review",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.channel} {self.identity}: {self.text[:40]}"
