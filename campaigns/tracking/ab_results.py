"""A/B test figures: per-variant counts, the winner metrics, and the z-test.

`METRICS` is the registry of what a winner can be picked by: each metric
returns, per variant label, (successes, trials) among the test group's
recipients. Adding a metric is one function and one entry; click rate needs
tracked links (variants.LINK_METRICS): it is offered and accepted only for a
campaign that tracks them.
The comparison is a two-proportion z-test (pooled), two-sided, written with
math.erf; a difference is called meaningful when p < 0.05 ("less than 1
time in 20 by chance").
"""

import math
from collections.abc import Callable
from dataclasses import dataclass

from django.db import connection
from django.db.models import Count

from campaigns.authoring import variants
from campaigns.models import ABTest, Campaign, InboundMessage, Recipient, Variant
from campaigns.models.states import SUCCESS
from campaigns.tracking.clicks import human_clicks

R = Recipient.Status
# A recipient who was handed to Sinch (the trials of every metric).
NOT_SENT = (R.EXCLUDED, R.PENDING, R.CANCELLED)
SIGNIFICANCE = 0.05

Figures = dict[str, tuple[int, int]]  # label -> (successes, trials)


def _test_group(campaign: Campaign):
    """The test group's sent recipients (with test-first, not the remainder)."""
    return (
        Recipient.objects.filter(campaign=campaign, is_test=False)
        .exclude(variant="")
        .exclude(status__in=NOT_SENT)
        .exclude(batch__ab_remainder=True)
    )


def _per_label(queryset) -> dict[str, int]:
    return dict(queryset.values_list("variant").annotate(n=Count("pk")).order_by())


def _with_trials(
    campaign: Campaign, successes: dict[str, int], trials: dict[str, int] | None = None
) -> Figures:
    trials = _per_label(_test_group(campaign)) if trials is None else trials
    labels = Variant.objects.filter(campaign=campaign).values_list("label", flat=True)
    return {x: (successes.get(x, 0), trials.get(x, 0)) for x in sorted(labels)}


def delivery_rate(campaign: Campaign) -> Figures:
    """Delivered (or read) among those sent."""
    return _with_trials(
        campaign, _per_label(_test_group(campaign).filter(status__in=SUCCESS))
    )


def _repliers(campaign: Campaign):
    """Contacts who replied to the campaign (an opt-out is no reply)."""
    return (
        InboundMessage.objects.filter(campaign=campaign, contact__isnull=False)
        .exclude(keyword=InboundMessage.Keyword.STOP)
        .values("contact_id")
    )


def reply_rate(campaign: Campaign) -> Figures:
    """Recipients who replied among those sent."""
    group = _test_group(campaign).filter(contact_id__in=_repliers(campaign))
    return _with_trials(campaign, _per_label(group))


def _clickers(campaign: Campaign):
    """Recipients who opened a short link as a person (preview fetchers and
    test sends never count)."""
    return human_clicks(campaign.pk).values("recipient_id")


def click_rate(campaign: Campaign) -> Figures:
    """Unique human clickers among those delivered."""
    delivered = _test_group(campaign).filter(status__in=SUCCESS)
    clicked = delivered.filter(pk__in=_clickers(campaign))
    return _with_trials(campaign, _per_label(clicked), _per_label(delivered))


@dataclass(frozen=True)
class Metric:
    key: str
    label: str  # "reply rate"
    figures: Callable[[Campaign], Figures]

    @property
    def needs_links(self) -> bool:
        """Only for a campaign that tracks links (variants.LINK_METRICS)."""
        return self.key in variants.LINK_METRICS


METRICS: dict[str, Metric] = {
    m.key: m
    for m in (
        Metric(ABTest.Metric.REPLY_RATE, "reply rate", reply_rate),
        Metric(ABTest.Metric.DELIVERY_RATE, "delivery rate", delivery_rate),
        Metric(ABTest.Metric.CLICK_RATE, "click rate", click_rate),
    )
}


def offered(track_links: bool) -> list[Metric]:
    """The metrics a campaign can be tested by (click rate: tracked links)."""
    return [m for m in METRICS.values() if track_links or not m.needs_links]


def metric(key: str) -> Metric:
    """The registered metric `key` (ValueError names the known ones)."""
    try:
        return METRICS[key]
    except KeyError:
        known = ", ".join(sorted(METRICS))
        raise ValueError(f"unknown A/B metric {key!r}; known: {known}") from None


def rate(successes: int, trials: int) -> float | None:
    return successes / trials if trials else None


def z_test(s1: int, n1: int, s2: int, n2: int) -> tuple[float, float] | None:
    """Two-proportion z-test (pooled): (z, two-sided p), or None when it
    cannot be computed (no trials on a side, or no variation at all)."""
    if n1 <= 0 or n2 <= 0:
        return None
    pooled = (s1 + s2) / (n1 + n2)
    variance = pooled * (1 - pooled) * (1 / n1 + 1 / n2)
    if variance <= 0:
        return None
    z = (s1 / n1 - s2 / n2) / math.sqrt(variance)
    # Two-sided p from the normal distribution: 2 * (1 - Phi(|z|)).
    p = 1 - math.erf(abs(z) / math.sqrt(2))
    return z, p


