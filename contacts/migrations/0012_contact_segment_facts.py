from django.db import migrations, models


def fill(apps, schema_editor):
    from contacts import segment_facts

    segment_facts.rebuild(
        models=(
            apps.get_model("contacts", "Contact"),
            apps.get_model("contacts", "ChannelIdentity"),
        )
    )


class Migration(migrations.Migration):
    dependencies = [
        ("contacts", "0011_seed_lists"),
    ]

    operations = [
        migrations.AddField(
            model_name="contact",
            name="segment_facts",
            field=models.TextField(
                blank=True, db_default="", default="", editable=False
            ),
        ),
        # Existing contacts get their facts (contacts.segment_facts.rebuild).
        migrations.RunPython(fill, migrations.RunPython.noop, elidable=True),
    ]
