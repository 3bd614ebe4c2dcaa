"""What an approval covers: the message as it would be frozen, and the audience.

`fingerprint` is the SHA-256 of both definitions in canonical JSON. Any change
to what would be sent (the template's message and parameter sources, the
campaign values, the channels and their properties, the purpose, the send
time, the ttl) or to whom (the audience definition) changes it.
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
    }


def audience_definition(campaign: Campaign) -> dict[str, Any]:
    """Who the campaign is for, as defined (not who is on the lists now: the
    audience size is covered by the tolerance, campaigns.compliance.drift)."""
    return {"lists": sorted(campaign.lists.values_list("pk", flat=True))}


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
