"""Four-eyes approval: a large launch needs a second Sender's yes.

A campaign whose pre-send check found at least APPROVAL_MIN_RECIPIENTS
recipients, or whose estimated cost is at least APPROVAL_MIN_COST, is launched
only with an approval (campaigns.dispatch.launching asks `approval_problems`
and `confirm_for_launch`). Anyone who may edit the campaign requests it
(`request_launch`) once the pre-send check passes; a user who may launch
campaigns (the Sender role), other than the requester, approves or rejects it
(`decide`).

An approval covers what the approver saw: the fingerprint of the message and
the audience definition (campaigns.compliance.fingerprint), and the number of
recipients, within LAUNCH_AUDIENCE_TOLERANCE. An edit of the campaign or its
template withdraws it at once (`withdraw`, `withdraw_for_template`, called by
the admin); any other change is caught at the launch (`withdraw_stale`).
Every request, decision and withdrawal is audited (AuditEvent.Action.APPROVAL).
"""

from dataclasses import dataclass
from decimal import Decimal

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from campaigns import transitions
from campaigns.authoring import presend
from campaigns.compliance import drift, notify
from campaigns.compliance.fingerprint import fingerprint
from campaigns.models import Campaign, LaunchApproval, MessageTemplate
from config.lib.wording import counted
from contacts.models import AuditEvent

LAUNCH_PERM = "campaigns.launch_campaign"
ASK = "request it from the preview page"
Decision = LaunchApproval.Decision
APPROVAL = AuditEvent.Action.APPROVAL


class ApprovalError(ValueError):
    """A request or decision that may not be made; the message says why."""


def _who(user) -> str:
    return user.get_username() if user is not None else "someone since removed"


def _at(instant) -> str:
    return f"{timezone.localtime(instant):%Y-%m-%d %H:%M %Z}"


def _cost(summary: dict) -> Decimal | None:
    total = summary.get("cost_total")
    return Decimal(total) if total not in (None, "") else None


def approval_needed(campaign: Campaign) -> str | None:
    """Why the campaign needs approval, in words ("10,000 recipients or
    more"); None when it does not (or has no pre-send check yet)."""
    summary = campaign.presend or {}
    ok = int(summary.get("ok") or 0)
    reasons = []
    minimum = settings.APPROVAL_MIN_RECIPIENTS
    if minimum and ok >= minimum:
        reasons.append(f"{minimum:,} recipients or more: this one has {ok:,}")
    limit, cost = settings.APPROVAL_MIN_COST, _cost(summary)
    if limit is not None and cost is not None and cost >= limit:
        currency = settings.SMS_PRICE_CURRENCY
        reasons.append(
            f"an estimated cost of {currency} {limit:,.2f} or more: "
            f"this one costs {currency} {cost:,.2f}"
        )
    return "; ".join(reasons) or None


def open_approval(campaign: Campaign) -> LaunchApproval | None:
    """The request waiting for a decision, or the approval in force."""
    return (
        campaign.approvals.filter(
            withdrawn_at__isnull=True,
            decision__in=[Decision.PENDING, Decision.APPROVED],
        )
        .select_related("requested_by", "decided_by")
        .first()
    )


def latest_approval(campaign: Campaign) -> LaunchApproval | None:
    return campaign.approvals.select_related("requested_by", "decided_by").first()


def _stale_reason(campaign: Campaign, approval: LaunchApproval) -> str | None:
    """Why `approval` no longer covers the campaign; None while it does."""
    if fingerprint(campaign) != approval.fingerprint:
        return (
            "the campaign changed after the "
            f"{'approval' if approval.is_valid else 'request'} (its message, "
            "template, channels, send time or audience lists)"
        )
    ok = int((campaign.presend or {}).get("ok") or 0)
    if approval.is_valid and drift.tolerance().exceeded(approval.audience, ok):
        return (
            f"it covered {counted(approval.audience, 'recipient')} and the pre-send "
            f"check now finds {ok:,} (more than {drift.tolerance()} apart)"
        )
    return None


def approval_problems(campaign: Campaign) -> list[str]:
    """What the approval rule says against a launch now ([] when nothing).
    Reads only: a stale approval is withdrawn by `withdraw_stale`."""
    needed = approval_needed(campaign)
    if needed is None:
        return []
    return _problems(campaign, needed, latest_approval(campaign))


