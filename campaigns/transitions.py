"""Every change of a campaign's status, in one place.

Each transition below names the states it may start from and where it leads.
A transition is one compare-and-set UPDATE (`status IN sources`): of two
workers or two clicks, exactly one moves the campaign, and the other learns
it from the False it gets back. Transitions a person makes (launch, pause,
resume, cancel) are written to the audit trail in the same transaction (the
cancel's row once its receipt is known); the ones the freeze, dispatch and
receipts make as work goes on show on the campaign page with their reason.

Nothing else in the code base writes `Campaign.status`.

    DRAFT ──launch──> LAUNCHING ──frozen──> SCHEDULED / SUBMITTING
                          ├──nobody to send to──> FAILED
                          └──launch failed──> DRAFT (nothing frozen) / FAILED
    SCHEDULED / SUBMITTING ──pause──> PAUSED ──resume──> SCHEDULED / SUBMITTING
    SCHEDULED / SUBMITTING ──all batches out──> SUBMITTED ──all outcomes──> COMPLETED
    SUBMITTED ──a replacement batch is due──> SCHEDULED / SUBMITTING
    LAUNCHING … SUBMITTED ──cancel──> CANCELLED
"""

from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from campaigns import notifications
from campaigns.models import Campaign, TrackedLink
from campaigns.models.states import ACTIVE, DISPATCHING, FINISHED
from contacts.models import AuditEvent
from contacts.services.audit import record_audit

S = Campaign.Status
# How the audit trail names the system when no person acted.
SYSTEM = "system (automatic)"


@dataclass(frozen=True)
class Transition:
    name: str
    sources: tuple[str, ...]
    targets: tuple[str, ...]


LAUNCH = Transition("launch", (S.DRAFT,), (S.LAUNCHING,))
FROZEN = Transition("recipients frozen", (S.LAUNCHING,), (S.SCHEDULED, S.SUBMITTING))
NOBODY_TO_SEND = Transition("nobody to send to", (S.LAUNCHING,), (S.FAILED,))
LAUNCH_FAILED = Transition("launch failed", (S.LAUNCHING,), (S.DRAFT, S.FAILED))
PAUSE = Transition("pause", DISPATCHING, (S.PAUSED,))
RESUME = Transition("resume", (S.PAUSED,), (S.SCHEDULED, S.SUBMITTING))
ALL_SUBMITTED = Transition("all batches out", DISPATCHING, (S.SUBMITTED,))
COMPLETE = Transition("all outcomes known", (S.SUBMITTED,), (S.COMPLETED,))
CANCEL = Transition("cancel", ACTIVE, (S.CANCELLED,))
REPLACEMENT_DUE = Transition(
    "a replacement batch is due", (S.SUBMITTED,), (S.SCHEDULED, S.SUBMITTING)
)

TRANSITIONS = (
    LAUNCH,
    FROZEN,
    NOBODY_TO_SEND,
    LAUNCH_FAILED,
    PAUSE,
    RESUME,
    ALL_SUBMITTED,
    COMPLETE,
    CANCEL,
    REPLACEMENT_DUE,
)


def allowed(campaign: Campaign) -> dict[str, bool]:
    """What the campaign's status allows, by name, for pages and buttons (so
    that no template spells statuses out)."""
    status = campaign.status
    return {
        "launch": status in LAUNCH.sources,
        "pause": status in PAUSE.sources,
        "resume": status in RESUME.sources,
        "cancel": status in CANCEL.sources,
        "retry_failed": status in FINISHED,
        "launched": status not in LAUNCH.sources,
        "freezing": status in FROZEN.sources,
        "awaiting_receipts": status in COMPLETE.sources,
    }


def _move(campaign_id: int, transition: Transition, target: str, **fields) -> bool:
    """Compare-and-set: move the campaign if it is in one of the sources."""
    if target not in transition.targets:
        raise ValueError(f"{transition.name} does not lead to {target}")
    moved = bool(
        Campaign.objects.filter(pk=campaign_id, status__in=transition.sources).update(
            status=target, **fields
        )
    )
    if moved and target in FINISHED:
        # Its short links answer SHORT_LINK_TTL_DAYS more (tracked links).
        until = timezone.now() + timedelta(days=settings.SHORT_LINK_TTL_DAYS)
        TrackedLink.objects.filter(
            campaign_id=campaign_id, expires_at__isnull=True
        ).update(expires_at=until)
    return moved


def audit(campaign: Campaign, user, action: str, summary: str, **details) -> AuditEvent:
    """One audit row about `campaign`; a None `user` is the system."""
    return record_audit(
        actor=user,
        label=None if user else SYSTEM,
        action=action,
        target_type="campaign",
        target_id=campaign.pk,
        summary=summary,
        details=details,
    )


