"""The figures of each campaign on the campaign list, as annotations.

A page of the list reads them in the same query as the campaigns: one
correlated subquery per figure over the kept counts (campaigns.counters: a
few CampaignCount rows per campaign, found through their unique index) and
the campaign's replies (InboundMessage's (campaign, keyword) index), never
the recipients themselves; so a page costs the same whether its campaigns
have ten recipients or a million. Every figure is a plain column the list
can sort by.
"""

from decimal import Decimal

from django.db.models import (
    Case,
    Count,
    DecimalField,
    Exists,
    FloatField,
    IntegerField,
    OuterRef,
    QuerySet,
    Subquery,
    Sum,
    When,
)
from django.db.models.fields.json import KT
from django.db.models.functions import Cast, Coalesce, NullIf

from campaigns.models import (
    CampaignCount,
    Click,
    InboundMessage,
    Recipient,
    TrackedLink,
)
from campaigns.tracking import click_figures
from campaigns.tracking.attribution import OPT_OUT_REPLY

R = Recipient.Status
# Recipients a campaign sends to: all but those excluded at the freeze.
SENT_TO = [s for s in R.values if s != R.EXCLUDED]
# Delivered, as on the dashboard: a read message was delivered.
DELIVERED = [R.DELIVERED, R.READ]
# The statuses of recipients whose message will have an outcome.
EXPECTED = [s for s in SENT_TO if s != R.CANCELLED]


def _kept(statuses: list[str]):
    """The campaign's recipients in `statuses`, from the kept counts."""
    return Coalesce(
        Subquery(
            CampaignCount.objects.filter(campaign=OuterRef("pk"), status__in=statuses)
            .order_by()
            .values("campaign")
            .annotate(n=Sum("count"))
            .values("n")[:1],
            output_field=IntegerField(),
        ),
        0,
    )


def _replies(*conditions):
    """The campaign's replies that meet `conditions`."""
    return Coalesce(
        Subquery(
            InboundMessage.objects.filter(*conditions, campaign=OuterRef("pk"))
            .order_by()
            .values("campaign")
            .annotate(n=Count("pk"))
            .values("n")[:1],
            output_field=IntegerField(),
        ),
        0,
    )


def _clickers():
    """The campaign's unique human clickers (index click_campaign_people)."""
    return Coalesce(
        Subquery(
            Click.objects.filter(
                campaign_id=OuterRef("pk"), is_test=False, is_preview=False
            )
            .order_by()
            .values("campaign_id")
            .annotate(n=Count("recipient_id", distinct=True))
            .values("n")[:1],
            output_field=IntegerField(),
        ),
        0,
    )


def with_figures(queryset: QuerySet) -> QuerySet:
    """`queryset` of campaigns with, on each: `recipients_count` (sent to,
    exclusions left out), `delivered_count`, `expected_count` (recipients
    not cancelled), `delivered_percent` (of expected; None before any),
    `failed_count`, `replies_count`, `opt_outs_count` (opt-outs its replies
    caused: STOP and reviewed opt-outs, as the dashboard counts them),
    `cost_estimate` (the last pre-send check's, a Decimal; None without),
    `has_links` (it has tracked links), `clickers_count` (unique human
    clickers) and `click_percent` (clickers of delivered; None without
    tracked links or before any delivery)."""
    queryset = queryset.annotate(
        recipients_count=_kept(SENT_TO),
        delivered_count=_kept(DELIVERED),
        expected_count=_kept(EXPECTED),
        failed_count=_kept([R.FAILED]),
        replies_count=_replies(),
        opt_outs_count=_replies(OPT_OUT_REPLY),
        cost_estimate=Cast(
            KT("presend__cost_total"),
            DecimalField(max_digits=16, decimal_places=4),
        ),
        has_links=Exists(TrackedLink.objects.filter(campaign=OuterRef("pk"))),
        clickers_count=_clickers(),
    )
    return queryset.annotate(
        delivered_percent=Cast("delivered_count", FloatField())
        * 100
        / NullIf("expected_count", 0),
        click_percent=Case(
            When(
                has_links=True,
                then=Cast("clickers_count", FloatField())
                * 100
                / NullIf("delivered_count", 0),
            ),
            default=None,
            output_field=FloatField(),
        ),
    )


def percent_text(delivered: int, expected: int) -> str:
    """ "97 %", with 100 only when all were delivered and "< 1 %" for a few."""
    if expected <= 0:
        return "—"
    if delivered >= expected:
        return "100 %"
    value = 100 * delivered / expected
    if 0 < value < 1:
        return "< 1 %"
    return f"{min(99, round(value))} %"


def click_rate_text(has_links: bool, clickers: int, delivered: int) -> str:
    """Unique clickers of delivered, "—" for a campaign without tracked links."""
    if not has_links:
        return "—"
    return click_figures.rate_text(clickers, delivered)


def cost_text(cost: Decimal | None, currency: str) -> str:
    return "—" if cost is None else f"{currency} {cost:,.2f}"
