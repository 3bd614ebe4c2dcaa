"""A message template as the Sinch `message` object, one builder per kind.

Placeholders are left in for Sinch to fill. The dicts themselves are made by
sinch.payloads (AppMessage and its parts); here the template's fields and rows
are read and the marketer's one-per-line texts parsed (message_lines). A
template that cannot be built raises ValidationError or ValueError saying why.
"""

from itertools import groupby
from typing import Any

from django.core.exceptions import ValidationError

from campaigns.models import message_lines
from sinch import wire
from sinch.payloads import (
    AppMessage,
    Card,
    ListItem,
    ListSection,
    omni_template_reference,
    omni_text,
)


def build(template: Any) -> dict[str, Any]:
    """The Sinch `message` of `template` (a MessageTemplate), overrides included."""
    builder = BUILDERS.get(template.kind)
    if builder is None:
        raise ValueError(f"unknown kind {template.kind!r}")
    message = builder(template)
    if template.pk is not None and template.kind != "CHANNEL_TEMPLATE":
        message = with_overrides(message, list(template.overrides.all()))
    return message.to_wire()


def _text(t) -> AppMessage:
    return AppMessage.text(t.text)


def _media(t) -> AppMessage:
    return AppMessage.media(t.media_url)


def _card(t) -> AppMessage:
    return AppMessage.card(
        title=t.title,
        description=t.description,
        media_url=t.media_url,
        choices=message_lines.parse_choices(t.choices),
    )


def _choice(t) -> AppMessage:
    return AppMessage.choice(t.text, message_lines.parse_choices(t.choices))


def _carousel(t) -> AppMessage:
    cards = [
        Card(
            title=card.title,
            description=card.description,
            media_url=card.media_url,
            choices=message_lines.parse_choices(card.choices),
        )
        for card in (t.cards.all() if t.pk else ())
    ]
    if not cards:
        raise ValidationError("A carousel needs at least one card.")
    return AppMessage.carousel(
        cards, message_lines.parse_choices(t.choices, wire.MAX_CAROUSEL_CHOICES)
    )


def _location(t) -> AppMessage:
    if t.latitude is None or t.longitude is None:
        raise ValidationError("A location needs a latitude and a longitude.")
    return AppMessage.location(
        title=t.title, latitude=t.latitude, longitude=t.longitude, label=t.label
    )


def list_sections(items) -> list[ListSection]:
    """Consecutive items with the same section title form one section."""
    return [
        ListSection(
            title,
            [ListItem(i.title, i.description, i.postback_data) for i in group],
        )
        for title, group in groupby(items, key=lambda item: item.section)
    ]


def _list(t) -> AppMessage:
    sections = list_sections(t.list_items.all() if t.pk else ())
    if not sections:
        raise ValidationError("A list needs at least one item.")
    return AppMessage.list(
        title=t.title,
        description=t.description,
        media_url=t.media_url,
        sections=sections,
    )


def _contact_info(t) -> AppMessage:
    return AppMessage.contact_info(
        full_name=t.contact_name,
        phone_numbers=message_lines.parse_phones(t.contact_phones),
        email_addresses=message_lines.parse_emails(t.contact_emails),
        company=t.contact_company,
    )


def _channel_template(t) -> AppMessage:
    return AppMessage.channel_template(
        t.template_channel,
        t.template_id,
        language_code=t.template_language,
        parameters=t.template_parameters or {},
    )


def _omni_template(t) -> AppMessage:
    return AppMessage.omni_template(
        t.template_id,
        t.template_version,
        language_code=t.template_language,
        parameters=t.template_parameters or {},
    )


BUILDERS = {
    "TEXT": _text,
    "MEDIA": _media,
    "CARD": _card,
    "CHOICE": _choice,
    "CAROUSEL": _carousel,
    "LOCATION": _location,
    "LIST": _list,
    "CONTACT_INFO": _contact_info,
    "CHANNEL_TEMPLATE": _channel_template,
    "OMNI_TEMPLATE": _omni_template,
}


def with_overrides(message: AppMessage, overrides) -> AppMessage:
    """`message` with each ChannelOverride row in its map."""
    payloads: dict[str, str] = {}
    omni: dict[str, dict[str, Any]] = {}
    for row in overrides:
        if row.form == "PAYLOAD":
            payloads[row.channel] = row.payload
        elif row.form == "TEXT":
            omni[row.channel] = omni_text(row.text)
        else:
            omni[row.channel] = omni_template_reference(
                row.omni_template_id,
                row.omni_version,
                language_code=row.omni_language,
            )
    return message.with_overrides(
        explicit_channel_message=payloads, explicit_channel_omni_message=omni
    )
