"""A/B variants: the split of the audience and each variant's message.

The split is a stable random assignment: a keyed hash (BLAKE2b keyed with the
campaign id) of the contact id gives each contact a number in 0..9999 that
the same campaign always gives the same contact; so a pre-send check, a
launch and a resumed freeze agree on who gets what. With "test first"
(ABTest), numbers below test_share % of 10000 are the test group, split
among the variants by their shares; the rest is the remainder (label ""),
held until a winner is picked. Without it, everyone is split by the shares.
"""

from collections import Counter
from hashlib import blake2b
from typing import Any

from campaigns.authoring import link_tracking
from campaigns.authoring.rendering import MessagePlan
from campaigns.models import ABTest, Campaign, Variant
from campaigns.placeholders import FOOTER_PARAMETER

BUCKETS = 10_000
REMAINDER = ""  # the label of a recipient held for the winner
MIN_VARIANTS, MAX_VARIANTS = 2, 4
# Winner metrics counted from clicks: only for a campaign that tracks links.
LINK_METRICS = frozenset({ABTest.Metric.CLICK_RATE})


class Split:
    """Assigns a contact id to a variant label (or REMAINDER)."""

    def __init__(self, campaign_id: int, shares: list[tuple[str, int]], test_share=0):
        self.key = b"ab-split:%d" % campaign_id
        self.test_cut = test_share * BUCKETS // 100 if test_share else BUCKETS
        # (upper bound, label) in label order: the shares' cumulative sums.
        total = sum(share for _, share in shares) or 1
        self.bounds: list[tuple[int, str]] = []
        running = 0
        for label, share in shares:
            running += share
            self.bounds.append((running * BUCKETS // total, label))

    @classmethod
    def of(cls, campaign: Campaign) -> "Split | None":
        """The campaign's split, or None when it is no A/B test."""
        shares = list(
            Variant.objects.filter(campaign=campaign)
            .order_by("label")
            .values_list("label", "share")
        )
        if len(shares) < MIN_VARIANTS:
            return None
        test = ABTest.objects.filter(campaign=campaign).first()
        return cls(campaign.pk, shares, test.test_share if test else 0)

    def label(self, contact_id: int) -> str:
        """The contact's variant label, or REMAINDER (held for the winner)."""
        digest = blake2b(
            contact_id.to_bytes(8, "big", signed=True), key=self.key, digest_size=8
        ).digest()
        number = int.from_bytes(digest, "big")
        if number % BUCKETS >= self.test_cut:
            return REMAINDER
        # A second, independent part of the hash picks the variant.
        within = (number // BUCKETS) % BUCKETS
        for bound, label in self.bounds:
            if within < bound:
                return label
        return self.bounds[-1][1]


def split_counts(split: Split, contact_ids) -> dict[str, int]:
    """How many of `contact_ids` each label gets ("" = the remainder)."""
    counts = Counter(split.label(pk) for pk in contact_ids)
    return dict(sorted(counts.items()))


def metric_problem(metric_key: str, track_links: bool) -> str | None:
    """Why `metric_key` cannot pick this campaign's winner (None: it can)."""
    if metric_key in LINK_METRICS and not track_links:
        label = ABTest.Metric(metric_key).label.lower()
        return (
            f"The winner by {label} needs tracked links: turn “track links” "
            "on, or pick the winner by another metric."
        )
    return None


def variant_problems(campaign: Campaign) -> list[str]:
    """Why the campaign's variants cannot be sent as they are (empty: fine)."""
    variants = list(
        Variant.objects.filter(campaign=campaign).select_related("template")
    )
    test = ABTest.objects.filter(campaign=campaign).first()
    if not variants:
        if test is not None:
            return ["“Test first” needs 2 to 4 A/B variants."]
        return []
    problems = []
    if test is not None:
        problem = metric_problem(test.metric, campaign.track_links)
        if problem:
            problems.append(problem)
    if not MIN_VARIANTS <= len(variants) <= MAX_VARIANTS:
        problems.append(f"An A/B test has 2 to 4 variants, not {len(variants)}.")
    total = sum(v.share for v in variants)
    if total != 100:
        problems.append(f"The variants' shares add up to {total} %, not 100 %.")
    own = set(campaign.template.placeholders) | {FOOTER_PARAMETER}
    for variant in variants:
        template = variant.template
        if template is None:
            continue
        if template.kind != campaign.template.kind:
            problems.append(
                f"Variant {variant.label}'s template is a {template.get_kind_display()}"
                f" message; the campaign's is a {campaign.template.get_kind_display()}."
            )
        extra = sorted(set(template.placeholders) - own)
        if extra:
            names = ", ".join(f"${{{n}}}" for n in extra)
            problems.append(
                f"Variant {variant.label}'s template uses {names}, which the "
                "campaign's template does not have: add them there (with a "
                "source) or remove them from the variant."
            )
    return problems


def variant_plan(campaign: Campaign, variant: Variant) -> MessagePlan:
    """The variant's message as it would be frozen now (with the footer, and
    its own tracked links when the campaign tracks links)."""
    return MessagePlan.live(campaign, variant.template)


def frozen_plan(campaign: Campaign, variant: Variant) -> MessagePlan:
    """The variant's message: frozen once launched, else as it is now."""
    if variant.message_snapshot:
        return MessagePlan.from_snapshot(variant.message_snapshot)
    return variant_plan(campaign, variant)


def freeze_variants(campaign: Campaign) -> None:
    """Freeze every variant's message with the campaign's (launch), and
    record its tracked links (link_tracking.record_links: a URL the variants
    share is one TrackedLink; clicks are told apart by the recipient's
    variant)."""
    for variant in Variant.objects.filter(campaign=campaign).select_related("template"):
        plan = variant_plan(campaign, variant)
        variant.message_snapshot = plan.snapshot()
        Variant.objects.filter(pk=variant.pk).update(
            message_snapshot=variant.message_snapshot
        )
        if plan.links:
            link_tracking.record_links(campaign, list(plan.links))


def plans_by_label(campaign: Campaign) -> dict[str, MessagePlan]:
    """Each variant's message plan by label (empty: no A/B test)."""
    return {
        variant.label: frozen_plan(campaign, variant)
        for variant in Variant.objects.filter(campaign=campaign).select_related(
            "template"
        )
    }


def variant_messages(campaign: Campaign) -> dict[str, dict[str, Any]]:
    """The Sinch `message` of each variant by label: frozen once launched."""
    return {label: plan.message for label, plan in plans_by_label(campaign).items()}


def variant_links(campaign: Campaign, label: str) -> list[link_tracking.Link]:
    """The tracked links of variant `label`'s message (frozen once launched)."""
    variant = (
        Variant.objects.filter(campaign=campaign, label=label)
        .select_related("template")
        .first()
    )
    if variant is None or not campaign.track_links:
        return []
    return list(frozen_plan(campaign, variant).links)
