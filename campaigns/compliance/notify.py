"""E-mails about launch approvals, through Django's e-mail backend (EMAIL_URL).

Sent by a task once the request or decision is committed, so a slow or
unreachable mail server never holds up the page, and a request that was
rolled back e-mails nobody. Nothing is sent when EMAIL_URL is empty (the
dummy backend) or when nobody concerned has an address; Senders still see
waiting requests on the admin home.
"""

import logging

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.mail import send_mass_mail
from django.db import transaction
from django_q.tasks import async_task

from campaigns.models import LaunchApproval
from config.lib.login_throttling import PERMISSION_BACKEND
from config.lib.wording import counted

logger = logging.getLogger(__name__)
LAUNCH_PERM = "campaigns.launch_campaign"


def on_request(approval: LaunchApproval, link: str) -> None:
    """E-mail the Senders once the request is committed."""
    transaction.on_commit(
        lambda: async_task(
            "campaigns.tasks.send_approval_mail",
            approval.pk,
            "request",
            link,
            task_name=f"approval-mail-{approval.pk}-request",
        )
    )


def on_decision(approval: LaunchApproval) -> None:
    """E-mail the requester once the decision is committed."""
    transaction.on_commit(
        lambda: async_task(
            "campaigns.tasks.send_approval_mail",
            approval.pk,
            "decision",
            "",
            task_name=f"approval-mail-{approval.pk}-decision",
        )
    )


def senders_to_tell(approval: LaunchApproval) -> list[str]:
    """Addresses of the active users who may launch campaigns (the Sender
    role, or the permission given directly), the requester excepted."""
    users = (
        get_user_model()
        .objects.with_perm(
            LAUNCH_PERM,
            is_active=True,
            include_superusers=False,
            backend=PERMISSION_BACKEND,
        )
        .exclude(email="")
        .exclude(pk=approval.requested_by_id)
        .order_by("pk")
    )
    return list(dict.fromkeys(users.values_list("email", flat=True)))


def _request_mail(approval: LaunchApproval, link: str) -> tuple[str, str]:
    campaign = approval.campaign
    requester = approval.requested_by.get_username() if approval.requested_by else "?"
    cost = (
        f", estimated cost {settings.SMS_PRICE_CURRENCY} {approval.cost_total:,.2f}"
        if approval.cost_total is not None
        else ""
    )
    lists = ", ".join(x["name"] for x in approval.lists) or "no lists"
    body = (
        f"{requester} asks a second Sender to approve the launch of the campaign "
        f"“{campaign}”: {counted(approval.audience, 'recipient')} on "
        f"{campaign.get_channel_display()} (lists: {lists}){cost}.\n\n"
        "Look at what would be sent, then approve or reject it:\n"
        f"{link or '(the admin home lists the requests waiting for you)'}\n\n"
        "You cannot approve a launch you requested yourself."
    )
    return f"Launch approval requested: {campaign}", body


def _decision_mail(approval: LaunchApproval) -> tuple[str, str]:
    campaign = approval.campaign
    decider = approval.decided_by.get_username() if approval.decided_by else "?"
    if approval.decision == LaunchApproval.Decision.APPROVED:
        return (
            f"Launch approved: {campaign}",
            f"{decider} approved the launch of “{campaign}” to "
            f"{counted(approval.audience, 'recipient')}. A Sender can launch it now; "
            "any edit of the campaign or its template withdraws the approval.",
        )
    return (
        f"Launch rejected: {campaign}",
        f"{decider} rejected the launch of “{campaign}”:\n\n{approval.reason}\n\n"
        "Change the campaign and request the launch again from its preview page.",
    )


def send_approval_mail(approval_id: int, event: str, link: str = "") -> str:
    """The task: e-mail the Senders about a request (`event` "request") or
    the requester about the decision ("decision"). Failures are logged, not
    raised: the request itself stands and shows on the admin home."""
    approval = (
        LaunchApproval.objects.select_related("campaign", "requested_by", "decided_by")
        .filter(pk=approval_id)
        .first()
    )
    if approval is None:
        return f"approval mail {approval_id}: no such approval"
    if event == "request":
        to = senders_to_tell(approval)
        subject, body = _request_mail(approval, link)
    else:
        requester = approval.requested_by
        to = [requester.email] if requester and requester.email else []
        subject, body = _decision_mail(approval)
    if not to:
        return f"approval mail {approval_id} ({event}): nobody with an address"
    messages = [(subject, body, settings.APPROVAL_EMAIL_FROM, [a]) for a in to]
    try:
        sent = send_mass_mail(messages, fail_silently=False)
    except Exception:  # the mail server, not the request, failed
        logger.exception("approval mail %s (%s) could not be sent", approval_id, event)
        return f"approval mail {approval_id} ({event}): failed"
    return f"approval mail {approval_id} ({event}): {sent} sent"
