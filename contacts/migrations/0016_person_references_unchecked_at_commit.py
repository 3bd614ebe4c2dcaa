import django.db.models.deletion
from django.db import migrations, models


class Migration(migrations.Migration):
    """The references an import writes for every line (identity to contact,
    list membership to contact, ledger entry to identity) lose their database
    constraint (contacts.references.never_deleted): contacts and identities are
    erased, never deleted, and deletes through Django still follow each
    reference's on_delete. PostgreSQL checked all three again at each
    commit: a 1,000,000-row import used 35.0–36.5 s of the server's CPU
    without them against 47.6–49.1 s with them (2026-12-05, README
    "Importing at scale", item 13).

    On PostgreSQL each constraint is dropped in a moment and the indexes stay.
    On SQLite, where a reference's check is part of the table's definition,
    the three tables are rebuilt (their rows copied once).
    """

    dependencies = [
        ("contacts", "0015_contact_name_index_dropped"),
    ]

    operations = [
        migrations.AlterField(
            model_name="channelidentity",
            name="contact",
            field=models.ForeignKey(
                db_constraint=False,
                on_delete=django.db.models.deletion.PROTECT,
                related_name="identities",
                to="contacts.contact",
            ),
        ),
        migrations.AlterField(
            model_name="consentevent",
            name="identity",
            field=models.ForeignKey(
                db_constraint=False,
                db_index=False,
                on_delete=django.db.models.deletion.PROTECT,
                related_name="consent_events",
                to="contacts.channelidentity",
            ),
        ),
        migrations.AlterField(
            model_name="listmembership",
            name="contact",
            field=models.ForeignKey(
                db_constraint=False,
                on_delete=django.db.models.deletion.CASCADE,
                related_name="memberships",
                to="contacts.contact",
            ),
        ),
    ]