def _problems(
    campaign: Campaign, needed: str, latest: LaunchApproval | None
) -> list[str]:
    # At most one request is open, and none is made after it while it is:
    # the open one, if any, is the latest.
    approval = latest if latest is not None and latest.is_open else None
    if approval is None:
        note = ""
        if latest is not None and latest.withdrawn_at is not None:
            note = f" The last approval was withdrawn: {latest.withdrawn_reason}."
        elif latest is not None and latest.decision == Decision.REJECTED:
            note = (
                f" {_who(latest.decided_by)} rejected the last request: {latest.reason}"
            )
        return [
            f"This campaign needs approval by a second Sender ({needed}): {ASK}.{note}"
        ]
    if approval.decision == Decision.PENDING:
        return [
            f"Waiting for approval by a second Sender: requested by "
            f"{_who(approval.requested_by)} at {_at(approval.requested_at)}."
        ]
    stale = _stale_reason(campaign, approval)
    if stale:
        return [
            f"The approval by {_who(approval.decided_by)} no longer holds: "
            f"{stale}. The campaign needs approval by a second Sender again: {ASK}."
        ]
    return []


def _audit(campaign, user, summary: str, approval: LaunchApproval, **details):
    transitions.audit(
        campaign,
        user,
        APPROVAL,
        summary,
        approval=approval.pk,
        fingerprint=approval.fingerprint,
        **details,
    )


def _withdraw(approval: LaunchApproval, user, reason: str) -> None:
    now = timezone.now()
    what = "approval" if approval.is_valid else "request"
    updated = LaunchApproval.objects.filter(
        pk=approval.pk, withdrawn_at__isnull=True
    ).update(withdrawn_at=now, withdrawn_reason=reason)
    if updated:
        approval.withdrawn_at, approval.withdrawn_reason = now, reason
        _audit(
            approval.campaign,
            user,
            f"Withdrew the launch {what} of campaign {approval.campaign}: {reason}",
            approval,
            state=approval.decision,
            reason=reason,
        )


def withdraw(campaign: Campaign, user, reason: str) -> LaunchApproval | None:
    """Withdraw the campaign's open request or approval (audited); returns it,
    or None when there was none. Call after any edit of the campaign."""
    with transaction.atomic():
        approval = open_approval(campaign)
        if approval is not None:
            _withdraw(approval, user, reason)
    return approval


def withdraw_for_template(template: MessageTemplate, user, reason: str) -> int:
    """Withdraw the open requests and approvals of the drafts that use
    `template` (their message changed); returns how many."""
    campaigns = Campaign.objects.filter(
        template=template,
        status=Campaign.Status.DRAFT,
        approvals__withdrawn_at__isnull=True,
        approvals__decision__in=[Decision.PENDING, Decision.APPROVED],
    ).distinct()
    return sum(withdraw(c, user, reason) is not None for c in campaigns)


def withdraw_stale(campaign: Campaign, user) -> LaunchApproval | None:
    """Withdraw the open request or approval if it no longer covers the
    campaign (fingerprint, or the number of recipients beyond the tolerance);
    returns it when withdrawn. Run before a launch and before a decision."""
    approval = open_approval(campaign)
    if approval is None:
        return None
    reason = _stale_reason(campaign, approval)
    if reason is None:
        return None
    _withdraw(approval, user, reason)
    return approval


def request_launch(campaign: Campaign, user, *, link: str = "") -> LaunchApproval:
    """Ask a second Sender to approve the launch; audited, Senders e-mailed
    (with `link` to the approval page) once committed.

    Raises ApprovalError when the campaign is not a draft, its pre-send check
    does not pass, its audience drifted since the check, or a request is
    already open.
    """
    if campaign.status != Campaign.Status.DRAFT:
        raise ApprovalError(
            f"The campaign is {campaign.get_status_display().lower()}, not a "
            "draft: there is no launch to ask for."
        )
    ok, reasons = presend.campaign_can_launch(campaign)
    if not ok:
        raise ApprovalError(
            "A launch can be requested once the pre-send check passes. To fix: "
            + " ".join(reasons)
        )
    moved = drift.audience_drift(campaign)
    if moved is not None and moved.problem:
        raise ApprovalError(moved.problem)
    withdraw_stale(campaign, user)
    with transaction.atomic():
        # The campaign row serialises requests: two clicks make one request.
        Campaign.objects.select_for_update().filter(pk=campaign.pk).first()
        current = open_approval(campaign)
        if current is not None:
            raise ApprovalError(_already_open(current))
        summary = campaign.presend or {}
        approval = LaunchApproval.objects.create(
            campaign=campaign,
            requested_by=user,
            requested_at=timezone.now(),
            fingerprint=fingerprint(campaign),
            audience=int(summary.get("ok") or 0),
            cost_total=_cost(summary),
            lists=[{"id": x.pk, "name": x.name} for x in campaign.lists.order_by("pk")],
        )
        _audit(
            campaign,
            user,
            f"Requested launch approval of campaign {campaign}: "
            f"{counted(approval.audience, 'recipient')}"
            + (f", {summary['cost']}" if summary.get("cost") else ""),
            approval,
            audience=approval.audience,
            lists=approval.lists,
            needed=approval_needed(campaign),
        )
        notify.on_request(approval, link)
    return approval


