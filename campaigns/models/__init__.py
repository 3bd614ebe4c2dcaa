"""The campaigns app's models, one module per stage of a campaign's life.

Authoring (templates.py, campaign.py), sending (sending.py) and tracking
(tracking.py); states.py holds the status groups and precedence rules that
the rest of the code reads instead of spelling statuses out again.
"""

from campaigns.models.ab_tests import ABTest, Variant
from campaigns.models.approvals import LaunchApproval
from campaigns.models.campaign import Campaign
from campaigns.models.links import Click, ShortLink, TrackedLink
from campaigns.models.notifications import Notification, NotificationPreference
from campaigns.models.segments import Segment
from campaigns.models.sending import Batch, CampaignCount, Recipient, RequestWindow
from campaigns.models.template_parts import CarouselCard, ChannelOverride, ListItem
from campaigns.models.templates import MessageTemplate, TemplateParameter
from campaigns.models.tracking import CampaignTimeline, InboundMessage, WebhookEvent

__all__ = [
    "ABTest",
    "Batch",
    "Campaign",
    "CampaignCount",
    "CampaignTimeline",
    "CarouselCard",
    "ChannelOverride",
    "Click",
    "InboundMessage",
    "LaunchApproval",
    "ListItem",
    "MessageTemplate",
    "Notification",
    "NotificationPreference",
    "Recipient",
    "RequestWindow",
    "Segment",
    "ShortLink",
    "TemplateParameter",
    "TrackedLink",
    "Variant",
    "WebhookEvent",
]