@dataclass(frozen=True)
class Comparison:
    best: str
    other: str
    p: float | None
    meaningful: bool
    words: str


def compare(figures: Figures, metric_label: str) -> Comparison | None:
    """The best variant against the runner-up, in plain words; None with
    fewer than two variants. Ties go to the earlier label."""
    ranked = sorted(
        figures,
        key=lambda x: (-(rate(*figures[x]) or 0.0), x),
    )
    if len(ranked) < 2:
        return None
    best, other = ranked[0], ranked[1]
    (s1, n1), (s2, n2) = figures[best], figures[other]
    result = z_test(s1, n1, s2, n2)
    p = result[1] if result else None
    if not n1 or not n2:
        words = f"Not enough evidence yet: no {metric_label} to compare."
        return Comparison(best, other, p, False, words)
    if rate(s1, n1) == rate(s2, n2):
        words = (
            f"{best} and {other} have the same {metric_label} so far: "
            "not enough evidence yet."
        )
        return Comparison(best, other, p, False, words)
    meaningful = p is not None and p < SIGNIFICANCE
    if meaningful:
        words = (
            f"{best}'s {metric_label} is higher than {other}'s; a difference "
            "this large would happen by chance less than 1 time in 20 "
            f"(p = {p:.3f})."
        )
    else:
        chance = f" (p = {p:.2f})" if p is not None else ""
        words = (
            f"{best}'s {metric_label} is higher than {other}'s, but not enough "
            f"evidence yet: a difference this large could well be chance{chance}."
        )
    return Comparison(best, other, p, meaningful, words)


@dataclass(frozen=True)
class VariantRow:
    label: str
    template: str
    share: int
    recipients: int
    sent: int
    delivered: int
    failed: int
    replies: int
    # Tracked links only (None otherwise): human clicks and unique clickers.
    clicks: int | None = None
    clickers: int | None = None

    def pct(self, n: int) -> str:
        return f"{100 * n / self.sent:.1f} %" if self.sent else "-"

    @property
    def click_rate(self) -> str:
        """Unique clickers among those delivered (as the winner metric)."""
        if self.clickers is None or not self.delivered:
            return "-"
        return f"{100 * self.clickers / self.delivered:.1f} %"

    @property
    def delivery_rate(self) -> str:
        return self.pct(self.delivered)

    @property
    def reply_rate(self) -> str:
        return self.pct(self.replies)


def variant_rows(campaign: Campaign) -> list[VariantRow]:
    """Each variant's figures, side by side (a remainder sent with the
    winner counts for the winner)."""
    base = Recipient.objects.filter(campaign=campaign, is_test=False).exclude(
        variant=""
    )
    by_status: dict[tuple[str, str], int] = {
        (v, s): n
        for v, s, n in base.values_list("variant", "status")
        .annotate(n=Count("pk"))
        .order_by()
    }
    replies = _per_label(
        base.exclude(status__in=NOT_SENT).filter(contact_id__in=_repliers(campaign))
    )
    clicks = variant_clicks(campaign) if campaign.track_links else None
    rows = []
    for variant in Variant.objects.filter(campaign=campaign).select_related("template"):
        x = variant.label

        def n(*statuses, x=x):
            return sum(by_status.get((x, s), 0) for s in statuses)

        rows.append(
            VariantRow(
                label=x,
                template=str(variant.template or campaign.template),
                share=variant.share,
                recipients=sum(v for (lab, _), v in by_status.items() if lab == x),
                sent=n(*[s for s in R.values if s not in NOT_SENT]),
                delivered=n(*SUCCESS),
                failed=n(R.FAILED),
                replies=replies.get(x, 0),
                clicks=None if clicks is None else clicks.get(x, (0, 0))[0],
                clickers=None if clicks is None else clicks.get(x, (0, 0))[1],
            )
        )
    return rows


def variant_clicks(campaign: Campaign) -> dict[str, tuple[int, int]]:
    """{label: (human clicks, unique clickers)} by each clicker's variant (a
    remainder sent with the winner counts for the winner).

    One grouped query: the campaign's human clicks (clicks.human_clicks, so
    the two cannot drift) joined to Recipient by id. Click.recipient_id is a
    plain column, not a foreign key, so the ORM has no join to offer, and
    reading each click's variant with a subquery cost one Recipient lookup
    per click row."""
    clicks, params = (
        human_clicks(campaign.pk).values("recipient_id").order_by().query
    ).sql_with_params()
    recipient = Recipient._meta
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT r.variant, COUNT(*), COUNT(DISTINCT c.recipient_id) "
            f"FROM ({clicks}) c JOIN {recipient.db_table} r "
            f"ON r.{recipient.pk.column} = c.recipient_id "
            "WHERE r.variant <> '' GROUP BY r.variant",
            params,
        )
        return {label: (n, people) for label, n, people in cursor.fetchall()}
