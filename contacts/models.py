"""Contacts, their channel identities, lists, the consent ledger and the audit trail."""

from django.conf import settings
from django.db import models
from django.db.models import Q

from contacts import segment_facts
from contacts.identity_rules import (
    ChannelIdentityQuerySet,
    ImmutableIdentityError,
    is_erasure_hash,
)
from contacts.import_run_state import ImportRunState
from contacts.references import import_pointer, never_deleted
from contacts.seed_list_marking import SeedListMarking
from contacts.segment_indexes import CONTACT_INDEXES, IDENTITY_INDEXES
from sinch.channels import Channel


class AppendOnlyError(Exception):
    """Raised when code tries to change or delete a ledger or audit row."""


class AppendOnlyQuerySet(models.QuerySet):
    def update(self, **kwargs):
        raise AppendOnlyError(f"{self.model.__name__} rows are append-only.")

    def delete(self):
        raise AppendOnlyError(f"{self.model.__name__} rows are append-only.")

    def _rewrite_for_erasure(self, **kwargs) -> int:
        """The one sanctioned rewrite: erasure replaces personal data with hashes."""
        return super().update(**kwargs)


class AppendOnlyModel(models.Model):
    objects = AppendOnlyQuerySet.as_manager()

    class Meta:
        abstract = True

    def save(self, *args, **kwargs):
        existing = self.pk is not None and type(self).objects.filter(pk=self.pk)
        if not self._state.adding or (existing and existing.exists()):
            raise AppendOnlyError(f"{type(self).__name__} rows are append-only.")
        # INSERT, never UPDATE: a new instance with an existing pk fails.
        kwargs["force_insert"] = True
        super().save(*args, **kwargs)

    def delete(self, *args, **kwargs):
        raise AppendOnlyError(f"{type(self).__name__} rows are append-only.")


class ConsentState(models.TextChoices):
    UNKNOWN = "UNKNOWN", "no record"
    OPTED_IN = "OPTED_IN", "opted in"
    OPTED_OUT = "OPTED_OUT", "opted out"


class Purpose(models.TextChoices):
    MARKETING = "MARKETING", "marketing"
    TRANSACTIONAL = "TRANSACTIONAL", "transactional"


class Contact(models.Model):
    first_name = models.CharField(max_length=150, blank=True)
    last_name = models.CharField(max_length=150, blank=True)
    language = models.CharField(
        max_length=35, blank=True, help_text="BCP 47 tag, e.g. en or pt-BR."
    )
    time_zone = models.CharField(
        max_length=64, blank=True, help_text="IANA name, e.g. Europe/Berlin."
    )
    attributes = models.JSONField(
        default=dict, blank=True, help_text="Custom values usable as ${param}."
    )
    external_id = models.CharField(
        max_length=100, blank=True, help_text="Your own id; unique when set."
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)
    erased_at = models.DateTimeField(null=True, blank=True, editable=False)
    # What segments count from: country and consent tokens of the live
    # identities (contacts.segment_facts), written only by segment_facts.refresh.
    segment_facts = models.TextField(
        blank=True, default="", db_default="", editable=False
    )

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["external_id"],
                condition=~Q(external_id=""),
                name="contact_external_id_unique",
            )
        ]
        # The (last_name, first_name) index of 0001: PostgreSQL only
        # (migration 0015 drops it on SQLite, whose imports paid 13 % for it).
        indexes = [
            # Few rows: who was erased since a campaign's launch (its re-check).
            models.Index(
                fields=["erased_at"],
                condition=Q(erased_at__isnull=False),
                name="contact_erased_at",
            ),
            *CONTACT_INDEXES,  # segments' (contacts.segment_indexes)
        ]

    def __str__(self) -> str:
        if self.erased_at:
            return f"Erased contact #{self.pk}"
        name = f"{self.first_name} {self.last_name}".strip()
        return name or self.external_id or f"Contact #{self.pk}"

    def save(self, *args, **kwargs):
        # segment_facts follows the identities, never a contact form: an
        # instance loaded before a consent change must not write it back.
        if not self._state.adding and kwargs.get("update_fields") is None:
            deferred = self.get_deferred_fields()
            kwargs["update_fields"] = [
                f.name
                for f in self._meta.concrete_fields
                if not f.primary_key
                and f.name != "segment_facts"
                and f.attname not in deferred
            ]
        super().save(*args, **kwargs)


