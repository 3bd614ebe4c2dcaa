"""Launching a campaign: freeze its message and its recipients, split into batches.

`launch` (the Sender's button) checks that the campaign may go, freezes the
message (campaigns.authoring.rendering.freeze_message), records the launch and freezes
the recipients, inline for a small audience or on a worker. `freeze_recipients`
walks the audience as the pre-send check does, re-checking consent and every
value now, and writes one Recipient row per member: PENDING in a batch of at
most wire.MAX_RECIPIENTS, or EXCLUDED with the reason. Then dispatch starts
(campaigns.dispatch).

A freeze interrupted by a dead worker is started again from scratch (what it
wrote is removed first); nothing is submitted before the freeze has finished,
because batches are only claimed once the campaign has left LAUNCHING.
"""

import json
import logging
import uuid
from datetime import UTC, datetime, timedelta
from json.encoder import encode_basestring

from django.conf import settings
from django.db import transaction
from django.db.models import Max
from django.utils import timezone
from django_q.tasks import async_task

from campaigns import counters
from campaigns.authoring import presend
from campaigns.authoring.rendering import freeze_message
from campaigns.models import Batch, Campaign, CampaignCount, Recipient
from config.lib.bulk import TableWriter
from contacts.audit import record_audit
from contacts.models import AuditEvent
from sinch import wire

logger = logging.getLogger(__name__)

Status = Campaign.Status
# Sinch schedules at most this far ahead; a margin covers its rounding up to
# the next 5 minutes and clock differences. Further out, batches wait here.
SCHEDULE_HORIZON = wire.SEND_AFTER_MAX_AHEAD - timedelta(minutes=15)
LAUNCHED = (
    Status.LAUNCHING,
    Status.SCHEDULED,
    Status.SUBMITTING,
    Status.PAUSED,
    Status.SUBMITTED,
)


