"""Picking an A/B test's winner and sending it to the held remainder.

The rule (README "A/B tests"): once the wait after the test's send time is
over, the variant with the higher rate of the test's metric wins, even when
the difference is not statistically meaningful (the reason recorded says
so); equal rates (or no figures at all) go to the earlier label. With
`picking` AUTOMATIC the periodic tick picks it (`pick_due_winners`); with
CONFIRM a Sender confirms it on the dashboard, and may choose another
variant than the suggested one. Either way the winner is recorded, audited
and the remainder released in one transaction, under the ABTest row's lock
and only while no winner is recorded: running it twice sends nothing twice.
"""

from datetime import datetime, timedelta

from django.db import transaction
from django.utils import timezone

from campaigns import transitions
from campaigns.authoring import variants
from campaigns.dispatch import drain
from campaigns.dispatch.freeze import hold_until
from campaigns.models import ABTest, Batch, Campaign, Recipient, Variant
from campaigns.models.states import DISPATCHING
from campaigns.tracking import ab_results
from contacts.models import AuditEvent

Status = Campaign.Status
# Where the remainder may still be sent from: running, or paused (it waits
# for the resume like every due batch).
PICKABLE = (*DISPATCHING, Status.PAUSED)


class WinnerError(ValueError):
    """The winner cannot be picked now; the message says why."""


def pick_at(test: ABTest) -> datetime | None:
    """When the wait is over (None: the test has not been sent yet)."""
    if test.test_sent_at is None:
        return None
    return test.test_sent_at + timedelta(minutes=test.wait_minutes)


def suggestion(campaign: Campaign, test: ABTest) -> ab_results.Comparison | None:
    """The comparison the rule picks by, on the figures as they are now."""
    metric = ab_results.metric(test.metric)
    return ab_results.compare(metric.figures(campaign), metric.label)


def pick_winner(
    campaign_id: int,
    *,
    user=None,
    label: str | None = None,
    now: datetime | None = None,
) -> str:
    """Record the winner and release the remainder; returns the winner.

    `user` None: picked automatically by the rule; else a Sender confirms
    `label` (default: the rule's suggestion). Raises WinnerError when there
    is no test, the wait is not over, a winner was already picked, the
    campaign was cancelled or ended, or `label` is no variant.
    """
    now = now or timezone.now()
    with transaction.atomic():
        test = (
            ABTest.objects.select_for_update()
            .select_related("campaign")
            .filter(pk=campaign_id)
            .first()
        )
        if test is None:
            raise WinnerError("This campaign has no “test first” A/B test.")
        campaign = test.campaign
        if test.winner:
            raise WinnerError(f"Variant {test.winner} was already picked.")
        if campaign.status not in PICKABLE:
            raise WinnerError(
                f"The campaign is {campaign.get_status_display().lower()}: "
                "the remainder is not sent."
            )
        due = pick_at(test)
        if due is None or due > now:
            when = f" at {due:%Y-%m-%d %H:%M} UTC" if due else ""
            raise WinnerError(f"The test's wait is not over yet: it ends{when}.")
        labels = set(
            Variant.objects.filter(campaign=campaign).values_list("label", flat=True)
        )
        comparison = suggestion(campaign, test)
        suggested = comparison.best if comparison else min(labels)
        winner = label or suggested
        if winner not in labels:
            raise WinnerError(f"{winner!r} is no variant of this campaign.")
        reason = _reason(test, comparison, winner, suggested, user)
        ABTest.objects.filter(pk=campaign_id).update(
            winner=winner, winner_at=now, winner_reason=reason, winner_by=user
        )
        transitions.audit(
            campaign,
            user,
            AuditEvent.Action.LAUNCH,
            f"A/B test: winner {winner}: {reason}"[:500],
            winner=winner,
            p_value=comparison.p if comparison else None,
        )
        release_remainder(campaign, winner, now)
    return winner


def _reason(test, comparison, winner, suggested, user) -> str:
    """Why `winner` was chosen, in words (kept on the test and audited)."""
    metric = ab_results.metric(test.metric).label
    if user is None:
        by = f"Picked automatically by {metric} when the wait was over."
    else:
        by = f"Confirmed by {user} ({metric})."
    if comparison is None:
        return f"{by} No figures to compare."
    if winner != suggested:
        return f"{by} Chosen instead of {suggested}. {comparison.words}"
    if not comparison.meaningful:
        return (
            f"{by} {comparison.words} Rule: after the wait the higher rate "
            "wins even when the difference is not meaningful; equal rates go "
            "to the earlier variant."
        )
    return f"{by} {comparison.words}"


def release_remainder(campaign: Campaign, winner: str, now: datetime) -> int:
    """Give the held remainder the winner's message and make it due; returns
    how many recipients. Inside pick_winner's transaction: a second call
    finds no batch held (their variant is set)."""
    held = Batch.objects.filter(
        campaign=campaign,
        is_test=False,
        ab_remainder=True,
        variant=variants.REMAINDER,
        status=Batch.Status.PENDING,
    )
    ids = list(held.values_list("pk", flat=True))
    recipients = Recipient.objects.filter(
        batch_id__in=ids, status=Recipient.Status.PENDING
    ).update(variant=winner)
    releases = set()
    for pk, wave_at in Batch.objects.filter(pk__in=ids).values_list("pk", "wave_at"):
        # A wave still ahead (quiet hours, local time) keeps its send time.
        wave = wave_at if wave_at and wave_at > now else None
        not_before = hold_until(campaign, wave) if wave else None
        if not_before is not None and not_before > now:
            releases.add(not_before)
        else:
            not_before = None
        Batch.objects.filter(pk=pk).update(
            variant=winner, not_before=not_before, wave_at=wave
        )
    ABTest.objects.filter(pk=campaign.pk).update(remainder_sent_at=now)
    transitions.audit(
        campaign,
        None,
        AuditEvent.Action.LAUNCH,
        f"A/B test: remainder sent: {recipients:,} recipients in {len(ids):,} "
        f"batches get variant {winner}; consent is checked again before each "
        "batch is submitted.",
    )
    for when in sorted(releases):
        drain.schedule_release(campaign.pk, when)
    if ids:
        drain.start(campaign.pk)
    return recipients


def pick_due_winners(now: datetime | None = None) -> int:
    """Pick the winner of every automatic test whose wait is over (the tick);
    returns how many. Safe to run twice, and on several workers."""
    now = now or timezone.now()
    due = ABTest.objects.filter(
        picking=ABTest.Picking.AUTOMATIC,
        winner="",
        test_sent_at__isnull=False,
        campaign__status__in=PICKABLE,
    ).values_list("pk", "test_sent_at", "wait_minutes")
    picked = 0
    for pk, sent_at, wait in due:
        if sent_at + timedelta(minutes=wait) > now:
            continue
        try:
            pick_winner(pk, now=now)
        except WinnerError:
            continue  # picked or cancelled meanwhile
        picked += 1
    return picked
