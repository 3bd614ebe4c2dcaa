"""Indexes that segments (campaigns.segments.evaluate) count from at 1,000,000.

Kept apart from contacts.models to keep that module short; the models add
them to their Meta.indexes.
"""

from django.db import models
from django.db.models import Q

CONTACT_INDEXES = [
    # A language condition.
    models.Index(fields=["language", "erased_at"], name="contact_language"),
    models.Index(fields=["created_at"], name="contact_created_at"),
    # Matches are counted by id from this narrow index, not from the rows.
    models.Index(fields=["id", "erased_at"], name="contact_live"),
    # Country and consent conditions: the contacts whose facts are one of
    # the few distinct facts texts that hold a token, counted from here;
    # the distinct texts themselves are found by skipping through it.
    models.Index(fields=["segment_facts", "erased_at"], name="contact_facts"),
]

# Live identities read from these alone (retired_at is a column too, so that
# SQLite sees them as covering): a country's numbers by prefix range, and a
# contact's consent on a channel (probed per contact).
IDENTITY_INDEXES = [
    models.Index(
        fields=[*lead, "retired_at"],
        condition=Q(retired_at__isnull=True),
        name=f"identity_live_{name}",
    )
    for name, lead in (
        ("prefix", ["identity", "channel", "contact"]),
        ("marketing", ["contact", "channel", "marketing_consent"]),
        ("transactional", ["contact", "channel", "transactional_consent"]),
    )
]
