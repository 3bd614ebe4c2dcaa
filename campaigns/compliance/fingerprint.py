"""What an approval covers: the message as it would be frozen, and the audience.

`fingerprint` is the SHA-256 of both definitions in canonical JSON. Any change
to what would be sent (the template's message and parameter sources, the
campaign values, the channels and their properties, the purpose, the send
time, the ttl, local-time sending and the quiet-hours exemption) or to whom
(the audience definition) changes it.
"""

import hashlib
import json
from typing import Any

from campaigns.authoring.rendering import MessagePlan
from campaigns.models import Campaign


def message_definition(campaign: Campaign) -> dict[str, Any]:
    """What campaigns.authoring.rendering.freeze_message would freeze, with
    how and when the campaign sends it (the compliance footer included)."""
    plan = MessagePlan.live(campaign)
    return {
        "message": plan.snapshot(),
        "channel": campaign.channel,
        "fallback_order": campaign.channels(),
        "channel_properties": campaign.sinch_channel_properties(),
        "purpose": campaign.purpose,
        "whatsapp_window_only": campaign.whatsapp_window_only,
        "send_at": campaign.send_at.isoformat() if campaign.send_at else None,
        "send_time_zone": campaign.send_time_zone,
        "ttl_seconds": campaign.ttl_seconds,
        **_send_time_rules(campaign),
    }


def _send_time_rules(campaign: Campaign) -> dict[str, Any]:
    """When each recipient gets it (campaigns.compliance.send_times): only
    what differs from the defaults, so approvals given before these fields
    existed still match."""
    rules: dict[str, Any] = {}
    if campaign.send_in_local_time:
        rules["send_in_local_time"] = True
    if campaign.fallback_time_zone:
        rules["fallback_time_zone"] = campaign.fallback_time_zone
    if campaign.multi_zone_rule != Campaign.MultiZoneRule.WEST:
        rules["multi_zone_rule"] = campaign.multi_zone_rule
    if campaign.quiet_hours_exempt:
        rules["quiet_hours_exempt"] = True
    return rules


def audience_definition(campaign: Campaign) -> dict[str, Any]:
    """Who the campaign is for, as defined (not who is on the lists now: the
    audience size is covered by the tolerance, campaigns.compliance.drift)."""
    definition: dict[str, Any] = {
        "lists": sorted(campaign.lists.values_list("pk", flat=True))
    }
    # Only when there are segments, so approvals given before them still
    # match; a segment's definition changed after the approval withdraws it.
    segments = list(campaign.segments.order_by("pk").values("pk", "definition"))
    if segments:
        definition["segments"] = [[s["pk"], s["definition"]] for s in segments]
    return definition


def fingerprint(campaign: Campaign) -> str:
    """SHA-256 (hex) of the message and audience definitions."""
    canonical = json.dumps(
        {
            "message": message_definition(campaign),
            "audience": audience_definition(campaign),
        },
        sort_keys=True,
        separators=(",", ":"),
        ensure_ascii=False,
        default=str,
    )
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()
