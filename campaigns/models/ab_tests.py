"""A/B tests: a campaign's variants, and the test-first plan and its outcome.

A campaign with `Variant` rows (2 to 4, labelled A-D) sends each frozen
recipient one variant, chosen by a stable keyed hash of the campaign and the
contact (campaigns.authoring.variants). An `ABTest` row, optional, holds the
"test first" plan: the variants go to `test_share` % of the audience, the
rest (the remainder) waits until a winner is picked by `metric`, after
`wait_minutes`, automatically or when a Sender confirms; then the remainder
gets the winner. The outcome (winner, when, why, by whom) is kept here and
in the audit trail.
"""

from django.conf import settings
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models

from campaigns.models.campaign import Campaign
from campaigns.models.templates import MessageTemplate

LABELS = ("A", "B", "C", "D")


class Variant(models.Model):
    """One version of a campaign's message and its share of the audience."""

    campaign = models.ForeignKey(
        Campaign, on_delete=models.CASCADE, related_name="variants"
    )
    label = models.CharField(
        max_length=1, choices=[(x, x) for x in LABELS], help_text="A, B, C or D."
    )
    template = models.ForeignKey(
        MessageTemplate,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="+",
        help_text="Empty: the campaign's template. Another template may use "
        "only the placeholders the campaign's template has.",
    )
    share = models.PositiveSmallIntegerField(
        default=50,
        validators=[MinValueValidator(1), MaxValueValidator(100)],
        help_text="Percent of the (tested) audience; the shares add up to 100.",
    )
    message_snapshot = models.JSONField(
        null=True,
        blank=True,
        editable=False,
        help_text="The variant's message as frozen at launch.",
    )

    class Meta:
        ordering = ["campaign", "label"]
        constraints = [
            models.UniqueConstraint(
                fields=["campaign", "label"], name="variant_label_unique"
            )
        ]

    def __str__(self) -> str:
        return f"Variant {self.label}"


class ABTest(models.Model):
    """ "Test first": the variants go to a share, the winner to the rest."""

    class Metric(models.TextChoices):
        REPLY_RATE = "reply_rate", "Reply rate"
        DELIVERY_RATE = "delivery_rate", "Delivery rate"
        CLICK_RATE = "click_rate", "Click rate"

    class Picking(models.TextChoices):
        AUTOMATIC = "automatic", "Automatically when the wait is over"
        CONFIRM = "confirm", "A Sender confirms the winner"

    campaign = models.OneToOneField(
        Campaign, on_delete=models.CASCADE, related_name="ab_test", primary_key=True
    )
    test_share = models.PositiveSmallIntegerField(
        default=20,
        validators=[MinValueValidator(1), MaxValueValidator(99)],
        help_text="Percent of the audience that gets the variants first.",
    )
    wait_minutes = models.PositiveIntegerField(
        default=240,
        validators=[MinValueValidator(1), MaxValueValidator(7 * 24 * 60)],
        help_text="How long after the test is sent the winner is picked "
        "(minutes; 240 = 4 hours).",
    )
    metric = models.CharField(
        max_length=32,
        choices=Metric.choices,
        default=Metric.REPLY_RATE,
        help_text="What the winner is picked by. Click rate (unique clickers "
        "among those delivered) needs the campaign's tracked links.",
    )
    picking = models.CharField(
        max_length=16, choices=Picking.choices, default=Picking.AUTOMATIC
    )
    test_sent_at = models.DateTimeField(null=True, blank=True, editable=False)
    winner = models.CharField(max_length=1, blank=True, editable=False)
    winner_at = models.DateTimeField(null=True, blank=True, editable=False)
    winner_reason = models.TextField(blank=True, editable=False)
    winner_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        editable=False,
        related_name="+",
    )
    remainder_sent_at = models.DateTimeField(null=True, blank=True, editable=False)
    remainder_size = models.PositiveIntegerField(default=0, editable=False)

    class Meta:
        verbose_name = "A/B test first"
        verbose_name_plural = "A/B test first"

    def __str__(self) -> str:
        return f"A/B test of {self.campaign}"
