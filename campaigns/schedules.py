"""The periodic django-q2 schedules of the campaigns app, as code.

`ensure_schedules` (run after every migrate) creates each one by name. The
tick keeps what an admin changed in the django-q2 admin (e.g. paused it); the
reconciliation follows RECONCILE_EVERY_MINUTES. Names and dotted paths are
stored in the database: keep them.
"""

from django.conf import settings
from django_q.models import Schedule

TICK_NAME = "campaigns: reconcile and restart dispatch (every minute)"
RECONCILE_NAME = "campaigns: reconcile deliveries (silent batches, stalled receipts)"
IMPORTS_NAME = "contacts: resume imports whose worker stopped (every minute)"


def schedules() -> list[dict]:
    """Each schedule: its name, task path, and whether settings own its fields."""
    return [
        {
            "name": TICK_NAME,
            "func": "campaigns.tasks.tick",
            "minutes": 1,
            "from_settings": False,
        },
        {
            "name": RECONCILE_NAME,
            "func": "campaigns.tasks.reconcile_deliveries",
            "minutes": settings.RECONCILE_EVERY_MINUTES,
            "from_settings": True,
        },
        {
            "name": IMPORTS_NAME,
            "func": "contacts.tasks.resume_stalled_imports",
            "minutes": 1,
            "from_settings": False,
        },
    ]


def ensure_schedules(**kwargs) -> None:
    """Create the schedules that are missing (post_migrate receiver)."""
    objects = Schedule.objects.using(kwargs.get("using", "default"))
    for spec in schedules():
        fields = {
            "func": spec["func"],
            "schedule_type": Schedule.MINUTES,
            "minutes": spec["minutes"],
        }
        if spec["from_settings"]:
            objects.update_or_create(name=spec["name"], defaults=fields)
        else:
            objects.get_or_create(name=spec["name"], defaults=fields)
