"""The `message` of a send body checked as Sinch's models require it.

Required fields and nesting follow the Conversation API's AppMessage models
(the official SDKs): one message kind, its required fields, choices of one
kind each, and the per-channel overrides. `errors` is a
validation.Violations (anything with add(where, what)).
"""

from typing import Any

from sinch import channel_templates, wire
from sinch.channels import Channel

CHANNELS = frozenset(Channel.values)
CHOICE_KINDS = {
    "text_message": ("text",),
    "url_message": ("title", "url"),
    "call_message": ("title", "phone_number"),
    "location_message": ("title", "coordinates"),
    "calendar_message": (
        "title",
        "event_start",
        "event_end",
        "event_title",
        "fallback_url",
    ),
    "share_location_message": ("title", "fallback_url"),
}
REQUIRED = {
    "text_message": ("text",),
    "media_message": ("url",),
    "choice_message": ("choices",),
    "carousel_message": ("cards",),
    "location_message": ("coordinates", "title"),
    "list_message": ("title", "sections"),
    "contact_info_message": ("name", "phone_numbers"),
    "template_reference": ("template_id", "version"),
}


def check_message(message: Any, errors) -> None:
    if not isinstance(message, dict):
        errors.add("message", "message is required")
        return
    kinds = [key for key in message if key in wire.MESSAGE_KINDS]
    if len(kinds) != 1:
        errors.add("message", "exactly one message type must be set")
    for key in message:
        if key not in wire.MESSAGE_KINDS and key not in wire.MESSAGE_EXTRA_KEYS:
            errors.add(f"message.{key}", "unknown field")
    if len(kinds) == 1:
        check_content(kinds[0], message[kinds[0]], f"message.{kinds[0]}", errors)
    _overrides(message, errors)


def check_content(kind: str, content: Any, where: str, errors) -> None:
    if not isinstance(content, dict):
        errors.add(where, "must be an object")
        return
    for name in REQUIRED.get(kind, ()):
        if not content.get(name):
            errors.add(f"{where}.{name}", f"{name} is required")
    check = _CHECKS.get(kind)
    if check is not None:
        check(content, where, errors)


def _choices(choices: Any, where: str, limit: int, errors) -> None:
    if choices is None:
        return
    if not isinstance(choices, list):
        errors.add(where, "must be a list")
        return
    if len(choices) > limit:
        errors.add(where, f"at most {limit} choices")
    for i, choice in enumerate(choices):
        at = f"{where}[{i}]"
        keys = choice if isinstance(choice, dict) else {}
        kinds = [k for k in keys if k in CHOICE_KINDS]
        if len(kinds) != 1:
            errors.add(at, f"exactly one of {', '.join(CHOICE_KINDS)}")
            continue
        unknown = set(choice) - {kinds[0], "postback_data"}
        for key in sorted(unknown):
            errors.add(f"{at}.{key}", "unknown field")
        content = choice[kinds[0]]
        if not isinstance(content, dict):
            errors.add(f"{at}.{kinds[0]}", "must be an object")
            continue
        for name in CHOICE_KINDS[kinds[0]]:
            if not content.get(name):
                errors.add(f"{at}.{kinds[0]}.{name}", f"{name} is required")
        if kinds[0] == "location_message":
            _coordinates(content.get("coordinates"), f"{at}.{kinds[0]}", errors)
        if "postback_data" in choice and not isinstance(choice["postback_data"], str):
            errors.add(f"{at}.postback_data", "must be a string")


def _card(content: dict, where: str, errors) -> None:
    _choices(content.get("choices"), f"{where}.choices", wire.MAX_CHOICES, errors)
    media = content.get("media_message")
    if media is not None and not (isinstance(media, dict) and media.get("url")):
        errors.add(f"{where}.media_message.url", "url is required")


def _choice(content: dict, where: str, errors) -> None:
    _choices(content.get("choices"), f"{where}.choices", wire.MAX_CHOICES, errors)


def _carousel(content: dict, where: str, errors) -> None:
    cards = content.get("cards")
    if isinstance(cards, list):
        if len(cards) > wire.MAX_CAROUSEL_CARDS:
            errors.add(f"{where}.cards", f"at most {wire.MAX_CAROUSEL_CARDS} cards")
        for i, card in enumerate(cards):
            if not isinstance(card, dict):
                errors.add(f"{where}.cards[{i}]", "must be an object")
            else:
                _card(card, f"{where}.cards[{i}]", errors)
    elif cards:
        errors.add(f"{where}.cards", "must be a list")
    _choices(
        content.get("choices"), f"{where}.choices", wire.MAX_CAROUSEL_CHOICES, errors
    )


def _coordinates(value: Any, where: str, errors) -> None:
    if not isinstance(value, dict):
        return  # reported as required
    for name, bound in (("latitude", 90), ("longitude", 180)):
        number = value.get(name)
        if isinstance(number, bool) or not isinstance(number, int | float):
            errors.add(f"{where}.coordinates.{name}", "must be a number")
        elif not -bound <= number <= bound:
            errors.add(f"{where}.coordinates.{name}", f"from -{bound} to {bound}")


def _location(content: dict, where: str, errors) -> None:
    _coordinates(content.get("coordinates"), where, errors)


