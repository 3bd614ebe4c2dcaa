"""Channel-specific templates: which channels have them, and WhatsApp's rules.

Sinch's Conversation API sends a template registered on one channel (a
`channel_template` entry keyed by the channel) only on that channel. For a
WhatsApp template it requires the language in the underscore form (`en_US`)
and parameter keys in WhatsApp's component form (`body[1]text`,
`header[1]image.link`, `button[0]url[1]text`, ...); a bare key such as "1"
is not recognised and the message fails. The model's validation, the
pre-send check and the simulator all read the rules here. What Sinch
confirms and what is guessed is marked in sinch.wire.
"""

import re

from sinch import wire

TEMPLATE_CHANNELS = wire.CHANNEL_TEMPLATE_CHANNELS

_INDEX = r"\[(\d+)\]"
_FIELD = (
    r"(?:"
    + "|".join(wire.WHATSAPP_TEMPLATE_PLAIN_FIELDS)
    + r"|(?:"
    + "|".join(wire.WHATSAPP_TEMPLATE_OBJECT_FIELDS)
    + r")(?:\.[a-z_]+)+)"
)
_BUTTON = r"button" + _INDEX + r"([a-z_]+)" + _INDEX + "(" + _FIELD + ")"
_PART = r"(header|body)" + _INDEX + "(" + _FIELD + ")"
WHATSAPP_KEY = re.compile(
    r"^(?:carousel" + _INDEX + r")?(?:" + _PART + "|" + _BUTTON + r")$"
)
BUTTON_TYPES = wire.WHATSAPP_TEMPLATE_BUTTON_TYPES
EXAMPLE = "body[1]text"
OTHER_FORMS = (
    "header[1]text or header[1]image.link for the header, "
    "button[0]url[1]text or button[0]quick_reply[1]payload for a button"
)
FORM_HELP = f"e.g. body[1]text for the body's first parameter, {OTHER_FORMS}"


class TemplateKeyError(ValueError):
    """A parameter key Sinch would not recognise; the message says the right form."""


def check_whatsapp_key(key: str) -> None:
    """Raise TemplateKeyError, saying the right form, unless `key` is one."""
    match = WHATSAPP_KEY.match(key)
    if match is None:
        raise TemplateKeyError(_advice(key))
    card, part, part_n, field, button_n, sub_type, button_param, _ = match.groups()
    if card is not None and int(card) >= wire.WHATSAPP_TEMPLATE_MAX_CARDS:
        raise TemplateKeyError(
            f'"{key}": a carousel has at most {wire.WHATSAPP_TEMPLATE_MAX_CARDS} '
            "cards, counted from 0."
        )
    if part is not None and int(part_n) < 1:
        raise TemplateKeyError(
            f'"{key}": parameters are counted from 1: use {part}[1]{field}.'
        )
    if sub_type is not None:
        if sub_type not in BUTTON_TYPES:
            raise TemplateKeyError(
                f'"{key}": unknown button type "{sub_type}"; one of '
                f"{', '.join(BUTTON_TYPES)}, e.g. button[0]url[1]text."
            )
        if int(button_n) >= wire.WHATSAPP_TEMPLATE_MAX_BUTTONS:
            raise TemplateKeyError(
                f'"{key}": buttons are counted from 0, at most '
                f"{wire.WHATSAPP_TEMPLATE_MAX_BUTTONS} of them."
            )
        if int(button_param) < 1:
            raise TemplateKeyError(
                f'"{key}": parameters are counted from 1, e.g. '
                f"button[{button_n}]{sub_type}[1]…."
            )


def whatsapp_key_errors(keys) -> list[str]:
    """One message per key Sinch would not recognise (in the given order)."""
    errors = []
    for key in keys:
        try:
            check_whatsapp_key(str(key))
        except TemplateKeyError as exc:
            errors.append(str(exc))
    return errors


