"""The pre-send check of a campaign's whole audience.

`run_presend_check` walks the distinct audience members in contact-id order
(campaigns.authoring.audience.member_rows) and classifies each by the rule of
campaigns.authoring.audience: excluded, blocking, or ok with warnings. One CSV
row per member is streamed to MEDIA_ROOT/presend/campaign-<id>.csv; the
campaign keeps only a summary (counts, the first examples per problem, the
segment histogram and the estimates) in `presend`. `campaign_can_launch`
reads that summary for the launch.

A large audience is checked on a worker (`request_check`, then the task runs
`run_requested_check`), with progress written after each chunk.
"""

import csv
import logging
import os
from collections import Counter
from collections.abc import Callable, Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from django.conf import settings
from django.db import transaction
from django.utils import timezone
from django_q.tasks import async_task

from campaigns.authoring import (
    audience,
    channel_rules,
    estimates,
    fallback_identities,
    members,
    sms,
    variants,
)
from campaigns.authoring.audience import (
    BLOCKING,
    EXCLUDED,
    FALLBACK,
    MISSING,
    WARNING,
    PresendResult,
)
from campaigns.authoring.read_ahead import read_ahead
from campaigns.compliance import footer, frequency, send_times
from campaigns.models import Campaign
from config.lib import collector
from config.lib.csv_cells import SafeCsvWriter, csv_lines
from contacts.number_visibility import shown_number

logger = logging.getLogger(__name__)

CSV_HEADER = [
    "contact_id",
    "identity",
    "status",
    "reason",
    "encoding",
    "segments",
    "rendered_text",
]


def csv_path(campaign: Campaign) -> Path:
    return Path(settings.MEDIA_ROOT) / "presend" / f"campaign-{campaign.pk}.csv"


def csv_download(campaign: Campaign, *, full_numbers: bool) -> Iterator[str]:
    """The stored pre-send CSV as text lines, identities whole or masked
    (contacts.number_visibility); the file itself keeps them whole."""
    column = CSV_HEADER.index("identity")
    with open(csv_path(campaign), newline="", encoding="utf-8") as handle:
        rows = csv.reader(handle)
        yield from csv_lines(
            row
            if n == 0
            else [
                *row[:column],
                shown_number(row[column], full=full_numbers),
                *row[column + 1 :],
            ]
            for n, row in enumerate(rows)
        )


def audience_size(campaign: Campaign) -> int:
    """The number of distinct audience members (one COUNT query)."""
    return members.audience_size(campaign)


def run_presend_check(
    campaign: Campaign,
    chunk_size: int = audience.CHUNK_SIZE,
    progress: Callable[[int], None] | None = None,
) -> PresendResult:
    """Check every audience member, store the summary on `campaign`, write the CSV.

    `progress`, if given, is called with the number of members checked so far
    after each chunk.
    """
    split = variants.Split.of(campaign)  # an A/B test: who gets which variant
    checker = audience.MemberChecker(campaign, split=split)
    result = checker.result
    times = send_times.SendTimes(campaign)
    when = send_times.SendPlanSummary()
    per_variant: Counter = Counter()
    path = csv_path(campaign)
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_suffix(".csv.part")
    # No cyclic garbage collection during the walk (config.lib.collector).
    with (
        open(partial, "w", newline="", encoding="utf-8") as handle,
        collector.paused(),
    ):
        writer = SafeCsvWriter(handle)
        writer.writerow(CSV_HEADER)
        # The next chunk is read (in a thread) while this one is checked.
        chunks = read_ahead(lambda: audience.member_rows(campaign, chunk_size))
        for rows in chunks:
            checked = [checker.check(row) for row in rows]
            for row, out in zip(rows, checked, strict=True):
                if out[2] == audience.OK:
                    when.add(times.of(row[audience.TIME_ZONE], out[1]))
                    if split is not None:
                        per_variant[split.label(row[audience.ID])] += 1
            writer.writerows(checked)
            del rows, checked
            collector.collect_young()
            if progress is not None:
                progress(result.audience)
    os.replace(partial, path)
    result.csv_path = str(path)
    result.summary = _summary(result, campaign)
    result.summary["fallbacks"] = _fallbacks(result, checker)
    result.summary["footer"] = footer.presend_summary(
        campaign, checker.plan, checker.footer_tally
    )
    result.summary["send_times"] = when.to_json()
    if split is not None:
        # [[label, count]], the held remainder ("") last (a list: jsonb
        # would reorder a dict's keys).
        result.summary["variants"] = [
            [label, n]
            for label, n in sorted(per_variant.items(), key=lambda x: (not x[0], x))
        ]
    # update(), not save(): the check is not an edit (updated_at stays).
    campaign.presend = result.summary
    campaign.presend_at = timezone.now()
    Campaign.objects.filter(pk=campaign.pk).update(
        presend=campaign.presend, presend_at=campaign.presend_at
    )
    return result


