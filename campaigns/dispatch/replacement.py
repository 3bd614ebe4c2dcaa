"""Replacing a batch scheduled at Sinch without the people who left it.

When someone opts out or is erased after the launch, a batch already
scheduled at Sinch still holds them (campaigns.dispatch.late_optouts finds
such batches and asks Sinch to cancel them, with a `replace_reason`). Once
Sinch **confirms** the cancel (never before: invariant 2, nobody twice),
`hand_over` runs as part of settling it (campaigns.dispatch.cancellation):

- the people consent_problem now rejects are EXCLUDED with the reason
  ("opted out after launch"); fallback identities it now rejects leave
  their rows (the person is still sent on the others);
- the others move, with their rows (same ids, same positions, so receipts
  still find them), into a new PENDING batch that `replaces` the cancelled
  one, with a new metadata key and the next sequence number; drain submits
  it with the cancelled batch's send_after (campaigns.dispatch.drain).

When Sinch does not confirm in time, `record_not_dropped` says on each
person's row that the message went anyway.
"""

from django.db import transaction
from django.db.models import Max
from django_q.tasks import async_task

from campaigns import counters, transitions
from campaigns.authoring import recheck
from campaigns.dispatch.batch_request import new_metadata_key
from campaigns.models import Batch, Campaign, Recipient

R = Recipient.Status
NOT_DROPPED = "; sent anyway: Sinch did not confirm the cancel before the send time"


def describe(
    dropped: dict[str, list[int]], lost: dict[str, list[int]] | None = None
) -> str:
    """Who left, in words, from recheck_batch's {reason: [ids]}: e.g. "1
    person opted out after launch" or "3 people: 2 opted out after launch,
    1 consent withdrawn after launch"; then the fallback identities left out
    (recheck.lost_fallbacks), e.g. "1 fallback left out (WhatsApp: opted out
    after launch)"."""
    parts = []
    total = sum(len(ids) for ids in dropped.values())
    if total:
        who = "1 person" if total == 1 else f"{total} people"
        if len(dropped) == 1:
            parts.append(f"{who} {next(iter(dropped))}")
        else:
            each = ", ".join(f"{len(ids)} {why}" for why, ids in dropped.items())
            parts.append(f"{who}: {each}")
    if lost:
        n = sum(len(ids) for ids in lost.values())
        what = ", ".join(
            why if len(ids) == 1 else f"{why} ({len(ids)})" for why, ids in lost.items()
        )
        parts.append(f"{n} fallback{'s' if n != 1 else ''} left out ({what})")
    return "; ".join(parts)[:255]


def hand_over(batch: Batch) -> Batch | None:
    """Settle a batch Sinch confirmed CANCELLED that was being replaced (in
    the caller's transaction): drop who may no longer receive it, move the
    others into a new batch replacing it. Returns the new batch (None when
    nobody is left)."""
    campaign = Campaign.objects.select_for_update().get(pk=batch.campaign_id)
    entries, dropped = recheck.recheck_batch(campaign, batch.pk, status=R.SUBMITTED)
    for reason, ids in dropped.items():
        n = Recipient.objects.filter(pk__in=ids, status=R.SUBMITTED).update(
            status=R.EXCLUDED, reason=reason, batch=None, index=None
        )
        counters.moved(campaign.pk, R.SUBMITTED, R.EXCLUDED, n)
    lost = recheck.lost_fallbacks(entries)
    recheck.record_lost_fallbacks(entries)
    if dropped or lost:
        Batch.objects.filter(pk=batch.pk).update(replace_reason=describe(dropped, lost))
    if not entries:
        return None
    sequence = (
        Batch.objects.filter(campaign=campaign, is_test=False).aggregate(
            n=Max("sequence")
        )["n"]
        or 0
    ) + 1
    new = Batch.objects.create(
        campaign=campaign,
        sequence=sequence,
        metadata_key=new_metadata_key(campaign.pk, sequence),
        size=len(entries),
        replaces=batch,
        variant=batch.variant,  # the same message (A/B tests)
        ab_remainder=batch.ab_remainder,
        wave_at=batch.wave_at,  # it keeps its slot in Sinch's queue
    )
    # The rows keep their ids and positions: receipts find them by id.
    n = Recipient.in_batch(batch, R.SUBMITTED).update(batch=new, status=R.PENDING)
    counters.moved(campaign.pk, R.SUBMITTED, R.PENDING, n)
    transitions.replacement_due(campaign)
    transaction.on_commit(
        lambda: async_task(
            "campaigns.tasks.dispatch_campaign",
            campaign.pk,
            task_name=f"replace-{campaign.pk}-{new.pk}",
        )
    )
    return new


def record_not_dropped(batch: Batch) -> int:
    """The batch went with people it should have lost (Sinch did not confirm
    the cancel in time): their rows say so. Returns how many."""
    campaign = batch.campaign
    entries, dropped = recheck.recheck_batch(campaign, batch.pk, status=R.SUBMITTED)
    total = 0
    for reason, ids in [*dropped.items(), *recheck.lost_fallbacks(entries).items()]:
        total += Recipient.objects.filter(pk__in=ids).update(
            reason=(reason + NOT_DROPPED)[:255]
        )
    return total
