from django.db import migrations, models
from django.db.models.functions import Now

from config.lib.migration_ops import (
    AddPartialUniqueWithoutBlockingWrites,
    OnPostgreSQLOnly,
)


class Migration(migrations.Migration):
    """A launch writes less for each of its recipients (a million rows for a
    large one), measured in psql with a COPY of the 1,389,078 recipient rows
    of such a launch, 389,078 of them excluded:

    - The unique (batch, index) index holds batched recipients only. An
      excluded one (in no batch, at no position) was written into it for
      nothing: 6.8 and 6.9 s instead of 7.3 and 7.7. Uniqueness is the same:
      two rows in no batch never clashed.
    - The columns a launch writes the same into every row (test or not, no
      fallback identities, no failure, no message id, created and updated
      now) have database defaults, and the freeze leaves them out of its
      COPY: 5.7 and 5.9 s instead of 7.0 and 7.2.

    On PostgreSQL the new index is built before the old constraint goes,
    without blocking writes (outside a transaction); dropping the old
    constraint and setting the defaults take a moment. On SQLite both
    changes rebuild the table: it is rebuilt once, by the last operation,
    from the state that has them all.
    """

    atomic = False

    dependencies = [
        ("campaigns", "0023_recipient_hot_updates"),
    ]

    operations = [
        AddPartialUniqueWithoutBlockingWrites(
            model_name="recipient",
            constraint=models.UniqueConstraint(
                condition=models.Q(batch__isnull=False),
                fields=("batch", "index"),
                name="recipient_position",
            ),
        ),
        *(
            OnPostgreSQLOnly(migrations.AlterField("recipient", name, field))
            for name, field in (
                ("is_test", models.BooleanField(db_default=False, default=False)),
                (
                    "fallback_identities",
                    models.JSONField(
                        blank=True,
                        db_default=models.Value([], models.JSONField()),
                        default=list,
                        help_text="The fallback channels' identities, in priority "
                        "order.",
                    ),
                ),
                (
                    "failure_code",
                    models.CharField(
                        blank=True,
                        db_default="",
                        help_text="Sinch's reason code of a failure.",
                        max_length=64,
                    ),
                ),
                (
                    "switched_channel",
                    models.BooleanField(
                        db_default=False,
                        default=False,
                        help_text="Sinch reported SWITCHING_CHANNEL: a later "
                        "success may follow a failure on the first channel.",
                    ),
                ),
                (
                    "delivered_channel",
                    models.CharField(
                        blank=True,
                        db_default="",
                        help_text="The channel a delivery or read receipt named.",
                        max_length=16,
                    ),
                ),
                (
                    "message_id",
                    models.CharField(blank=True, db_default="", max_length=64),
                ),
                (
                    "created_at",
                    models.DateTimeField(auto_now_add=True, db_default=Now()),
                ),
                ("updated_at", models.DateTimeField(auto_now=True, db_default=Now())),
            )
        ),
        migrations.RemoveConstraint(
            model_name="recipient",
            name="recipient_position_unique",
        ),
    ]
