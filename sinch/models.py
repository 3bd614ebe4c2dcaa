"""What the Sinch boundary keeps in the database, for the operator health
page and the campaign page: when Sinch last refused our credentials
(AuthFailure), and whether Sinch can be reached at all (Outage).

Auth errors and outages surface deep in workers (a batch waits and is
retried), so they are noted here as they happen, each in one row updated in
place. Only the
operation, the HTTP status and Sinch's error text are kept: never a key,
secret or token (SinchError texts never hold them).
"""

import logging
import re
from datetime import datetime

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


class Outage(models.Model):
    """Sinch (its API or its auth server) could not be reached: since when,
    and the last error. One row updated in place; `down_since` is None while
    Sinch answers. Kept for the campaign page ("Sinch unreachable since
    10:02, retrying") and the operator health page; holds the operation and
    the error text only (never a credential, a number or a message)."""

    down_since = models.DateTimeField(null=True, blank=True)
    last_at = models.DateTimeField(null=True, blank=True)
    last_error = models.CharField(max_length=500, blank=True)
    count = models.PositiveIntegerField(default=0)
    back_at = models.DateTimeField(null=True, blank=True)

    def __str__(self) -> str:
        if self.down_since is None:
            return "Sinch reachable"
        return f"Sinch unreachable since {self.down_since:%Y-%m-%d %H:%M}"


# Long digit runs (a number Sinch's error text might echo) are not kept.
_DIGITS = re.compile(r"\+?\d[\d ()-]{5,}\d")


def _scrubbed(error) -> str:
    return _DIGITS.sub("…", str(error))[:500]


def note_outage(error) -> datetime | None:
    """Record that Sinch could not be reached (connection refused, timeout,
    5xx, its auth server down); returns since when it is down (None if that
    could not be recorded). Never raises."""
    now = timezone.now()
    try:
        with transaction.atomic():
            updated = Outage.objects.filter(pk=1).update(
                last_at=now, last_error=_scrubbed(error), count=F("count") + 1
            )
            if not updated:
                Outage.objects.create(
                    pk=1,
                    down_since=now,
                    last_at=now,
                    last_error=_scrubbed(error),
                    count=1,
                )
            Outage.objects.filter(pk=1, down_since__isnull=True).update(
                down_since=now, count=1
            )
            return Outage.objects.values_list("down_since", flat=True).get(pk=1)
    except Exception as exc:
        logger.warning("Sinch outage not recorded: %s", type(exc).__name__)
        return None


def note_reachable() -> bool:
    """Sinch answered: the outage, if one was recorded, is over. Read first,
    written only when an outage is recorded: every accepted batch comes here,
    and on SQLite even an UPDATE that changes nothing waits for the write
    lock (which a launch's freeze holds for each chunk it writes)."""
    try:
        down = Outage.objects.filter(pk=1, down_since__isnull=False)
        if not down.exists():
            return False
        return bool(down.update(down_since=None, back_at=timezone.now()))
    except Exception as exc:
        logger.warning("Sinch recovery not recorded: %s", type(exc).__name__)
        return False


def current_outage() -> "Outage | None":
    """The outage going on, or None while Sinch answers."""
    return Outage.objects.filter(pk=1, down_since__isnull=False).first()