def _running_status(campaign: Campaign) -> str:
    """Where a launched campaign goes while its batches are submitted."""
    return S.SCHEDULED if campaign.send_at else S.SUBMITTING


def launch(
    campaign: Campaign, user, *, now: datetime, summary: str, details: dict
) -> bool:
    """DRAFT -> LAUNCHING, audited. False if it was launched meanwhile
    (a double click, a second tab): exactly one launch wins."""
    with transaction.atomic():
        won = _move(
            campaign.pk,
            LAUNCH,
            S.LAUNCHING,
            launched_at=now,
            launched_by=user,
            status_reason="",
            launch_lease_at=now,
            launch_owner="",
            launch_resumes=0,
        )
        if won:
            audit(campaign, user, AuditEvent.Action.LAUNCH, summary, **details)
    return won


def recipients_frozen(campaign: Campaign) -> bool:
    """LAUNCHING -> SCHEDULED (send time set) or SUBMITTING (now). False if the
    campaign left LAUNCHING meanwhile (cancelled while freezing)."""
    return _move(campaign.pk, FROZEN, _running_status(campaign))


def nobody_to_send(campaign: Campaign, reason: str) -> bool:
    """LAUNCHING -> FAILED: the freeze found nobody who may receive it (the
    reason shows on the campaign page; the launch itself is audited)."""
    failed = _move(campaign.pk, NOBODY_TO_SEND, S.FAILED, status_reason=reason)
    if failed:
        notifications.campaign_failed(campaign.pk)
    return failed


def launch_failed(campaign: Campaign, reason: str, *, frozen: bool) -> bool:
    """LAUNCHING -> DRAFT when nothing was frozen (the user may launch it
    again), or FAILED when part of it was; the reason shows on the campaign
    page and in the audit trail."""
    target = S.FAILED if frozen else S.DRAFT
    with transaction.atomic():
        moved = _move(
            campaign.pk,
            LAUNCH_FAILED,
            target,
            status_reason=reason,
            launch_owner="",
            launch_lease_at=None,
        )
        if moved:
            audit(campaign, None, AuditEvent.Action.LAUNCH, f"{campaign}: {reason}")
    if moved and frozen:
        notifications.campaign_failed(campaign.pk)
    return moved


def pause(campaign: Campaign, user, reason: str) -> bool:
    """SCHEDULED/SUBMITTING -> PAUSED with the reason, audited; False if it
    was not dispatching. A pause without a user (dispatch's error rate) is
    notified to the campaign's people and the Senders."""
    with transaction.atomic():
        paused = _move(campaign.pk, PAUSE, S.PAUSED, status_reason=reason)
        if paused:
            row = audit(
                campaign, user, AuditEvent.Action.PAUSE, f"{campaign}: {reason}"
            )
            if user is None:
                notifications.campaign_auto_paused(campaign.pk, reason, row.pk)
    return paused


def resume(campaign: Campaign, user) -> bool:
    """PAUSED -> SCHEDULED/SUBMITTING, audited; False if it was not paused.
    Runs in the caller's transaction when there is one (the caller restarts
    dispatch on commit)."""
    with transaction.atomic():
        resumed = _move(
            campaign.pk, RESUME, _running_status(campaign), status_reason=""
        )
        if resumed:
            audit(campaign, user, AuditEvent.Action.RESUME, f"Resumed {campaign}")
    return resumed


def cancel(campaign: Campaign, user) -> bool:
    """Any launched, unfinished state -> CANCELLED. The audit row, which
    carries the cancellation receipt, is written once the receipt is known
    (campaigns.dispatch.control.cancel)."""
    return _move(
        campaign.pk, CANCEL, S.CANCELLED, status_reason=f"Cancelled by {user}."
    )


def all_submitted(campaign_id: int) -> bool:
    """SCHEDULED/SUBMITTING -> SUBMITTED: no batch waits for an outcome."""
    return _move(campaign_id, ALL_SUBMITTED, S.SUBMITTED)


def complete(campaign_id: int) -> bool:
    """SUBMITTED -> COMPLETED: every recipient has a final outcome; the
    campaign's creator and launcher are notified."""
    completed = _move(campaign_id, COMPLETE, S.COMPLETED)
    if completed:
        notifications.campaign_finished(campaign_id)
    return completed


def replacement_due(campaign: Campaign) -> bool:
    """SUBMITTED -> SCHEDULED/SUBMITTING: Sinch confirmed the cancel of a batch
    that lost people after the launch, and its replacement is to be submitted
    (campaigns.dispatch.replacement). False if the campaign was not SUBMITTED
    (still dispatching: its loops submit the replacement anyway)."""
    return _move(campaign.pk, REPLACEMENT_DUE, _running_status(campaign))
