"""Exempting a marketing campaign from the frequency cap, and withdrawing it.

Only a user with `campaigns.exempt_frequency_cap` (the Compliance role,
contacts.roles) may do either, with a reason for the exemption, and only
while the campaign is a draft: its recipients are frozen at the launch with
the cap applied or not. Both are audited (AuditEvent.Action.EXEMPTION: who,
when, the reason). Either changes the campaign, so the stored pre-send check
no longer describes it and must be run again before the launch. An exempt
campaign's messages still count for the cap of the campaigns after it
(campaigns.compliance.frequency).
"""

from django.core.exceptions import PermissionDenied
from django.db import transaction
from django.utils import timezone

from campaigns import transitions
from campaigns.models import Campaign
from contacts.models import AuditEvent, Purpose

PERMISSION = "campaigns.exempt_frequency_cap"
REASON_MAX = 1000


class ExemptionRefused(ValueError):
    """The exemption cannot be set or withdrawn; the message says why."""


def can_exempt(user) -> bool:
    return user.has_perm(PERMISSION)


def exempt_from_cap(campaign: Campaign, user, reason: str) -> Campaign:
    """Exempt the draft `campaign` from the frequency cap, audited.

    Raises PermissionDenied without the permission, ExemptionRefused when
    the reason is empty or too long, the campaign is not a marketing draft,
    or it is exempt already. Runs under the campaign's row lock.
    """
    if not can_exempt(user):
        raise PermissionDenied
    reason = (reason or "").strip()
    if not reason:
        raise ExemptionRefused(
            "Give the reason for the exemption (e.g. the legal basis or who "
            "asked for it): it is kept in the audit trail."
        )
    if len(reason) > REASON_MAX:
        raise ExemptionRefused(
            f"The reason is {len(reason):,} characters long; keep it under "
            f"{REASON_MAX:,}."
        )
    with transaction.atomic():
        locked = _locked_draft(campaign)
        if locked.cap_exempt_at is not None:
            raise ExemptionRefused(
                f"The campaign is already exempt from the frequency cap (since "
                f"{locked.cap_exempt_at:%Y-%m-%d %H:%M} UTC, by "
                f"{locked.cap_exempt_by or 'a deleted user'})."
            )
        locked.cap_exempt_at = timezone.now()
        locked.cap_exempt_by = user
        locked.cap_exempt_reason = reason
        _save(locked)
        transitions.audit(
            locked,
            user,
            AuditEvent.Action.EXEMPTION,
            f"Exempted campaign {locked} from the frequency cap: {reason}",
            guard="frequency_cap",
            exempt=True,
            reason=reason,
        )
    return locked


def withdraw_exemption(campaign: Campaign, user, note: str = "") -> Campaign:
    """Withdraw the draft `campaign`'s exemption (the cap applies again),
    audited with the optional `note`. Same refusals as `exempt_from_cap`."""
    if not can_exempt(user):
        raise PermissionDenied
    note = (note or "").strip()[:REASON_MAX]
    with transaction.atomic():
        locked = _locked_draft(campaign, marketing_only=False)
        if locked.cap_exempt_at is None:
            raise ExemptionRefused("The campaign is not exempt from the frequency cap.")
        previous = locked.cap_exempt_reason
        locked.cap_exempt_at = None
        locked.cap_exempt_by = None
        locked.cap_exempt_reason = ""
        _save(locked)
        transitions.audit(
            locked,
            user,
            AuditEvent.Action.EXEMPTION,
            f"Withdrew the frequency-cap exemption of campaign {locked}"
            + (f": {note}" if note else ""),
            guard="frequency_cap",
            exempt=False,
            reason=note,
            previous_reason=previous,
        )
    return locked


def _locked_draft(campaign: Campaign, *, marketing_only: bool = True) -> Campaign:
    locked = Campaign.objects.select_for_update().get(pk=campaign.pk)
    if locked.status != Campaign.Status.DRAFT:
        raise ExemptionRefused(
            f"The campaign is {locked.get_status_display().lower()}: its "
            "recipients were frozen at the launch, with the cap as it was then. "
            "An exemption can be set or withdrawn only before the launch."
        )
    if marketing_only and locked.purpose != Purpose.MARKETING:
        raise ExemptionRefused(
            "Transactional campaigns are not capped: there is nothing to exempt."
        )
    return locked


def _save(campaign: Campaign) -> None:
    """Save the exemption fields; `updated_at` moves, so the last pre-send
    check is out of date (campaigns.authoring.presend.campaign_can_launch)."""
    campaign.save(
        update_fields=[
            "cap_exempt_at",
            "cap_exempt_by",
            "cap_exempt_reason",
            "updated_at",
        ]
    )
