"""Launching a campaign: the Sender's button.

`launch` checks that the campaign may go (`launch_problems`: a draft, a send
time still ahead, channel properties Sinch accepts, a passing pre-send check
whose audience has not drifted since, and a second Sender's approval when
the campaign is large or costly: campaigns.compliance),
moves it to LAUNCHING (campaigns.transitions, audited), freezes its message
(campaigns.authoring.rendering.freeze_message) and freezes its recipients
(campaigns.dispatch.freeze), inline for a small audience or on a worker. An
error or a vanished worker never leaves it LAUNCHING: the launch is resumed,
or failed with the reason (campaigns.dispatch.launch_recovery).
Batches go to Sinch while the freeze still runs. A scheduled campaign's
waves (campaigns.dispatch.ingress) are planned and stored at the launch: one
that Sinch's queue has no room for in time is not launched.
"""

import uuid
from datetime import datetime

from django.conf import settings
from django.db import transaction
from django.utils import timezone
from django_q.tasks import async_task

from campaigns import transitions
from campaigns.authoring import presend, variants
from campaigns.authoring.rendering import freeze_message
from campaigns.compliance import approval as approvals
from campaigns.compliance import drift
from campaigns.dispatch import ab_split, freeze, ingress, launch_recovery
from campaigns.models import Campaign

Status = Campaign.Status


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
    problems.extend(
        f"Channel properties: {message} Edit the campaign."
        for _, message in campaign.channel_property_problems()
    )
    ok, reasons = presend.campaign_can_launch(campaign)
    if not ok:
        problems.extend(reasons)
    problems.extend(variants.variant_problems(campaign))
    moved = drift.audience_drift(campaign)
    if moved is not None and moved.problem:
        problems.append(moved.problem)
    problems.extend(approvals.approval_problems(campaign))
    if not problems:
        plan = ingress.plan_for(campaign, now)
        if plan is not None and plan.problem:
            problems.append(plan.problem)
    return problems


def launch(campaign: Campaign, user) -> bool:
    """Launch `campaign` as `user`. Raises LaunchError when it may not go.

    Returns True when the recipients were frozen inline (small audience),
    False when the freeze was queued for a worker.
    """
    # An approval that no longer covers the campaign is withdrawn (audited)
    # first, so the refusal below says why.
    approvals.withdraw_stale(campaign, user)
    problems = launch_problems(campaign)
    if problems:
        raise LaunchError(problems)
    summary = campaign.presend or {}
    when = f"at {campaign.send_at:%Y-%m-%d %H:%M} UTC" if campaign.send_at else "now"
    with transaction.atomic():
        try:
            approval = approvals.confirm_for_launch(campaign)
        except approvals.ApprovalError as exc:
            raise LaunchError([str(exc)]) from exc
        approved = approvals.launch_details(approval)
        won = transitions.launch(
            campaign,
            user,
            now=timezone.now(),
            summary=f"Launched campaign {campaign} to send {when}: "
            f"{summary.get('ok', 0):,} recipients at the pre-send check, "
            f"{summary.get('excluded', 0):,} excluded"
            + (
                f"; approved by {approved['approved_by']} at "
                f"{approval.decided_at:%Y-%m-%d %H:%M} UTC"
                if approval and approved
                else ""
            ),
            details={
                "send_at": campaign.send_at.isoformat() if campaign.send_at else None,
                "presend_at": campaign.presend_at.isoformat()
                if campaign.presend_at
                else None,
                "presend_ok": summary.get("ok"),
                "presend_excluded": summary.get("excluded"),
                "approval": approved,
            },
        )
        if not won:
            raise LaunchError(["The campaign has just been launched by someone else."])
        campaign.refresh_from_db()
        plan = ingress.plan_for(campaign)
        if plan is not None and plan.problem:  # taken meanwhile: rolled back
            raise LaunchError([plan.problem])
        if plan is not None:
            campaign.ingress_waves = plan.to_json()
            Campaign.objects.filter(pk=campaign.pk).update(
                ingress_waves=campaign.ingress_waves
            )
        freeze_message(campaign)
        ab_split.record_split(campaign, user)
    if (summary.get("audience") or 0) <= settings.LAUNCH_INLINE_RECIPIENTS:
        try:
            freeze.freeze_recipients(campaign.pk)
        except launch_recovery.LeaseLost:
            return False  # thought dead, resumed on a worker: it goes on there
        except Exception as exc:
            # Never left LAUNCHING: a draft again with the reason, or
            # resumed by the tick (campaigns.dispatch.launch_recovery).
            launch_recovery.interrupted(campaign.pk, exc)
            campaign.refresh_from_db()
            raise LaunchError(
                [campaign.status_reason or launch_recovery.describe(exc)]
            ) from exc
        return True
    transaction.on_commit(
        lambda: async_task(
            "campaigns.tasks.freeze_recipients",
            campaign.pk,
            task_name=f"freeze-{campaign.pk}-{uuid.uuid4().hex[:8]}",
        )
    )
    return False
