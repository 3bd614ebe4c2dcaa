"""Four-eyes approval of a launch: who asked, who decided, what they saw.

Rows are history: a request is never deleted or reused. A decided request
stays as it was decided; any change to what was approved withdraws it
(`withdrawn_at`, with the reason), and a new request starts a new row.
The rules live in campaigns.compliance.approval.
"""

from django.conf import settings
from django.db import models
from django.db.models import Q

from campaigns.models.campaign import Campaign


class LaunchApproval(models.Model):
    class Decision(models.TextChoices):
        PENDING = "PENDING", "Waiting for approval"
        APPROVED = "APPROVED", "Approved"
        REJECTED = "REJECTED", "Rejected"

    campaign = models.ForeignKey(
        Campaign, on_delete=models.CASCADE, related_name="approvals"
    )
    requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        related_name="+",
    )
    requested_at = models.DateTimeField()
    decision = models.CharField(
        max_length=8, choices=Decision.choices, default=Decision.PENDING
    )
    decided_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
    )
    decided_at = models.DateTimeField(null=True, blank=True)
    reason = models.TextField(blank=True, help_text="Why it was rejected.")
    fingerprint = models.CharField(
        max_length=64,
        help_text="SHA-256 of the message as it would be frozen and of the "
        "audience definition, at the request.",
    )
    audience = models.PositiveIntegerField(
        "recipients",
        help_text="Recipients the pre-send check found when it was requested: "
        "the approval covers this many (within LAUNCH_AUDIENCE_TOLERANCE).",
    )
    cost_total = models.DecimalField(
        max_digits=14, decimal_places=4, null=True, blank=True
    )
    lists = models.JSONField(
        "audience lists",
        default=list,
        help_text='The lists at the request: [{"id": 1, "name": "Customers"}].',
    )
    withdrawn_at = models.DateTimeField(null=True, blank=True)
    withdrawn_reason = models.TextField(blank=True)

    class Meta:
        ordering = ["-requested_at", "-pk"]
        constraints = [
            # One open request (waiting or approved) per campaign at a time.
            models.UniqueConstraint(
                fields=["campaign"],
                condition=Q(withdrawn_at__isnull=True)
                & Q(decision__in=["PENDING", "APPROVED"]),
                name="one_open_launch_approval",
            )
        ]

    def __str__(self) -> str:
        return f"Launch approval of {self.campaign} ({self.state_label.lower()})"

    @property
    def is_open(self) -> bool:
        return self.withdrawn_at is None and self.decision != self.Decision.REJECTED

    @property
    def is_valid(self) -> bool:
        """Approved and not withdrawn (the fingerprint is checked separately)."""
        return self.withdrawn_at is None and self.decision == self.Decision.APPROVED

    @property
    def is_pending(self) -> bool:
        return self.withdrawn_at is None and self.decision == self.Decision.PENDING

    @property
    def is_rejected(self) -> bool:
        return self.decision == self.Decision.REJECTED

    @property
    def state_label(self) -> str:
        if self.withdrawn_at is not None:
            return "Withdrawn"
        return self.get_decision_display()
