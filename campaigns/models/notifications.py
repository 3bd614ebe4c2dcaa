"""In-app notifications, and each user's choice about e-mailed ones.

A notification tells one user about one event (a campaign finished, was
paused automatically, failed, stopped receiving delivery reports; replies
wait for review). `key` names the event: a user is told about an event once,
however often the code that saw it runs (a unique constraint). Texts name
campaigns and counts, never a contact's number, name or message text, so
erasure has nothing to remove here. The rules are in campaigns.notifications.
"""

from django.conf import settings
from django.db import models

from campaigns.models.campaign import Campaign


class Notification(models.Model):
    class Kind(models.TextChoices):
        FINISHED = "FINISHED", "Campaign finished"
        AUTO_PAUSED = "AUTO_PAUSED", "Campaign paused automatically"
        FAILED = "FAILED", "Campaign failed"
        RECEIPTS_STALLED = "RECEIPTS_STALLED", "Delivery reports stalled"
        REPLIES_TO_REVIEW = "REPLIES_TO_REVIEW", "Replies need review"

    recipient = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+"
    )
    kind = models.CharField(max_length=20, choices=Kind.choices)
    campaign = models.ForeignKey(
        Campaign,
        on_delete=models.CASCADE,
        null=True,
        blank=True,
        related_name="+",
    )
    key = models.CharField(
        max_length=100, help_text="The event: one notification per user and key."
    )
    text = models.CharField(max_length=500)
    link = models.CharField(max_length=300, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    read_at = models.DateTimeField(null=True, blank=True)
    emailed_at = models.DateTimeField(null=True, blank=True, editable=False)

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            models.UniqueConstraint(
                fields=["recipient", "key"], name="notification_once_per_event"
            )
        ]
        indexes = [
            models.Index(
                fields=["recipient", "read_at", "-created_at"],
                name="notification_inbox",
            )
        ]

    def __str__(self) -> str:
        return f"{self.get_kind_display()}: {self.text}"


class NotificationPreference(models.Model):
    """Whether a user wants notifications e-mailed as well (default: yes)."""

    user = models.OneToOneField(
        settings.AUTH_USER_MODEL,
        on_delete=models.CASCADE,
        related_name="notification_preference",
    )
    email = models.BooleanField(
        "e-mail me my notifications",
        default=True,
        help_text="They always show on the home page; this also e-mails them "
        "(when the product has a mail server, EMAIL_URL).",
    )
    updated_at = models.DateTimeField(auto_now=True)

    def __str__(self) -> str:
        return f"{self.user}: e-mail {'on' if self.email else 'off'}"