def _list(content: dict, where: str, errors) -> None:
    sections = content.get("sections")
    if not isinstance(sections, list):
        if sections:
            errors.add(f"{where}.sections", "must be a list")
        return
    if len(sections) > wire.MAX_LIST_SECTIONS:
        errors.add(f"{where}.sections", f"at most {wire.MAX_LIST_SECTIONS} sections")
    total = 0
    for i, section in enumerate(sections):
        at = f"{where}.sections[{i}]"
        items = section.get("items") if isinstance(section, dict) else None
        if not isinstance(items, list) or not items:
            errors.add(f"{at}.items", "at least one item is required")
            continue
        total += len(items)
        for j, item in enumerate(items):
            choice = item.get("choice") if isinstance(item, dict) else None
            product = item.get("product") if isinstance(item, dict) else None
            if isinstance(choice, dict) and choice.get("title"):
                continue
            if (
                isinstance(product, dict)
                and product.get("id")
                and product.get("marketplace")
            ):
                continue
            errors.add(
                f"{at}.items[{j}]",
                "a choice with a title, or a product with id and marketplace",
            )
    if total > wire.MAX_LIST_ITEMS:
        errors.add(f"{where}.sections", f"at most {wire.MAX_LIST_ITEMS} items")


def _contact_info(content: dict, where: str, errors) -> None:
    name = content.get("name")
    if name and not (isinstance(name, dict) and name.get("full_name")):
        errors.add(f"{where}.name.full_name", "full_name is required")
    phones = content.get("phone_numbers")
    if isinstance(phones, list):
        for i, phone in enumerate(phones):
            if not (isinstance(phone, dict) and phone.get("phone_number")):
                errors.add(f"{where}.phone_numbers[{i}].phone_number", "is required")
    emails = content.get("email_addresses") or []
    for i, email in enumerate(emails if isinstance(emails, list) else [None]):
        if not (isinstance(email, dict) and email.get("email_address")):
            errors.add(f"{where}.email_addresses[{i}].email_address", "is required")


def _template(content: dict, where: str, errors) -> None:
    omni = content.get("omni_template")
    channel = content.get("channel_template")
    if not omni and not channel:
        errors.add(where, "omni_template or channel_template is required")
    if omni:
        check_content("template_reference", omni, f"{where}.omni_template", errors)
    if channel:
        if not isinstance(channel, dict):
            errors.add(f"{where}.channel_template", "must be an object")
            return
        for key, reference in channel.items():
            at = f"{where}.channel_template.{key}"
            if key not in CHANNELS:
                errors.add(at, f"Unknown channel {key!r}")
            elif not (isinstance(reference, dict) and reference.get("template_id")):
                errors.add(f"{at}.template_id", "template_id is required")
            elif key == "WHATSAPP":
                _whatsapp_template(reference, at, errors)


def _whatsapp_template(reference: dict, at: str, errors) -> None:
    """A WhatsApp template also names its language, and its parameters in
    WhatsApp's component form (sinch.channel_templates)."""
    if not reference.get("language_code"):
        errors.add(f"{at}.language_code", "language_code is required")
    parameters = reference.get("parameters") or {}
    if isinstance(parameters, dict):
        for error in channel_templates.whatsapp_key_errors(parameters):
            errors.add(f"{at}.parameters", error)


def _reference(content: dict, where: str, errors) -> None:
    parameters = content.get("parameters")
    if parameters is not None and not (
        isinstance(parameters, dict)
        and all(isinstance(v, str) for v in parameters.values())
    ):
        errors.add(f"{where}.parameters", "must be an object of strings")


_CHECKS = {
    "card_message": _card,
    "choice_message": _choice,
    "carousel_message": _carousel,
    "location_message": _location,
    "list_message": _list,
    "contact_info_message": _contact_info,
    "template_message": _template,
    "template_reference": _reference,
}


def _overrides(message: dict, errors) -> None:
    for key, check in (
        ("explicit_channel_message", _explicit),
        ("explicit_channel_omni_message", _omni),
        ("channel_specific_message", _specific),
    ):
        value = message.get(key)
        if value is None:
            continue
        if not isinstance(value, dict):
            errors.add(f"message.{key}", "must be an object keyed by channel")
            continue
        for channel, item in value.items():
            where = f"message.{key}.{channel}"
            if channel not in CHANNELS:
                errors.add(where, f"Unknown channel {channel!r}")
            else:
                check(item, where, errors)


def _explicit(item: Any, where: str, errors) -> None:
    if not isinstance(item, str) or not item:
        errors.add(where, "must be the channel's payload as a string")


def _omni(item: Any, where: str, errors) -> None:
    keys = item if isinstance(item, dict) else {}
    kinds = [k for k in keys if k in wire.OMNI_OVERRIDE_KINDS]
    if len(kinds) != 1 or len(item) != 1:
        errors.add(where, f"exactly one of {', '.join(wire.OMNI_OVERRIDE_KINDS)}")
        return
    check_content(kinds[0], item[kinds[0]], f"{where}.{kinds[0]}", errors)


def _specific(item: Any, where: str, errors) -> None:
    if not isinstance(item, dict):
        errors.add(where, "must be an object")
        return
    if not isinstance(item.get("message_type"), str) or not item["message_type"]:
        errors.add(f"{where}.message_type", "message_type is required")
    if not isinstance(item.get("message"), dict):
        errors.add(f"{where}.message", "message is required")
