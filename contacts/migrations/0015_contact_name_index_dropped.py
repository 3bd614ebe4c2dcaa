from django.db import migrations

NAME_INDEX = "contacts_co_last_na_bb56ce_idx"


def drop_on_sqlite(apps, schema_editor):
    if schema_editor.connection.vendor == "sqlite":
        schema_editor.execute(f'DROP INDEX IF EXISTS "{NAME_INDEX}"')


def restore_on_sqlite(apps, schema_editor):
    if schema_editor.connection.vendor == "sqlite":
        schema_editor.execute(
            f'CREATE INDEX IF NOT EXISTS "{NAME_INDEX}" '
            'ON "contacts_contact" ("last_name", "first_name")'
        )


class Migration(migrations.Migration):
    """The contacts' (last_name, first_name) index goes on SQLite: an import
    at 1,000,000 paid 13 % of its time there writing its entries, and the
    admin's sort by name stays within its 300 ms without it. PostgreSQL keeps
    it (made by 0001): its imports did not measurably pay for it, and its sort
    by name took 199-258 ms without it against 39 ms with it. The models no
    longer declare it (contacts.models.Contact.Meta says why)."""

    dependencies = [
        ("contacts", "0014_identity_indexes_halved"),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.RemoveIndex(model_name="contact", name=NAME_INDEX)
            ],
            database_operations=[
                migrations.RunPython(drop_on_sqlite, restore_on_sqlite)
            ],
        ),
    ]