class ChannelIdentity(models.Model):
    """How a contact is reached on one channel; holds the current consent state.

    `identity` is a fact, not a field: once stored it never changes (save()
    and the queryset refuse it; only erasure replaces it with its keyed hash).
    A new number is a new identity; the old one is retired (`retired_at`),
    keeps its ledger and is never sent to again."""

    contact = never_deleted(
        Contact, on_delete=models.PROTECT, related_name="identities"
    )
    channel = models.CharField(max_length=16, choices=Channel.choices)
    identity = models.CharField(
        max_length=128, help_text="E.164 (+15551230001) for phone channels."
    )
    marketing_consent = models.CharField(
        max_length=10, choices=ConsentState.choices, default=ConsentState.UNKNOWN
    )
    marketing_consent_at = models.DateTimeField(null=True, blank=True)
    transactional_consent = models.CharField(
        max_length=10, choices=ConsentState.choices, default=ConsentState.UNKNOWN
    )
    transactional_consent_at = models.DateTimeField(null=True, blank=True)
    origin_import = import_pointer()
    origin_line = models.PositiveIntegerField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    retired_at = models.DateTimeField(
        null=True,
        blank=True,
        editable=False,
        help_text="Replaced by another number: kept for its ledger, never sent to.",
    )

    objects = ChannelIdentityQuerySet.as_manager()

    class Meta:
        verbose_name_plural = "channel identities"
        constraints = [
            # identity first: the phone search is an exact match on this index.
            models.UniqueConstraint(
                fields=["identity", "channel"], name="identity_channel_unique"
            )
        ]
        # The contact filters (contacts/admin/filters.py) probe the live
        # identities' index (IDENTITY_INDEXES): every index here is one more
        # entry to write per imported line.
        indexes = [
            # Identities replaced since a time (contacts.services.changes).
            models.Index(
                fields=["retired_at"],
                condition=models.Q(retired_at__isnull=False),
                name="identity_retired_at",
            ),
            *IDENTITY_INDEXES,
        ]

    def __str__(self) -> str:
        return f"{self.channel} {self.identity}"

    def save(self, *args, **kwargs):
        stored = getattr(self, "_stored_identity", None)
        if (
            not self._state.adding
            and stored is not None
            and self.identity != stored
            and not is_erasure_hash(self.identity)
        ):
            raise ImmutableIdentityError(
                f"{self.channel} identity #{self.pk} cannot change its value; "
                "replace the number instead (a new identity, the old one retired)."
            )
        super().save(*args, **kwargs)
        self._stored_identity = self.identity
        segment_facts.refresh([self.contact_id])

    def delete(self, *args, **kwargs):
        deleted = super().delete(*args, **kwargs)
        segment_facts.refresh([self.contact_id])
        return deleted

    @classmethod
    def from_db(cls, db, field_names, values):
        instance = super().from_db(db, field_names, values)
        instance._stored_identity = instance.__dict__.get("identity")
        return instance

    def consent_for(self, purpose: str) -> str:
        return getattr(self, f"{purpose.lower()}_consent")


class ContactList(SeedListMarking, models.Model):
    name = models.CharField(max_length=200, unique=True)
    description = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    contacts = models.ManyToManyField(
        Contact, through="ListMembership", related_name="lists"
    )

    def __str__(self) -> str:
        return self.name


class ListMembership(models.Model):
    class Source(models.TextChoices):
        IMPORT = "IMPORT", "import"
        ADMIN = "ADMIN", "admin"
        API = "API", "API"
        DEMO = "DEMO", "demo data"

    # Indexed by the unique (contact_list, contact) constraint below.
    contact_list = models.ForeignKey(
        ContactList,
        on_delete=models.CASCADE,
        related_name="memberships",
        db_index=False,
    )
    contact = never_deleted(
        Contact, on_delete=models.CASCADE, related_name="memberships"
    )
    added_at = models.DateTimeField(auto_now_add=True)
    source = models.CharField(
        max_length=10, choices=Source.choices, default=Source.ADMIN
    )
    source_import = import_pointer()

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["contact_list", "contact"], name="list_member_unique"
            )
        ]

    def __str__(self) -> str:
        return f"member of {self.contact_list}"


