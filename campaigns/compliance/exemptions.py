"""Exemptions from the compliance guards, recorded with who and when.

A transactional campaign may be exempted from quiet hours
(`Campaign.quiet_hours_exempt`; `Campaign.clean` refuses it on a marketing
campaign). Setting or clearing it stamps the campaign and writes an audit
event (AuditEvent.Action.EXEMPTION), shown on the campaign page.
"""

from django.db import transaction
from django.utils import timezone

from campaigns import transitions
from campaigns.models import Campaign
from contacts.models import AuditEvent, Purpose


def quiet_hours_exemption_changed(campaign: Campaign, user) -> None:
    """Record that `user` has just set or cleared the campaign's quiet-hours
    exemption (already saved): stamp who and when, audit it."""
    if campaign.quiet_hours_exempt and campaign.purpose != Purpose.TRANSACTIONAL:
        raise ValueError("only a transactional campaign may be exempted")
    now = timezone.now()
    with transaction.atomic():
        Campaign.objects.filter(pk=campaign.pk).update(
            quiet_hours_exempted_by=user, quiet_hours_exempted_at=now
        )
        campaign.quiet_hours_exempted_by = user
        campaign.quiet_hours_exempted_at = now
        verb = "Exempted" if campaign.quiet_hours_exempt else "Ended the exemption of"
        transitions.audit(
            campaign,
            user,
            AuditEvent.Action.EXEMPTION,
            f"{verb} campaign {campaign} from quiet hours",
            guard="quiet_hours",
            exempt=campaign.quiet_hours_exempt,
        )


def exemption_text(campaign: Campaign) -> str:
    """The exemption as the campaign page shows it."""
    if campaign.quiet_hours_exempted_at is None:
        return "Never exempted" if not campaign.quiet_hours_exempt else "Exempted"
    who = campaign.quiet_hours_exempted_by or "a removed user"
    at = timezone.localtime(campaign.quiet_hours_exempted_at)
    state = "Exempted" if campaign.quiet_hours_exempt else "Exemption ended"
    return f"{state} by {who} at {at:%Y-%m-%d %H:%M}"


def quiet_hours_apply(campaign: Campaign) -> bool:
    """Whether quiet hours hold the campaign's recipients: marketing always;
    transactional unless exempted."""
    return not (
        campaign.quiet_hours_exempt and campaign.purpose == Purpose.TRANSACTIONAL
    )
