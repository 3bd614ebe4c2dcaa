"""Indexes that segments (campaigns.segments.evaluate) count from at 1,000,000,
and the live identities' index the audience walks probe per contact.

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
]

# A contact's live identity on a channel, probed per contact: the freeze's
# and the pre-send check's join, the drain's re-check, the admin's consent
# and channel filters (retired_at is a column too, so that SQLite sees it as
# covering). Transactional campaigns read it too, then the row: one index
# entry less per identity than an index per purpose. (Countries and consent
# in segments come from the contact's facts, not from identity indexes.)
IDENTITY_INDEXES = [
    models.Index(
        fields=["contact", "channel", "marketing_consent", "retired_at"],
        condition=Q(retired_at__isnull=True),
        name="identity_live_marketing",
    )
]


# SQLite only (PostgreSQL's planner does not use them well from a segment's
# query, and reads its rows fast enough), name: columns.
SQLITE_INDEXES = {
    # Country and consent conditions: the contacts whose facts are one of
    # the few distinct facts texts that hold a token, counted from here;
    # the distinct texts themselves are found by skipping through it.
    "contact_facts": ("segment_facts", "erased_at"),
    # Attribute conditions (JSON, any key) are tested row by row: this narrow
    # copy of the attributes is read without the rest of each row (half the
    # time of a scan of the table). In id order, so that new contacts are
    # added at its end: ordered by the attributes' text, each imported
    # contact went to a page of its own, a sixth of a 1,000,000-row import's
    # time on SQLite. PostgreSQL would also refuse a b-tree entry over 2,704
    # bytes (a contact with many attributes).
    "contact_attributes_by_id": ("erased_at", "id", "attributes"),
}
SQLITE_ATTRIBUTES_INDEX = "contact_attributes_by_id"
# Replaced by the ones above, dropped where an older release made them.
SQLITE_INDEXES_REPLACED = ("contact_attributes",)


def ensure_sqlite_indexes(using: str = "default", **kwargs) -> None:
    """Create the SQLite-only indexes if missing, and drop those they
    replaced (post_migrate receiver).

    Not in Meta.indexes: they would be created on PostgreSQL too. Created
    after every migrate, as a migration that rebuilds the contacts table
    on SQLite drops the indexes the models do not declare.
    """
    from django.db import connections

    connection = connections[using]
    if connection.vendor != "sqlite":
        return
    with connection.cursor() as cursor:
        if "contacts_contact" not in connection.introspection.table_names(cursor):
            return  # migrated back before the contacts existed
        for name in SQLITE_INDEXES_REPLACED:
            cursor.execute(f'DROP INDEX IF EXISTS "{name}"')
        for name, columns in SQLITE_INDEXES.items():
            listed = ", ".join(f'"{column}"' for column in columns)
            cursor.execute(
                f'CREATE INDEX IF NOT EXISTS "{name}" ON "contacts_contact" ({listed})'
            )