class ConsentEvent(AppendOnlyModel):
    """One entry of the append-only consent ledger."""

    class Kind(models.TextChoices):
        OPT_IN = "OPT_IN", "opt-in"
        OPT_OUT = "OPT_OUT", "opt-out"

    class Source(models.TextChoices):
        IMPORT = "IMPORT", "import"
        ADMIN = "ADMIN", "admin"
        FORM = "FORM", "form"
        INBOUND_KEYWORD = "INBOUND_KEYWORD", "inbound keyword"
        API = "API", "API"
        ERASURE = "ERASURE", "erasure"

    # Indexed by the (identity, occurred_at) index below.
    identity = never_deleted(
        ChannelIdentity,
        on_delete=models.PROTECT,
        related_name="consent_events",
        db_index=False,
    )
    channel = models.CharField(max_length=16, choices=Channel.choices)
    purpose = models.CharField(max_length=13, choices=Purpose.choices)
    kind = models.CharField(max_length=7, choices=Kind.choices)
    source = models.CharField(max_length=15, choices=Source.choices)
    evidence_wording = models.TextField(
        blank=True, help_text="The consent wording the person saw."
    )
    evidence_ip = models.GenericIPAddressField(null=True, blank=True)
    evidence_user_agent = models.CharField(max_length=500, blank=True)
    evidence_note = models.TextField(blank=True)
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
    )
    actor_label = models.CharField(
        max_length=200, help_text="Who or what recorded it, kept if the user goes."
    )
    occurred_at = models.DateTimeField(help_text="When the person gave or withdrew it.")
    recorded_at = models.DateTimeField(auto_now_add=True)
    import_job = import_pointer()

    class Meta:
        indexes = [
            models.Index(fields=["identity", "occurred_at"]),
            # Consent changed since a time (contacts.services.changes).
            models.Index(fields=["recorded_at"], name="consent_event_recorded_at"),
            # The latest opt-outs (the Compliance home page), opt-outs only.
            models.Index(
                fields=["-occurred_at", "-id"],
                condition=models.Q(kind="OPT_OUT"),
                name="consent_recent_opt_outs",
            ),
        ]
        ordering = ["-occurred_at", "-id"]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} {self.get_purpose_display()} {self.channel}"


class AuditEvent(AppendOnlyModel):
    """Who did what and when: imports, consent changes, erasures, exports, sends."""

    class Action(models.TextChoices):
        IMPORT = "IMPORT", "import"
        CONSENT = "CONSENT", "consent change"
        ERASURE = "ERASURE", "erasure"
        EXPORT = "EXPORT", "export"
        LIST_CHANGE = "LIST_CHANGE", "list membership change"
        TEST_SEND = "TEST_SEND", "test send"
        IDENTITY = "IDENTITY", "channel identity change"
        LAUNCH = "LAUNCH", "campaign launch"
        PAUSE = "PAUSE", "campaign pause"
        RESUME = "RESUME", "campaign resume"
        CANCEL = "CANCEL", "campaign cancel"
        RETRY = "RETRY", "retry of failed recipients"
        APPROVAL = "APPROVAL", "launch approval"
        EXEMPTION = "EXEMPTION", "compliance exemption"
        USER = "USER", "user account"
        DUPLICATE = "DUPLICATE", "campaign duplicate"

    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
    )
    actor_label = models.CharField(max_length=200)
    action = models.CharField(max_length=20, choices=Action.choices)
    target_type = models.CharField(max_length=50)
    target_id = models.CharField(max_length=50, blank=True)
    summary = models.CharField(max_length=500)
    details = models.JSONField(default=dict, blank=True)
    at = models.DateTimeField(auto_now_add=True, db_index=True)

    class Meta:
        ordering = ["-at", "-id"]
        indexes = [
            # The latest erasures (the Compliance home page), erasures only.
            models.Index(
                fields=["-at", "-id"],
                condition=models.Q(action="ERASURE"),
                name="audit_recent_erasures",
            )
        ]

    def __str__(self) -> str:
        return f"{self.at:%Y-%m-%d %H:%M} {self.actor_label}: {self.summary}"


