from django.db import migrations, models

from config.lib.migration_ops import (
    AddIndexWithoutBlockingWrites,
    RemoveIndexWithoutBlockingWrites,
)


class Migration(migrations.Migration):
    # One (campaign, status, batch, contact, is_test) index for every
    # recipient, in place of the (campaign, status) index and the partial
    # recipient_sent one: the drain's statements seek a batch's recipients by
    # campaign, status and batch in it (Recipient.in_batch), and a launch
    # writes each recipient into one index less. Built before the old two are
    # dropped, all without blocking writes on PostgreSQL (the migration runs
    # outside a transaction).
    atomic = False

    dependencies = [
        ("campaigns", "0021_recipient_sent_index"),
    ]

    operations = [
        AddIndexWithoutBlockingWrites(
            model_name="recipient",
            index=models.Index(
                fields=["campaign", "status", "batch", "contact", "is_test"],
                name="recipient_by_status",
            ),
        ),
        RemoveIndexWithoutBlockingWrites(
            model_name="recipient",
            name="recipient_sent",
        ),
        RemoveIndexWithoutBlockingWrites(
            model_name="recipient",
            name="campaigns_r_campaig_cbc617_idx",
        ),
    ]