def _advice(key: str) -> str:
    """Why `key` is not in component form, and the form that was likely meant."""
    text = key.strip()
    digits = re.fullmatch(r"\{*\s*(\d+)\s*\}*", text)
    if digits:
        n = int(digits.group(1)) or 1
        return (
            f'"{key}" is a bare key, which WhatsApp does not recognise: use '
            f"body[{n}]text for the body's {_ordinal(n)} parameter "
            f"({OTHER_FORMS})."
        )
    loose = re.fullmatch(r"(header|body)\s*[._\-\[(]?\s*(\d+)\s*[\])]?\s*(.*)", text)
    if loose:
        part, n, rest = loose.group(1), int(loose.group(2)) or 1, loose.group(3)
        field = rest.strip(". ") or "text"
        if field in wire.WHATSAPP_TEMPLATE_OBJECT_FIELDS:
            field += ".link"
        elif not WHATSAPP_KEY.match(f"{part}[1]{field}"):
            return (
                f'"{key}": unknown field "{field}"; use {part}[{n}]text '
                "(a media header: header[1]image.link, header[1]video.link or "
                "header[1]document.link)."
            )
        return f'"{key}" is not in WhatsApp\'s component form: use {part}[{n}]{field}.'
    if re.fullmatch(r"(header|body)(\[\d+\])?", text):
        return f'"{key}" lacks its field: use {text.split("[")[0]}[1]text.'
    button = re.fullmatch(r"button\s*\[?(\d+)\]?\s*\.?\s*([a-z_]*)", text)
    if button:
        n, field = button.group(1), button.group(2)
        if field == "payload":
            return f'"{key}": use button[{n}]quick_reply[1]payload.'
        return (
            f'"{key}": use button[{n}]url[1]text (or button[{n}]quick_reply[1]payload).'
        )
    media = re.fullmatch(r"(.*\[\d+\])(image|video|document|location)", text)
    if media:
        return f'"{key}" lacks the property: use {text}.link.'
    return f'"{key}" is not in WhatsApp\'s component form ({FORM_HELP}).'


def _ordinal(n: int) -> str:
    return {1: "first", 2: "second", 3: "third"}.get(n, f"{n}th")


# --- the language ---

_LANGUAGE = re.compile(
    r"^([A-Za-z]{2,3})(?:[-_]([A-Za-z]{4}))?(?:[-_]([A-Za-z]{2}|\d{3}))?$"
)


def normalise_language(code: str) -> str:
    """A language code in the underscore form WhatsApp needs (`en-us` -> `en_US`,
    `pt-br` -> `pt_BR`, `sr-latn` -> `sr_Latn`, `en` stays `en`).

    Raises ValueError with a message for the marketer for anything else.
    """
    text = code.strip()
    match = _LANGUAGE.match(text)
    if match is None:
        raise ValueError(
            f'"{code}" is not a language code: use the template\'s language as '
            "registered at WhatsApp, e.g. en, en_US, pt_BR or es_MX."
        )
    language, script, region = match.groups()
    parts = [language.lower()]
    if script:
        parts.append(script.title())
    if region:
        parts.append(region.upper())
    return "_".join(parts)


# --- which channels a message can be sent on ---


def message_kind(message: dict) -> str:
    """The kind of a Sinch `message` object, e.g. "text_message"."""
    return next((k for k in message if k in wire.MESSAGE_KINDS), "")


def template_reference(message: dict, channel: str) -> dict | None:
    """The channel template the message carries for `channel`, if any."""
    template = message.get("template_message")
    if not isinstance(template, dict):
        return None
    entries = template.get("channel_template") or {}
    found = entries.get(channel) if isinstance(entries, dict) else None
    return found if isinstance(found, dict) else None


def renders_on(message: dict, channel: str) -> bool:
    """Whether Sinch can render the message on `channel`: any message but a
    template message can be transcoded; a template message needs an omni
    template or a channel template for that very channel."""
    template = message.get("template_message")
    if not isinstance(template, dict):
        return True
    return bool(template.get("omni_template")) or (
        template_reference(message, channel) is not None
    )


def free_form_on_whatsapp(message: dict) -> bool:
    """Whether WhatsApp's 24-hour window applies: every message but a
    WhatsApp channel template (an omni template is transcoded to a free-form
    message on WhatsApp unless it carries a WhatsApp template)."""
    return template_reference(message, "WHATSAPP") is None
