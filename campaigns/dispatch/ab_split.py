"""A/B tests at dispatch: the split recorded at launch, the remainder released.

With "test first", the freeze puts the remainder (recipients whose split
number falls outside the test share) in batches of their own, marked
`ab_remainder` and held (`not_before` = HELD) with no variant. When a winner
is picked, campaigns.tracking.ab_winner gives those batches and their
recipients the winner's label and makes them due: from there they go
through the same drain as any batch, so consent is checked again just
before their submission (campaigns.dispatch.drain), a cancel cancels them,
and receipts count for them.
"""

from datetime import timedelta

from django.db.models import Sum
from django.utils import timezone

from campaigns import transitions
from campaigns.authoring import variants
from campaigns.models import ABTest, Batch, Campaign, Variant
from campaigns.models.states import HELD_FOR_WINNER
from contacts.models import AuditEvent

HELD = HELD_FOR_WINNER  # a held remainder batch is due when the winner is picked
LAUNCH = AuditEvent.Action.LAUNCH


def describe_split(campaign: Campaign) -> str:
    """The split in words, e.g. "A 50 %, B 50 % of 20 % first (by reply rate)"."""
    shares = ", ".join(
        f"{label} {share} %"
        for label, share in Variant.objects.filter(campaign=campaign)
        .order_by("label")
        .values_list("label", "share")
    )
    test = ABTest.objects.filter(campaign=campaign).first()
    if test is None:
        return f"{shares} of the audience"
    return (
        f"{shares} of a test group of {test.test_share} % of the audience; "
        f"the winner by {test.get_metric_display().lower()} goes to the rest "
        f"{test.wait_minutes:,} minutes after the test is sent "
        f"({test.get_picking_display().lower()})"
    )


def record_split(campaign: Campaign, user) -> None:
    """At launch, inside its transaction: freeze the variants' messages and
    audit the split. Does nothing for a campaign without variants."""
    if not Variant.objects.filter(campaign=campaign).exists():
        return
    variants.freeze_variants(campaign)
    transitions.audit(
        campaign,
        user,
        LAUNCH,
        f"A/B test: split set: {describe_split(campaign)}."[:500],
    )


def test_started(campaign: Campaign) -> None:
    """At the end of the freeze: the test's send time starts the wait (once)."""
    test = ABTest.objects.filter(campaign=campaign).first()
    if test is None or test.test_sent_at is not None:
        return
    held = (
        Batch.objects.filter(campaign=campaign, ab_remainder=True).aggregate(
            n=Sum("size")
        )["n"]
        or 0
    )
    start = max(campaign.send_at or timezone.now(), timezone.now())
    if ABTest.objects.filter(pk=campaign.pk, test_sent_at__isnull=True).update(
        test_sent_at=start, remainder_size=held
    ):
        pick_at = start + timedelta(minutes=test.wait_minutes)
        transitions.audit(
            campaign,
            None,
            LAUNCH,
            f"A/B test: test started at {start:%Y-%m-%d %H:%M} UTC; "
            f"{held:,} recipients held for the winner, picked from "
            f"{pick_at:%Y-%m-%d %H:%M} UTC.",
        )