def _already_open(approval: LaunchApproval) -> str:
    if approval.decision == Decision.APPROVED:
        return (
            f"{_who(approval.decided_by)} already approved this launch at "
            f"{_at(approval.decided_at)}: a Sender can launch it."
        )
    return (
        f"{_who(approval.requested_by)} already requested this launch at "
        f"{_at(approval.requested_at)}; it waits for a Sender's decision."
    )


def decide(
    campaign: Campaign,
    user,
    *,
    approve: bool,
    approval_id: int | None = None,
    reason: str = "",
) -> LaunchApproval:
    """Approve or reject the campaign's waiting request as `user`, audited.

    `approval_id` is the request the deciding page showed: a newer one is not
    decided unseen. Raises ApprovalError when `user` may not launch
    campaigns, requested the launch, or the request is gone or out of date
    (then it is withdrawn), and when a rejection has no reason.
    """
    if not user.has_perm(LAUNCH_PERM):
        raise ApprovalError(
            "Only a Sender (who may launch campaigns) can approve or reject a launch."
        )
    reason = reason.strip()
    if not approve and not reason:
        raise ApprovalError("Say why you reject the launch: the requester reads it.")
    withdrawn = withdraw_stale(campaign, user)
    if withdrawn is not None:
        raise ApprovalError(
            f"The request was withdrawn: {withdrawn.withdrawn_reason}. "
            "The campaign needs a new request from the preview page."
        )
    with transaction.atomic():
        approval = (
            LaunchApproval.objects.select_for_update()
            .filter(campaign=campaign, withdrawn_at__isnull=True)
            .filter(decision=Decision.PENDING)
            .first()
        )
        if approval is None:
            raise ApprovalError(
                "No launch request of this campaign waits for a decision."
            )
        if approval_id is not None and approval.pk != approval_id:
            raise ApprovalError(
                "This request was replaced by a newer one: look at it again."
            )
        if approval.requested_by_id == user.pk:
            raise ApprovalError(
                "You requested this launch, so you cannot approve or reject it: "
                "a second Sender must."
            )
        approval.decision = Decision.APPROVED if approve else Decision.REJECTED
        approval.decided_by, approval.decided_at = user, timezone.now()
        approval.reason = "" if approve else reason
        approval.save(update_fields=["decision", "decided_by", "decided_at", "reason"])
        verb = "Approved" if approve else "Rejected"
        _audit(
            campaign,
            user,
            f"{verb} the launch of campaign {campaign} requested by "
            f"{_who(approval.requested_by)} ({counted(approval.audience, 'recipient')})"
            + ("" if approve else f": {reason}"),
            approval,
            decision=approval.decision,
            requested_by=_who(approval.requested_by),
            audience=approval.audience,
            reason=approval.reason,
        )
        notify.on_decision(approval)
    return approval


def confirm_for_launch(campaign: Campaign) -> LaunchApproval | None:
    """Inside the launch's transaction: the approval in force, locked, or
    None when none is needed. Raises ApprovalError when one is needed and
    none holds (withdrawn by a colleague since the launch page was read)."""
    if approval_needed(campaign) is None:
        return None
    approval = (
        # of=self: PostgreSQL locks no nullable side of an outer join (the users).
        LaunchApproval.objects.select_for_update(of=("self",))
        .filter(
            campaign=campaign, withdrawn_at__isnull=True, decision=Decision.APPROVED
        )
        .select_related("requested_by", "decided_by")
        .first()
    )
    if approval is None or _stale_reason(campaign, approval):
        raise ApprovalError(" ".join(approval_problems(campaign)))
    return approval


def launch_details(approval: LaunchApproval | None) -> dict | None:
    """What the launch's audit row says about its approval."""
    if approval is None:
        return None
    return {
        "id": approval.pk,
        "requested_by": _who(approval.requested_by),
        "requested_at": approval.requested_at.isoformat(),
        "approved_by": _who(approval.decided_by),
        "approved_at": approval.decided_at.isoformat(),
        "fingerprint": approval.fingerprint,
        "audience": approval.audience,
    }


@dataclass(frozen=True)
class Status:
    """The approval rule's state for a page."""

    needed: str | None  # why approval is needed, None when it is not
    open: LaunchApproval | None  # waiting, or approved and not withdrawn
    latest: LaunchApproval | None  # the last request, whatever became of it
    problems: list[str]  # what stands against a launch (approval_problems)

    @property
    def approved(self) -> bool:
        return self.needed is not None and not self.problems


def status(campaign: Campaign) -> Status:
    """One query for the requests; the fingerprint's when one is approved."""
    needed = approval_needed(campaign)
    latest = latest_approval(campaign)
    return Status(
        needed=needed,
        open=latest if latest is not None and latest.is_open else None,
        latest=latest,
        problems=_problems(campaign, needed, latest) if needed else [],
    )