class LaunchError(ValueError):
    """The campaign cannot be launched; `problems` says what to do."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__(" ".join(problems))
        self.problems = problems


def launch_problems(campaign: Campaign, now: datetime | None = None) -> list[str]:
    """What stands between the campaign and a launch ([] when nothing)."""
    now = now or timezone.now()
    if campaign.status != Status.DRAFT:
        return [
            f"The campaign is {campaign.get_status_display().lower()}, not a draft."
        ]
    problems = []
    if campaign.send_at is not None and campaign.send_at <= now:
        problems.append(
            "The send time has passed: edit the campaign and choose a new one, "
            'or "when launched".'
        )
    ok, reasons = presend.campaign_can_launch(campaign)
    if not ok:
        problems.extend(reasons)
    return problems


def hold_until(campaign: Campaign) -> datetime | None:
    """Until when the batches wait here: they go to Sinch once the send time
    is within its scheduling horizon. None: submit now."""
    if campaign.send_at is None:
        return None
    return campaign.send_at - SCHEDULE_HORIZON


def launch(campaign: Campaign, user) -> bool:
    """Launch `campaign` as `user`. Raises LaunchError when it may not go.

    Returns True when the recipients were frozen inline (small audience),
    False when the freeze was queued for a worker.
    """
    problems = launch_problems(campaign)
    if problems:
        raise LaunchError(problems)
    now = timezone.now()
    with transaction.atomic():
        # One launch, even on a double click or a second tab.
        won = Campaign.objects.filter(pk=campaign.pk, status=Status.DRAFT).update(
            status=Status.LAUNCHING, launched_at=now, launched_by=user
        )
        if not won:
            raise LaunchError(["The campaign has just been launched by someone else."])
        campaign.refresh_from_db()
        freeze_message(campaign)
        summary = campaign.presend or {}
        when = (
            f"at {campaign.send_at:%Y-%m-%d %H:%M} UTC" if campaign.send_at else "now"
        )
        record_audit(
            actor=user,
            action=AuditEvent.Action.LAUNCH,
            target_type="campaign",
            target_id=campaign.pk,
            summary=f"Launched campaign {campaign} to send {when}: "
            f"{summary.get('ok', 0):,} recipients at the pre-send check, "
            f"{summary.get('excluded', 0):,} excluded",
            details={
                "send_at": campaign.send_at.isoformat() if campaign.send_at else None,
                "presend_at": campaign.presend_at.isoformat()
                if campaign.presend_at
                else None,
                "presend_ok": summary.get("ok"),
                "presend_excluded": summary.get("excluded"),
            },
        )
    if (summary.get("audience") or 0) <= settings.LAUNCH_INLINE_RECIPIENTS:
        freeze_recipients(campaign.pk)
        return True
    transaction.on_commit(
        lambda: async_task(
            "campaigns.tasks.freeze_recipients",
            campaign.pk,
            task_name=f"freeze-{campaign.pk}-{uuid.uuid4().hex[:8]}",
        )
    )
    return False


def freeze_recipients(campaign_id: int, chunk_size: int = presend.CHUNK_SIZE) -> str:
    """Write the campaign's recipients and batches, and dispatch as they come.

    Members are frozen a chunk per transaction. A batch is created FILLING
    (not claimable: `not_before` is FILLING) and sealed when it is full or the
    freeze ends, in the transaction that wrote its last recipient; the drain
    loops, started after the first sealed batch, submit sealed batches while
    the freeze goes on. A freeze a dead worker left half done resumes: sealed
    batches and what came before them stay (they may be at Sinch already),
    the unsealed rest is removed and frozen again.
    """
    from campaigns.dispatch import drain  # dispatch imports this module

    campaign = Campaign.objects.select_related("template").get(pk=campaign_id)
    if campaign.status != Status.LAUNCHING:
        return f"campaign {campaign_id} is {campaign.status}: nothing to freeze"
    checker = presend.MemberChecker(campaign, render=False)
    resume_after, sequence = _resume_point(campaign, checker)

    now = timezone.now()
    writer = TableWriter(
        Recipient,
        [
            "batch_id",
            "index",
            "contact_id",
            "identity",
            "parameters",
            "status",
            "reason",
        ],
        {"campaign_id": campaign.pk, "is_test": False},
        now=now,
    )
    not_before = hold_until(campaign)
    held = not_before is not None and not_before > now
    batch: Batch | None = None
    size = 0
    dispatching = False
    pending, excluded = Recipient.Status.PENDING, Recipient.Status.EXCLUDED
    member_rows = presend._member_rows(
        campaign, checker.consent_column, chunk_size, start_after=resume_after
    )
    for rows in member_rows:
        out = []
        sealed = []
        with transaction.atomic():
            for row in rows:
                contact_id, identity, status, reason = checker.check(row)[:4]
                if status != presend.OK:
                    out.append(
                        (
                            None,
                            None,
                            contact_id,
                            identity or "",
                            "{}",
                            excluded,
                            _reason(status, reason),
                        )
                    )
                    continue
                if batch is None or size == wire.MAX_RECIPIENTS:
                    if batch is not None:
                        sealed.append((batch.pk, size))
                    sequence += 1
                    batch = Batch.objects.create(
                        campaign=campaign,
                        sequence=sequence,
                        metadata_key=f"c{campaign.pk}-b{sequence}-{uuid.uuid4().hex[:12]}",
                        not_before=FILLING,
                    )
                    size = 0
                out.append(
                    (
                        batch.pk,
                        size,
                        contact_id,
                        identity,
                        _values_json(checker.values),
                        pending,
                        "",
                    )
                )
                size += 1
            writer.insert(out)
            ok = sum(1 for r in out if r[5] == pending)
            counters.add(campaign.pk, {pending: ok, excluded: len(out) - ok})
            _seal(sealed, not_before)
        if sealed and not held and not dispatching:
            drain.start(campaign.pk)  # submits sealed batches meanwhile
            dispatching = True
    if batch is not None:
        _seal([(batch.pk, size)], not_before)

    result = checker.result
    if not Batch.objects.filter(campaign=campaign, is_test=False).exists():
        Campaign.objects.filter(pk=campaign.pk, status=Status.LAUNCHING).update(
            status=Status.FAILED,
            status_reason="Nobody could receive the campaign when its recipients "
            f"were frozen: {result.excluded:,} excluded, {result.blocking:,} "
            "with a problem. See the excluded recipients.",
        )
        return f"campaign {campaign_id}: nobody to send to"
    next_status = Status.SCHEDULED if campaign.send_at else Status.SUBMITTING
    moved = Campaign.objects.filter(pk=campaign.pk, status=Status.LAUNCHING).update(
        status=next_status
    )
    if not moved:  # cancelled while freezing
        campaign.refresh_from_db()
        if campaign.status == Status.CANCELLED:
            from campaigns.dispatch import control

            control.cancel_unsubmitted(campaign)
            control.store_receipt(campaign)
        return f"campaign {campaign_id}: {campaign.status} while freezing"
    if held:
        drain.schedule_release(campaign.pk, not_before)
    else:
        drain.start(campaign.pk)
    return (
        f"campaign {campaign_id}: {result.ok:,} recipients in {sequence:,} "
        f"batches, {result.excluded + result.blocking:,} excluded"
    )


# `not_before` of a batch still being filled by the freeze: never claimable.
FILLING = datetime(9999, 12, 31, tzinfo=UTC)


def _seal(batches: list[tuple[int, int]], not_before: datetime | None) -> None:
    """Make complete batches claimable (or held until `not_before`)."""
    for pk, size in batches:
        Batch.objects.filter(pk=pk).update(size=size, not_before=not_before)


def _resume_point(campaign: Campaign, checker) -> tuple[int, int]:
    """Clear what an interrupted freeze left unsealed; where to go on from.

    Returns (the last contact id already frozen for good, the last batch
    sequence). Sealed batches and every recipient up to their last contact
    stay; the identities they hold count as used for the duplicate rule.
    """
    batches = Batch.objects.filter(campaign=campaign, is_test=False)
    unsealed = batches.filter(not_before=FILLING)
    sealed = batches.exclude(not_before=FILLING)
    last_contact = (
        Recipient.objects.filter(batch__in=sealed).aggregate(n=Max("contact_id"))["n"]
        or 0
    )
    with transaction.atomic():
        Recipient.objects.filter(
            campaign=campaign, is_test=False, contact_id__gt=last_contact
        ).delete()
        Recipient.objects.filter(batch__in=unsealed).delete()
        unsealed.delete()
        if last_contact:
            counters.recount(campaign.pk)
        else:
            CampaignCount.objects.filter(campaign=campaign).delete()
    if last_contact:
        checker.remember(
            Recipient.objects.filter(campaign=campaign, is_test=False)
            .exclude(status=Recipient.Status.EXCLUDED)
            .values_list("identity", flat=True)
            .iterator(chunk_size=10_000)
        )
    sequence = batches.aggregate(n=Max("sequence"))["n"] or 0
    return last_contact, sequence


def _values_json(values: dict[str, str]) -> str:
    """json.dumps(values, ensure_ascii=False), ten times faster for the usual
    all-string values (a million of them are written by a large launch)."""
    try:
        return (
            "{"
            + ", ".join(
                [
                    encode_basestring(key) + ": " + encode_basestring(value)
                    for key, value in values.items()
                ]
            )
            + "}"
        )
    except TypeError:  # not a string: the general encoder
        return json.dumps(values, ensure_ascii=False)


def _reason(status: str, reason: str) -> str:
    """An exclusion's reason at the freeze (a blocking problem excludes too)."""
    if status == presend.BLOCKING:
        reason = f"{reason} (found at launch)"
    return reason[:255]