def _summary(result: PresendResult, campaign: Campaign) -> dict[str, Any]:
    by_kind: dict[str, dict[str, Any]] = {
        BLOCKING: {},
        EXCLUDED: {},
        WARNING: {},
        FALLBACK: {},
    }
    for key, problem in sorted(result.problems.items()):
        by_kind[problem.kind][key] = {
            "label": problem.label,
            "count": problem.count,
            "examples": problem.examples,
            "missing_parameter": key.startswith(MISSING),
        }
    summary: dict[str, Any] = {
        "audience": result.audience,
        "ok": result.ok,
        "blocking": result.blocking,
        "excluded": result.excluded,
        "excluded_by_reason": {
            p["label"]: p["count"] for p in by_kind[EXCLUDED].values()
        },
        "blocking_problems": by_kind[BLOCKING],
        "excluded_problems": by_kind[EXCLUDED],
        "warnings": by_kind[WARNING],
        "channel": campaign.channel,
        "encodings": dict(result.encodings),
        "ucs2_chars": dict(result.ucs2_chars.most_common(50)),
        "histogram": sms.histogram_lines(result.segments.elements())
        if result.segments
        else [],
        "segments": {str(k): v for k, v in sorted(result.segments.items())},
        "max_parts": result.max_parts,
        "time": estimates.delivery_time_text(result.ok),
        "cost": None,
        "cost_total": None,
    }
    summary["frequency_cap"] = frequency.summary(campaign, by_kind[EXCLUDED])
    if result.segments_by_region:
        cost = estimates.estimate_cost(result.segments_by_region)
        summary["cost"] = cost.text
        summary["cost_total"] = str(cost.total)
    return summary


def _fallbacks(result: PresendResult, checker) -> list[dict[str, Any]]:
    """Per fallback channel, in priority order: how many of the recipients
    can fall back to it, and why the others cannot (they are still sent on
    the channels they have): {"channel", "label", "with", "without",
    "problems": {key: {"label", "count", "examples"}}}."""
    campaign_fallbacks = fallback_identities.summary(checker.fallback, result.ok)
    for entry in campaign_fallbacks:
        prefix = f"{fallback_identities.KEY}{entry['channel']}:"
        entry["problems"] = {
            key.removeprefix(prefix): {
                "label": problem.label,
                "count": problem.count,
                "examples": problem.examples,
            }
            for key, problem in sorted(result.problems.items())
            if problem.kind == FALLBACK and key.startswith(prefix)
        }
    return campaign_fallbacks


def campaign_can_launch(campaign: Campaign) -> tuple[bool, list[str]]:
    """Whether the stored pre-send check allows a launch, and what to fix if not.

    The channels' rules (campaigns.authoring.channel_rules) are read anew,
    so a rule is never bypassed by a check stored before it applied.
    """
    reasons = channel_rules.campaign_problems(campaign)
    summary = campaign.presend
    if not summary or campaign.presend_at is None:
        return False, [*reasons, "Run the pre-send check first."]
    changed = [campaign.updated_at]
    if not campaign.message_snapshot:  # a frozen message ignores template edits
        changed.append(campaign.template.updated_at)
    if any(t is not None and t > campaign.presend_at for t in changed):
        reasons.append(
            "The campaign or its template changed since the last pre-send check: "
            "run it again."
        )
    for key, problem in summary.get("blocking_problems", {}).items():
        names = ", ".join(e["name"] for e in problem["examples"][:5])
        more = " …" if problem["count"] > 5 else ""
        reasons.append(
            f"{problem['count']:,} recipient{'s' if problem['count'] != 1 else ''}: "
            f"{problem['label']} (e.g. {names}{more}) — {_fix(key)}."
        )
    if not summary.get("ok"):
        reasons.append("No recipient can receive this campaign.")
    return not reasons, reasons


