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

from campaigns.authoring.rendering import MessagePlan
from campaigns.compliance.footer import campaign_footer
from campaigns.models import ABTest, Campaign, Variant
from campaigns.placeholders import FOOTER_PARAMETER

BUCKETS = 10_000
REMAINDER = ""  # the label of a recipient held for the winner
MIN_VARIANTS, MAX_VARIANTS = 2, 4


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


def variant_problems(campaign: Campaign) -> list[str]:
    """Why the campaign's variants cannot be sent as they are (empty: fine)."""
    variants = list(
        Variant.objects.filter(campaign=campaign).select_related("template")
    )
    if not variants:
        if ABTest.objects.filter(campaign=campaign).exists():
            return ["“Test first” needs 2 to 4 A/B variants."]
        return []
    problems = []
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
        if campaign.track_links and template.pk != campaign.template_id:
            problems.append(
                f"Variant {variant.label} has a template of its own, and tracked "
                "links are made from the campaign's template only: give the "
                "variant the campaign's template, or turn tracked links off."
            )
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
    """The variant's message as it would be frozen now (with the footer)."""
    if variant.template is None:
        return MessagePlan.live(campaign)
    plan = MessagePlan.from_template(variant.template, campaign.campaign_values)
    footer = campaign_footer(campaign, plan.message)
    if footer is None:
        return plan
    return MessagePlan(plan.message, plan.sources, plan.campaign_values, footer)


def freeze_variants(campaign: Campaign) -> None:
    """Freeze every variant's message with the campaign's (launch)."""
    for variant in Variant.objects.filter(campaign=campaign).select_related("template"):
        variant.message_snapshot = variant_plan(campaign, variant).snapshot()
        Variant.objects.filter(pk=variant.pk).update(
            message_snapshot=variant.message_snapshot
        )


def variant_messages(campaign: Campaign) -> dict[str, dict[str, Any]]:
    """The Sinch `message` of each variant by label: frozen once launched."""
    messages = {}
    for variant in Variant.objects.filter(campaign=campaign).select_related("template"):
        if variant.message_snapshot:
            plan = MessagePlan.from_snapshot(variant.message_snapshot)
        else:
            plan = variant_plan(campaign, variant)
        messages[variant.label] = plan.message
    return messages
