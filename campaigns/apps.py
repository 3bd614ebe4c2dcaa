from django.apps import AppConfig


class CampaignsConfig(AppConfig):
    name = "campaigns"
    verbose_name = "Campaigns"

    def ready(self) -> None:
        from django.db.models.signals import post_migrate

        from campaigns.erasure import forget_recipient_data
        from contacts.services.erasure import contact_erased

        post_migrate.connect(ensure_tick_schedule, sender=self)
        post_migrate.connect(ensure_reconcile_schedule, sender=self)
        contact_erased.connect(forget_recipient_data)


TICK_NAME = "campaigns: reconcile and restart dispatch (every minute)"


def ensure_tick_schedule(**kwargs) -> None:
    """The periodic safety net of dispatch (campaigns.tasks.tick) exists."""
    from django_q.models import Schedule

    Schedule.objects.using(kwargs.get("using", "default")).get_or_create(
        name=TICK_NAME,
        defaults={
            "func": "campaigns.tasks.tick",
            "schedule_type": Schedule.MINUTES,
            "minutes": 1,
        },
    )


RECONCILE_NAME = "campaigns: reconcile deliveries (silent batches, stalled receipts)"


def ensure_reconcile_schedule(**kwargs) -> None:
    """The periodic delivery reconciliation (campaigns.reconciliation) exists,
    every RECONCILE_EVERY_MINUTES."""
    from django.conf import settings
    from django_q.models import Schedule

    Schedule.objects.using(kwargs.get("using", "default")).update_or_create(
        name=RECONCILE_NAME,
        defaults={
            "func": "campaigns.tasks.reconcile_deliveries",
            "schedule_type": Schedule.MINUTES,
            "minutes": settings.RECONCILE_EVERY_MINUTES,
        },
    )
