"""The one thing the Sinch boundary keeps in the database: when Sinch last
refused our credentials, for the operator health page.

Auth errors surface deep in workers (a batch waits and is retried), so they
are noted here as they happen, in one row updated in place. Only the
operation, the HTTP status and Sinch's error text are kept: never a key,
secret or token (SinchError texts never hold them).
"""

import logging

from django.db import models, transaction
from django.db.models import F
from django.utils import timezone

logger = logging.getLogger(__name__)


class AuthFailure(models.Model):
    """Sinch refused the credentials (401/403): the last time, and how often."""

    first_at = models.DateTimeField()
    last_at = models.DateTimeField()
    count = models.PositiveIntegerField(default=0)
    operation = models.CharField(max_length=200, blank=True)
    status = models.PositiveSmallIntegerField(null=True, blank=True)
    message = models.CharField(max_length=500, blank=True)

    def __str__(self) -> str:
        return (
            f"{self.count} Sinch auth failures, last at {self.last_at:%Y-%m-%d %H:%M}"
        )


def note_auth_failure(error, operation: str = "") -> None:
    """Record that Sinch refused the credentials. Never raises: noting it must
    not change the outcome of the call (e.g. where no database is reachable)."""
    now = timezone.now()
    fields = {
        "last_at": now,
        "operation": operation[:200],
        "status": getattr(error, "status", None),
        "message": str(error)[:500],
    }
    try:
        with transaction.atomic():
            if not AuthFailure.objects.filter(pk=1).update(
                count=F("count") + 1, **fields
            ):
                AuthFailure.objects.create(pk=1, first_at=now, count=1, **fields)
    except Exception as exc:
        logger.warning("Sinch auth failure not recorded: %s", type(exc).__name__)
