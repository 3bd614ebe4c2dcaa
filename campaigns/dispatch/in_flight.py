"""How many messages Sinch holds for us now, and room under the cap.

Messages handed to Sinch for sending now and not yet processed count against
SINCH_MAX_IN_FLIGHT_MESSAGES; while the cap is reached no new batch is
claimed, and the oldest batches' statuses are re-read from Sinch (one request
per campaign, by its batch_metadata) to learn which were processed.
"""

import logging
from datetime import timedelta

from django.conf import settings
from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from campaigns.dispatch import batch_request, ratelimit, statements
from campaigns.dispatch.outcomes import CLOCK_SKEW
from campaigns.models import Batch
from campaigns.models.states import REMOTE_DONE
from sinch import client as sinch_client
from sinch import wire
from sinch.errors import SinchError

logger = logging.getLogger(__name__)

BatchStatus = Batch.Status
CAP_REFRESH_BATCHES = 20
# A batch's status is re-read from Sinch at most this often.
REMOTE_REREAD_S = 2.0


def in_flight_messages(*, without_waves: bool = False) -> int:
    """Messages handed to Sinch for sending now and not yet processed
    (`without_waves`: only those of batches sent without a planned wave;
    scheduled waves are counted by campaigns.dispatch.ingress)."""
    until = timezone.now() + CLOCK_SKEW
    return statements.in_flight_size(until, without_waves=without_waves)


def room_in_flight() -> bool:
    """Below the in-flight cap (re-reading the oldest batches' status if not)."""
    limit = max(0, settings.SINCH_MAX_IN_FLIGHT_MESSAGES - wire.MAX_RECIPIENTS)
    if in_flight_messages() <= limit:
        return True
    refresh_oldest_in_flight()
    return in_flight_messages() <= limit


def refresh_oldest_in_flight(count: int = CAP_REFRESH_BATCHES) -> int:
    """Re-read from Sinch the status of the oldest unprocessed batches.

    One request per campaign: the batches are listed by the campaign's
    batch_metadata key (batch_request.CAMPAIGN_KEY), which answers for all of its
    batches at once. Returns how many batches' statuses were read.
    """
    now = timezone.now()
    oldest = (
        Batch.objects.filter(status=BatchStatus.ACCEPTED)
        .exclude(remote_status__in=REMOTE_DONE)
        .exclude(sinch_batch_id="")
        .filter(
            Q(remote_checked_at__isnull=True)
            | Q(remote_checked_at__lt=now - timedelta(seconds=REMOTE_REREAD_S))
        )
        .order_by("submitted_at")
        .values_list("campaign_id", flat=True)[:count]
    )
    client = sinch_client.get_sinch_client()
    read = 0
    for campaign_id in dict.fromkeys(oldest):
        if not ratelimit.acquire(timeout_s=5):
            break
        try:
            found = client.batches_by_metadata(
                batch_request.CAMPAIGN_KEY, str(campaign_id)
            )
        except SinchError as exc:
            logger.warning("campaign %s: status read failed: %s", campaign_id, exc)
            continue
        by_status: dict[str, list[str]] = {}
        for remote in found:
            by_status.setdefault(remote.status, []).append(remote.batch_id)
        with transaction.atomic():
            for status, ids in by_status.items():
                read += Batch.objects.filter(
                    campaign_id=campaign_id,
                    status=BatchStatus.ACCEPTED,
                    sinch_batch_id__in=ids,
                ).update(remote_status=status, remote_checked_at=now)
    return read