def _fix(key: str) -> str:
    """What to do about a blocking problem."""
    if key.startswith(MISSING):
        name = key.removeprefix(MISSING)
        return (
            f"give ${{{name}}} a default on the template, or fill in the "
            "value for these contacts"
        )
    return "add or correct their identity on the campaign's channel"


def check_in_progress(campaign: Campaign, now: datetime | None = None) -> bool:
    """A check is queued or running, and not left behind by a dead worker
    (older than the cluster's task timeout: then it may be asked for again)."""
    now = now or timezone.now()
    stale = now - timedelta(seconds=settings.Q_CLUSTER["timeout"])
    return (
        campaign.presend_state
        in (Campaign.PresendState.QUEUED, Campaign.PresendState.RUNNING)
        and campaign.presend_requested_at is not None
        and campaign.presend_requested_at > stale
    )


def request_check(campaign: Campaign) -> bool:
    """Run the check now when the audience is small, else queue it for a worker.

    Returns True when it ran inline (the result is stored), False when queued.
    Asking again while a check is queued or running starts nothing new (a
    check left behind by a dead worker may be asked for again after the
    cluster's task timeout).
    """
    State = Campaign.PresendState
    now = timezone.now()
    if check_in_progress(campaign, now):
        return False
    total = audience_size(campaign)
    Campaign.objects.filter(pk=campaign.pk).update(
        presend_state=State.QUEUED,
        presend_requested_at=now,
        presend_progress=0,
        presend_total=total,
        presend_error="",
    )
    campaign.refresh_from_db()
    if total <= settings.PRESEND_INLINE_RECIPIENTS:
        run_requested_check(campaign.pk, now.isoformat())
        campaign.refresh_from_db()
        return True
    transaction.on_commit(
        lambda: async_task(
            "campaigns.tasks.presend_check",
            campaign.pk,
            now.isoformat(),
            task_name=f"presend-{campaign.pk}-{now:%Y%m%d%H%M%S%f}",
        )
    )
    return False


def run_requested_check(campaign_id: int, requested_at: str) -> str:
    """Run the check asked for at `requested_at`, unless another run took it.

    The request is claimed with one UPDATE (QUEUED -> RUNNING for this very
    request), so a task delivered twice runs once; progress is written after
    each chunk for the preview page; a failure is recorded, not lost.
    """
    State = Campaign.PresendState
    claimed = Campaign.objects.filter(
        pk=campaign_id,
        presend_state=State.QUEUED,
        presend_requested_at=datetime.fromisoformat(requested_at),
    ).update(presend_state=State.RUNNING)
    if not claimed:
        return f"pre-send check {campaign_id}@{requested_at}: taken or superseded"
    campaign = Campaign.objects.select_related("template").get(pk=campaign_id)

    def progress(checked: int) -> None:
        Campaign.objects.filter(pk=campaign_id).update(presend_progress=checked)

    try:
        result = run_presend_check(campaign, progress=progress)
    except Exception as exc:
        logger.exception("pre-send check of campaign %s failed", campaign_id)
        Campaign.objects.filter(pk=campaign_id).update(
            presend_state=State.FAILED,
            presend_error=f"{type(exc).__name__}: {exc}",
        )
        raise
    Campaign.objects.filter(pk=campaign_id).update(
        presend_state=State.DONE, presend_progress=result.audience
    )
    return (
        f"pre-send check {campaign_id}: {result.ok} ok, {result.blocking} "
        f"blocking, {result.excluded} excluded"
    )