class ImportJob(ImportRunState, models.Model):
    """A CSV import: its file, its options, its progress and its report."""

    class Status(models.TextChoices):
        UPLOADED = "UPLOADED", "uploaded, not validated"
        VALIDATING = "VALIDATING", "validating"
        VALIDATED = "VALIDATED", "validated, waiting for confirmation"
        QUEUED = "QUEUED", "queued"
        RUNNING = "RUNNING", "importing"
        DONE = "DONE", "done"
        FAILED = "FAILED", "failed"
        DISCARDED = "DISCARDED", "discarded"

    class FileFormat(models.TextChoices):
        CSV = "CSV", "CSV file"
        XLSX = "XLSX", "Excel workbook (.xlsx)"

    class DateOrder(models.TextChoices):
        UNSET = "", "not set: only dates that cannot be misread"
        DAY_FIRST = "DMY", "day first (31/12/2026)"
        MONTH_FIRST = "MDY", "month first (12/31/2026)"

    class ConsentMode(models.TextChoices):
        COLUMN = "COLUMN", "from a column of the file"
        DECLARED_OPT_IN = "DECLARED_OPT_IN", "every row opted in (declaration)"
        NONE = "NONE", "no consent information"

    status = models.CharField(
        max_length=10, choices=Status.choices, default=Status.UPLOADED
    )
    file_path = models.CharField(max_length=500, help_text="The uploaded file on disk.")
    original_name = models.CharField(max_length=255)
    size_bytes = models.BigIntegerField(default=0)
    file_format = models.CharField(
        max_length=4, choices=FileFormat.choices, default=FileFormat.CSV
    )
    encoding = models.CharField(max_length=20, default="utf-8-sig")
    encoding_chosen = models.BooleanField(
        default=False, help_text="Chosen by the user (else detected)."
    )
    date_order = models.CharField(
        max_length=3, choices=DateOrder.choices, default=DateOrder.UNSET, blank=True
    )
    delimiter = models.CharField(max_length=1, default=",")
    headers = models.JSONField(default=list)
    mapping = models.JSONField(default=dict, help_text="CSV header -> field.")
    target_list = models.ForeignKey(
        ContactList, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    default_channel = models.CharField(
        max_length=16, choices=Channel.choices, default=Channel.SMS
    )
    purpose = models.CharField(
        max_length=13, choices=Purpose.choices, default=Purpose.MARKETING
    )
    consent_mode = models.CharField(
        max_length=15, choices=ConsentMode.choices, default=ConsentMode.COLUMN
    )
    consent_source = models.CharField(
        max_length=15,
        choices=ConsentEvent.Source.choices,
        default=ConsentEvent.Source.IMPORT,
    )
    consent_evidence = models.TextField(blank=True)
    rows_total = models.PositiveIntegerField(default=0)
    rows_ok = models.PositiveIntegerField(default=0)
    rows_bad = models.PositiveIntegerField(default=0)
    contacts_created = models.PositiveIntegerField(default=0)
    contacts_merged = models.PositiveIntegerField(default=0)
    opt_ins = models.PositiveIntegerField(default=0)
    opt_outs = models.PositiveIntegerField(default=0)
    kept_opted_out = models.PositiveIntegerField(default=0)
    bytes_done = models.BigIntegerField(default=0)
    sample_errors = models.JSONField(default=list)
    report_file = models.CharField(max_length=255, blank=True)
    error = models.TextField(blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
    )
    created_at = models.DateTimeField(auto_now_add=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]
        permissions = [
            ("import_contacts", "Can import contacts from CSV"),
            ("export_contacts", "Can export contacts"),
            ("erase_contact", "Can erase a contact's personal data"),
            ("record_consent", "Can record consent events"),
        ]

    def __str__(self) -> str:
        return f"Import #{self.pk} {self.original_name}"

    @property
    def percent_done(self) -> int:
        if self.status == self.Status.DONE:
            return 100
        if not self.size_bytes:
            return 0
        return min(99, int(self.bytes_done * 100 / self.size_bytes))
