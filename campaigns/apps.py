from django.apps import AppConfig


class CampaignsConfig(AppConfig):
    name = "campaigns"
    verbose_name = "Campaigns"

    def ready(self) -> None:
        from django.db.models.signals import post_migrate

        from campaigns import checks  # noqa: F401  (registers the system checks)
        from campaigns.erasure import forget_recipient_data
        from campaigns.schedules import ensure_schedules
        from campaigns.tracking.contact_history import (
            CampaignMessages,
            LinkClicks,
            Replies,
        )
        from contacts import history
        from contacts.services.erasure import contact_erased

        post_migrate.connect(ensure_schedules, sender=self)
        contact_erased.connect(forget_recipient_data)
        history.register_source(CampaignMessages())
        history.register_source(Replies())
        history.register_source(LinkClicks())
