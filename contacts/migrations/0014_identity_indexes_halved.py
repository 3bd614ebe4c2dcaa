from django.db import migrations


class Migration(migrations.Migration):
    """Five of the identities' ten indexes go: the three that served only the
    admin's consent and channel filters (which now probe the live identities'
    index per contact), and the live indexes by number prefix and by
    transactional consent of the segment queries from before segment facts."""

    dependencies = [
        ("contacts", "0013_import_leases_and_resume"),
    ]

    operations = [
        migrations.RemoveIndex(model_name="channelidentity", name=name)
        for name in (
            "contacts_ch_marketi_17ec70_idx",
            "contacts_ch_transac_e6fbca_idx",
            "contacts_ch_channel_bc8af9_idx",
            "identity_live_prefix",
            "identity_live_transactional",
        )
    ]
