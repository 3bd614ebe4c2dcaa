"""Which campaign a reply answers.

Sinch writes the `_batch_id` of the batch last sent to a number into that
conversation's metadata, and returns it with the number's replies: the reply
answers the campaign of that batch (looked up among our batches by
`sinch_batch_id`). Sinch returns none in DISPATCH mode without retention, or
when the conversation began elsewhere: then the reply is attributed to the
last campaign handed over to that number (its recipient row submitted,
queued, delivered or read, last changed within REPLY_ATTRIBUTION_DAYS of the
reply), and marked inferred. Test sends answer no campaign.
"""

from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.db.models import Count, Q

from campaigns.models import Batch, InboundMessage, Recipient

R = Recipient.Status
# A person can only answer what was handed over to their channel.
_HANDED_OVER = (R.SUBMITTED, R.QUEUED_ON_CHANNEL, R.DELIVERED, R.READ)


# The replies that opt their sender out: a STOP keyword, or a reply that read
# like an opt-out and was recorded as one on review. The opt-outs a campaign
# caused are its replies that meet this.
OPT_OUT_REPLY = Q(keyword=InboundMessage.Keyword.STOP) | Q(
    review=InboundMessage.Review.OPTED_OUT
)


@dataclass(frozen=True, slots=True)
class Reply:
    """What attribution reads of one reply."""

    sinch_batch_id: str
    contact_id: int | None
    identity: str
    received_at: datetime


@dataclass(frozen=True, slots=True)
class Attribution:
    campaign_id: int | None = None
    inferred: bool = False


def attribute_replies(replies: list[Reply]) -> list[Attribution]:
    """The campaign each reply answers, in the order given (two queries)."""
    by_batch = _campaigns_by_batch({r.sinch_batch_id for r in replies})
    result = [Attribution(by_batch.get(r.sinch_batch_id)) for r in replies]
    unknown = [
        n
        for n, (reply, found) in enumerate(zip(replies, result, strict=True))
        if found.campaign_id is None and reply.contact_id is not None
    ]
    if not unknown:
        return result
    window = timedelta(days=settings.REPLY_ATTRIBUTION_DAYS)
    deliveries = _recent_deliveries(
        [replies[n] for n in unknown],
        since=min(replies[n].received_at for n in unknown) - window,
    )
    for n in unknown:
        reply = replies[n]
        candidates = [
            (changed, campaign_id)
            for changed, campaign_id in deliveries.get(
                (reply.contact_id, reply.identity), []
            )
            if changed >= reply.received_at - window
        ]
        if candidates:
            result[n] = Attribution(max(candidates)[1], inferred=True)
    return result


def _campaigns_by_batch(batch_ids: set[str]) -> dict[str, int]:
    batch_ids.discard("")
    if not batch_ids:
        return {}
    return dict(
        Batch.objects.filter(sinch_batch_id__in=batch_ids, is_test=False).values_list(
            "sinch_batch_id", "campaign_id"
        )
    )


def _recent_deliveries(
    replies: list[Reply], *, since: datetime
) -> dict[tuple[int, str], list[tuple[datetime, int]]]:
    """(contact, identity) -> [(last change, campaign)] of recipients handed
    over since `since`; found through the recipients' contact index."""
    found: dict[tuple[int, str], list[tuple[datetime, int]]] = {}
    rows = Recipient.objects.filter(
        contact_id__in={r.contact_id for r in replies},
        identity__in={r.identity for r in replies},
        is_test=False,
        status__in=_HANDED_OVER,
        updated_at__gte=since,
    ).values_list("contact_id", "identity", "updated_at", "campaign_id")
    for contact_id, identity, changed, campaign_id in rows:
        found.setdefault((contact_id, identity), []).append((changed, campaign_id))
    return found


def campaign_replies(campaign_id: int) -> dict[str, int]:
    """What a campaign's replies caused (one aggregate): replies, opt-outs
    (STOP, and opt-outs recorded from a reviewed reply), replies still
    waiting for review, and how many of them were attributed by inference."""
    return InboundMessage.objects.filter(campaign_id=campaign_id).aggregate(
        replies=Count("pk"),
        opt_outs=Count("pk", filter=OPT_OUT_REPLY),
        needs_review=Count("pk", filter=Q(review=InboundMessage.Review.PENDING)),
        inferred=Count("pk", filter=Q(campaign_inferred=True)),
    )
