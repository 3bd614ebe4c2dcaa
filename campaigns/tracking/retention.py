"""How long raw webhook bodies are kept.

A stored callback is the raw JSON Sinch sent: numbers, reply texts. Once it
is processed its facts live in recipients, replies and the ledger, and the
body is needed only to look into a problem; WEBHOOK_EVENT_RETENTION_DAYS
after it was received it is deleted (a reply keeps its row; its link to the
event is emptied). NEW events are never deleted: they are not applied yet.
"""

from datetime import datetime, timedelta

from django.conf import settings
from django.utils import timezone

from campaigns.models import WebhookEvent

CHUNK = 5000


def delete_expired_webhook_events(now: datetime | None = None) -> int:
    """Delete processed events received more than the retention ago; returns
    how many. In chunks, so one run never holds a long lock on the inbox."""
    days = settings.WEBHOOK_EVENT_RETENTION_DAYS
    cutoff = (now or timezone.now()) - timedelta(days=days)
    expired = WebhookEvent.objects.filter(received_at__lt=cutoff).exclude(
        state=WebhookEvent.State.NEW
    )
    deleted = 0
    while True:
        ids = list(expired.order_by("id").values_list("id", flat=True)[:CHUNK])
        if not ids:
            return deleted
        WebhookEvent.objects.filter(id__in=ids).delete()
        deleted += len(ids)
