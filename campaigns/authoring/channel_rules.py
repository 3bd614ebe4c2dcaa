"""What the channels allow a campaign's message: problems of the whole
campaign, not of one recipient, and WhatsApp's customer-service window.

`campaign_problems` lists what blocks the launch (shown on the preview and
launch pages through campaigns.authoring.presend.campaign_can_launch, and
refused by the launch itself):

- a channel template that Sinch cannot render on the campaign's channel or a
  fallback channel (a WhatsApp template on an SMS campaign, or with SMS as a
  fallback), or that Sinch would refuse (parameter keys not in WhatsApp's
  component form, no language);
- a free-form message (every kind but a WhatsApp template) where WhatsApp is
  the channel or a fallback: WhatsApp delivers it only within 24 hours of
  the person's last message (sinch.wire.WHATSAPP_WINDOW_HOURS).

The exception: a transactional campaign with `whatsapp_window_only` goes to
the people whose last WhatsApp message to us is within the window
(`WhatsAppWindow`, applied by campaigns.authoring.audience to every member
at the pre-send check, the preview and the freeze); the others are excluded
with the reason.
"""

from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.utils import timezone

from campaigns.authoring.rendering import MessagePlan
from campaigns.models import Campaign, InboundMessage
from campaigns.models.templates import template_channel_error
from contacts.models import Purpose
from sinch import channel_templates
from sinch.channels import Channel

WHATSAPP = Channel.WHATSAPP.value


def campaign_channels(campaign: Campaign) -> list[str]:
    """The campaign's channel, then its fallback channels, each once."""
    order = campaign.channel_priority_order
    order = order if isinstance(order, list) else []
    return list(dict.fromkeys([campaign.channel, *order]))


def _label(channel: str) -> str:
    return Channel(channel).label if channel in Channel.values else channel


def _role(campaign: Campaign, channel: str) -> str:
    return "the campaign's channel" if channel == campaign.channel else "a fallback"


def campaign_message(campaign: Campaign) -> dict[str, Any]:
    """The message as it will go: frozen at launch, else the template's now
    (what MessagePlan.for_campaign holds, without reading the parameters)."""
    if campaign.message_snapshot:
        return MessagePlan.from_snapshot(campaign.message_snapshot).message
    return campaign.template.sinch_message()


def window_hours() -> int:
    return settings.WHATSAPP_WINDOW_HOURS


def window_allowed(campaign: Campaign) -> bool:
    """The campaign may write within WhatsApp's window (transactional only)."""
    return campaign.whatsapp_window_only and campaign.purpose == Purpose.TRANSACTIONAL


def campaign_problems(
    campaign: Campaign, message: dict[str, Any] | None = None
) -> list[str]:
    """What blocks the launch in the channels' rules, each with what to do."""
    if message is None:
        message = campaign_message(campaign)
    channels = campaign_channels(campaign)
    problems = _template_problems(message)
    cannot = [c for c in channels if not channel_templates.renders_on(message, c)]
    if cannot:
        template = message["template_message"].get("channel_template") or {}
        names = ", ".join(_label(c) for c in template) or "no channel"
        where = "; ".join(f"{_label(c)} ({_role(campaign, c)})" for c in cannot)
        problems.append(
            f"The template is a channel template for {names}, which Sinch sends on "
            f"that channel only: it cannot be sent on {where}. Choose a template "
            "written for that channel, or take it out of the fallback order."
        )
    if (
        WHATSAPP in channels
        and channel_templates.free_form_on_whatsapp(message)
        and not window_allowed(campaign)
    ):
        problems.append(_window_problem(campaign, message))
    return problems


def _template_problems(message: dict[str, Any]) -> list[str]:
    template = message.get("template_message")
    entries = template.get("channel_template") if isinstance(template, dict) else None
    problems = []
    for channel, reference in (entries or {}).items():
        if channel not in channel_templates.TEMPLATE_CHANNELS:
            problems.append(
                f"The template's channel: {template_channel_error(channel)}"
            )
        if channel != WHATSAPP or not isinstance(reference, dict):
            continue
        if not reference.get("language_code"):
            problems.append(
                "The WhatsApp template has no language: set the language it is "
                "registered in on the template (e.g. en or en_US)."
            )
        for error in channel_templates.whatsapp_key_errors(
            reference.get("parameters") or {}
        ):
            problems.append(f"The WhatsApp template's parameter {error}")
    return problems


def _window_problem(campaign: Campaign, message: dict[str, Any]) -> str:
    kind = channel_templates.message_kind(message).removesuffix("_message")
    hours = window_hours()
    where = (
        "This campaign is sent on WhatsApp"
        if campaign.channel == WHATSAPP
        else "WhatsApp is a fallback channel of this campaign"
    )
    text = (
        f"{where}, and its message is a {kind.replace('_', ' ')} message. "
        f"WhatsApp delivers such a message only to people who wrote to you in "
        f"the last {hours} hours (WhatsApp's customer-service window); to "
        "everyone else it fails (OUTSIDE_ALLOWED_SENDING_WINDOW). Use a "
        'WhatsApp template (a message template of the kind "Channel template" '
        "for WhatsApp) instead"
    )
    if campaign.channel != WHATSAPP:
        text += ", or take WhatsApp out of the fallback order"
    if campaign.purpose == Purpose.TRANSACTIONAL:
        text += (
            ', or tick "WhatsApp: only people who wrote to us in the last '
            f'{hours} hours" to send it to those people only'
        )
    return text + "."


class WhatsAppWindow:
    """Who is within WhatsApp's window at the campaign's send time: the
    contacts whose last WhatsApp message to us is at most WHATSAPP_WINDOW_HOURS
    older than the send time (now, for "when launched"). One query, when
    built; the set holds only those who wrote lately, not the audience."""

    KEY = "outside_whatsapp_window"

    def __init__(self, campaign: Campaign, now: datetime | None = None) -> None:
        now = now or timezone.now()
        at = max(campaign.send_at or now, now)
        self.since = at - timedelta(hours=window_hours())
        self.label = (
            f"outside WhatsApp's {window_hours()}-hour window "
            "(no WhatsApp message from them in time)"
        )
        self.contacts = set(
            InboundMessage.objects.filter(
                channel=WHATSAPP, received_at__gte=self.since, contact__isnull=False
            )
            .values_list("contact_id", flat=True)
            .distinct()
        )

    def allows(self, contact_id: int) -> bool:
        return contact_id in self.contacts


def window_for(campaign: Campaign, message: dict[str, Any]) -> WhatsAppWindow | None:
    """The window rule the campaign's members are held to, or None."""
    if (
        window_allowed(campaign)
        and WHATSAPP in campaign_channels(campaign)
        and channel_templates.free_form_on_whatsapp(message)
    ):
        return WhatsAppWindow(campaign)
    return None
