from django.db import migrations

NAME_INDEX = "contacts_co_last_na_bb56ce_idx"
FILL_FACTOR = 50
TABLES = ("contacts_contact", "contacts_channelidentity")


def leave_room_on_postgresql(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(f'DROP INDEX CONCURRENTLY IF EXISTS "{NAME_INDEX}"')
        for table in TABLES:
            schema_editor.execute(
                f"ALTER TABLE {table} SET (fillfactor = {FILL_FACTOR})"
            )


def fill_pages_on_postgresql(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        for table in TABLES:
            schema_editor.execute(f"ALTER TABLE {table} RESET (fillfactor)")
        schema_editor.execute(
            f'CREATE INDEX CONCURRENTLY IF NOT EXISTS "{NAME_INDEX}" '
            'ON "contacts_contact" ("last_name", "first_name")'
        )


class Migration(migrations.Migration):
    """A re-import rewrites every contact it names and every identity whose
    consent line it repeats; on PostgreSQL those rows are now rewritten in
    place on their pages (HOT updates), without a new entry in each of
    their indexes:
    - no contact index holds a name any more: the (last_name, first_name)
      index goes on PostgreSQL too (0015 dropped it on SQLite). The admin's
      sort by name reads the table instead;
    - new pages of both tables are filled to half, so that the new version
      of each row fits beside the old one (a chunk rewrites whole pages).
      Pages written before keep their rows as they are.
    An identity whose consent state changes still gets new index entries:
    its state is in the live identities' index.
    Measured at 1,000,000 rows (README, "Importing at scale", item 19): a
    re-import 10,829-11,208 rows/s against 9,022-9,039, the server's CPU
    43.8 s against 63.8; a fresh import writes twice the pages, 15,293
    against 16,566. Both steps leave writes unblocked (the index dropped
    concurrently, outside a transaction)."""

    atomic = False

    dependencies = [
        ("contacts", "0016_person_references_unchecked_at_commit"),
    ]

    operations = [
        migrations.RunPython(leave_room_on_postgresql, fill_pages_on_postgresql),
    ]
