"""Sending: batches, recipients, and what dispatch keeps while it works."""

from django.conf import settings
from django.db import models
from django.db.models import Value
from django.db.models.functions import Now

from campaigns.models.campaign import Campaign


class Batch(models.Model):
    """One call of Sinch's Batch API: at most wire.MAX_RECIPIENTS recipients.

    `metadata_key` is sent as batch_metadata and identifies the batch at Sinch
    (after an uncertain outcome it is looked up by it before any resubmission).
    A test send is a batch with `is_test`, kept out of the campaign's figures.
    A batch scheduled at Sinch that must lose people who opted out after the
    launch gets a `replace_reason`; once Sinch confirms its cancel, a new batch
    that `replaces` it takes the others, for the same send time.
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
    wave_at = models.DateTimeField(
        null=True,
        blank=True,
        help_text="Send time of the batch's wave (a scheduled campaign larger "
        "than the room in Sinch's queue goes in several; "
        "campaigns.dispatch.ingress).",
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
    claimed_by = models.CharField(
        max_length=100,
        blank=True,
        editable=False,
        help_text="The worker that claimed it last, as WORKER_NAME:pid (the one "
        "whose submission counts; a claim that ran out leaves its name).",
    )
    uncertain_since = models.DateTimeField(null=True, blank=True)
    remote_checked_at = models.DateTimeField(null=True, blank=True)
    cancel_requested = models.BooleanField(default=False)
    cancel_requested_at = models.DateTimeField(
        null=True,
        blank=True,
        help_text="When the cancel was first asked of Sinch (it confirms later).",
    )
    replace_reason = models.CharField(
        max_length=255,
        blank=True,
        help_text="Why it is cancelled at Sinch and replaced, e.g. "
        "'1 person opted out after launch'.",
    )
    replaces = models.ForeignKey(
        "self",
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="replacements",
        help_text="The batch this one replaces (same send time, fewer people).",
    )
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
    rechecked_at = models.DateTimeField(
        null=True,
        blank=True,
        editable=False,
        help_text="Scheduled at Sinch: when the late opt-out tick last made sure "
        "everyone in it may still receive it.",
    )
    # Database defaults too: rows written by raw INSERTs (benches, bulk
    # writers) that do not name these columns stay valid.
    variant = models.CharField(
        max_length=1,
        blank=True,
        default="",
        db_default="",
        help_text="The A/B variant its message is.",
    )
    ab_remainder = models.BooleanField(
        default=False,
        db_default=False,
        help_text="Held for an A/B test's winner (its variant is set then).",
    )
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
    # (campaign, batch) index and the (batch, index) constraint already give.
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
        db_index=False,  # the (contact, batch) index below serves it
    )
    # The columns a launch writes the same into every row have database
    # defaults too: the freeze's COPY leaves them out on PostgreSQL, which then
    # parses no timestamp or JSON per row for them (campaigns migration 0024).
    is_test = models.BooleanField(default=False, db_default=False)
    identity = models.CharField(max_length=255)
    # [[channel, identity], ...] for the campaign's fallback channels, in its
    # priority order, after `identity` on its first channel; only channels the
    # person has a consented identity on (campaigns.authoring.fallback_identities).
    fallback_identities = models.JSONField(
        default=list,
        db_default=Value([], models.JSONField()),
        blank=True,
        help_text="The fallback channels' identities, in priority order.",
    )
    parameters = models.JSONField(default=dict, blank=True)
    status = models.CharField(
        max_length=20, choices=Status.choices, default=Status.PENDING
    )
    reason = models.CharField(max_length=255, blank=True)
    failure_code = models.CharField(
        max_length=64,
        blank=True,
        db_default="",
        help_text="Sinch's reason code of a failure.",
    )
    switched_channel = models.BooleanField(
        default=False,
        db_default=False,
        help_text="Sinch reported SWITCHING_CHANNEL: a later success may "
        "follow a failure on the first channel.",
    )
    delivered_channel = models.CharField(
        max_length=16,
        blank=True,
        db_default="",
        help_text="The channel a delivery or read receipt named.",
    )
    message_id = models.CharField(max_length=64, blank=True, db_default="")
    variant = models.CharField(
        max_length=1,
        blank=True,
        default="",
        db_default="",
        help_text="The A/B variant sent (or held).",
    )
    created_at = models.DateTimeField(auto_now_add=True, db_default=Now())
    updated_at = models.DateTimeField(auto_now=True, db_default=Now())

    class Meta:
        constraints = [
            # A batched recipient's position, unique in its batch (receipts
            # name it). Excluded recipients (in no batch; a large launch writes
            # hundreds of thousands) are in no position and not in the index.
            models.UniqueConstraint(
                fields=["batch", "index"],
                condition=models.Q(batch__isnull=False),
                name="recipient_position",
            )
        ]
        indexes = [
            # A campaign's recipients, by batch: a batch's (Recipient.in_batch),
            # a campaign's excluded ones (in no batch), and the contacts a
            # campaign or a recent batch reached (segments' engagement and "not
            # messaged in N days" conditions), whose status, contact and
            # is_test are read from the row. No index holds the status, so
            # that PostgreSQL rewrites a row in place (a HOT update, no index
            # entry written) when its status moves: at acceptance, a million
            # rows per large launch, and at each receipt.
            models.Index(fields=["campaign", "batch"], name="recipient_by_campaign"),
            # A person's messages, by batch: the frequency cap reads those of
            # a chunk of contacts in the batches sent near the send time
            # (campaigns.compliance.frequency); erasure finds them by contact.
            models.Index(fields=["contact", "batch"], name="recipient_contact_batch"),
        ]

    def __str__(self) -> str:
        return f"{self.identity} in {self.campaign}"

    @staticmethod
    def in_batch(batch: Batch, status: str) -> models.QuerySet:
        """The batch's recipients in `status`: its at most 1000 rows, sought
        by campaign and batch in the recipient_by_campaign index, the status
        read from each row."""
        return Recipient.objects.filter(
            campaign_id=batch.campaign_id, batch_id=batch.pk, status=status
        )


class RequestWindow(models.Model):
    """Batch API requests made in one second, counted for every worker.

    The rate limiter's store when there is no Redis (campaigns.dispatch.ratelimit).
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
