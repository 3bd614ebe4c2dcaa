"""A campaign's channel properties: which are allowed, and their wire form.

Plain functions over the registry in sinch.channel_properties, called by the
model's clean(), the admin form and the launch check, so the three agree:

- `property_problems`: what is wrong with a campaign's properties, each
  problem tied to its key (or to none);
- `wire_properties`: the `channel_properties` map built from typed values
  (True/False, numbers, texts; empty ones left out);
- `typed_values`: the reverse, for showing stored properties in typed
  fields, with the stored entries no typed field can show.
"""

from collections.abc import Iterable, Mapping
from typing import Any

from sinch import channel_properties as registry
from sinch.channels import Channel

SMS_SENDER = "SMS_SENDER"
OTHER_CHANNELS = {"VIBER": "Viber Bot"}


def channel_label(channel: str) -> str:
    """How the admin names a Conversation API channel."""
    if channel in Channel.values:
        return str(Channel(channel).label)
    return OTHER_CHANNELS.get(channel, channel)


def campaign_channels(channel: str, priority_order: Any) -> list[str]:
    """The campaign's channel, then its fallbacks, each once."""
    channels = [channel] if channel else []
    if isinstance(priority_order, list):
        channels += [c for c in priority_order if isinstance(c, str)]
    return list(dict.fromkeys(channels))


def _name(key: str) -> str:
    prop = registry.PROPERTIES.get(key)
    if prop is None:
        return key
    return f"{prop.label} ({key})"


def property_problems(
    properties: Any, *, channels: Iterable[str]
) -> list[tuple[str | None, str]]:
    """(key, message) for each problem of `properties` on a campaign sending
    on `channels` ([]: none). Key None: the map as a whole.

    A property is refused when Sinch does not know its key, when its value is
    not of its type, or when its channel is none of the campaign's (Sinch
    would ignore it: most likely the campaign's channel changed). A property
    Sinch requires on a channel the campaign uses must be there.
    """
    if properties in (None, {}):
        properties = {}
    if not isinstance(properties, Mapping) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in properties.items()
    ):
        return [
            (None, 'Must be an object of texts, e.g. {"SMS_FLASH_MESSAGE": "true"}.')
        ]
    channels = list(channels)
    found: list[tuple[str | None, str]] = []
    bad = registry.problems(properties)
    for key, problem in bad.items():
        if key not in registry.KEYS:
            found.append((key, f"{key} is not a channel property Sinch accepts."))
        else:
            found.append((key, f"{_name(key)} {problem}."))
    for key in properties:
        prop = registry.PROPERTIES.get(key)
        if prop and key not in bad and properties[key] and prop.channel not in channels:
            found.append((key, _unused_channel(prop, channels)))
    for channel in channels:
        for prop in registry.for_channel(channel):
            if prop.required_on_channel and not properties.get(prop.key):
                found.append(
                    (
                        prop.key,
                        f"{_name(prop.key)} is required: Sinch refuses "
                        f"{channel_label(channel)} messages without it.",
                    )
                )
    found.extend(_messenger_problems(properties))
    return found


def _unused_channel(prop: registry.ChannelProperty, channels: list[str]) -> str:
    used = ", ".join(channel_label(c) for c in channels) or "none"
    return (
        f"{_name(prop.key)} is for {channel_label(prop.channel)}, which is not "
        f"one of this campaign's channels ({used}): add {prop.channel} to the "
        "fallback order or clear it."
    )


def _messenger_problems(properties: Mapping[str, str]) -> list[tuple[str, str]]:
    kind = properties.get("MESSENGER_MESSAGING_TYPE")
    if properties.get("MESSENGER_MESSAGE_TAG") and kind and kind != "MESSAGE_TAG":
        return [
            (
                "MESSENGER_MESSAGING_TYPE",
                "With a Messenger message tag the messaging type must be "
                '"Message tag" (or left empty).',
            )
        ]
    return []


def wire_properties(values: Mapping[str, Any]) -> dict[str, str]:
    """`channel_properties` from typed values keyed by property key.

    None and "" are left out; so is a boolean equal to Sinch's documented
    default (the message is the same, and the map stays short).
    """
    properties = {}
    for key, value in values.items():
        prop = registry.PROPERTIES[key]
        if value is None or value == "":
            continue
        if prop.kind == registry.BOOLEAN:
            text = "true" if value else "false"
            if text == (prop.default or "false"):
                continue
        else:
            text = str(value).strip()
        if text:
            properties[key] = text
    return properties


def typed_values(
    properties: Any, *, keys: Iterable[str]
) -> tuple[dict[str, Any], dict[str, Any]]:
    """(values for typed fields, stored entries no typed field can show).

    `keys` are the properties that have a typed field. Booleans become
    True/False (absent: the documented default); integers and texts stay as
    stored, so a bad stored number still shows, and is refused, in its field.
    Unknown keys, and booleans or choices whose stored value is not one of
    theirs, are returned apart so that nothing is lost silently.
    """
    keys = set(keys)
    if not isinstance(properties, Mapping):
        return {}, {"": properties} if properties not in (None, "") else {}
    values: dict[str, Any] = {}
    unshown: dict[str, Any] = {}
    for key in keys:
        prop = registry.PROPERTIES[key]
        if prop.kind == registry.BOOLEAN and key not in properties:
            values[key] = (prop.default or "false") == "true"
    for key, value in properties.items():
        prop = registry.PROPERTIES.get(key)
        if prop is None or key not in keys or not isinstance(value, str):
            unshown[key] = value
        elif prop.kind == registry.BOOLEAN:
            if value.lower() in ("true", "false"):
                values[key] = value.lower() == "true"
            else:
                unshown[key] = value
        elif not _fits_field(prop, value):
            unshown[key] = value
        else:
            values[key] = value
    return values, unshown


def _fits_field(prop: registry.ChannelProperty, value: str) -> bool:
    """Whether a typed field can show `value` (a choice it lists, a number)."""
    if prop.kind == registry.CHOICE:
        return value in dict(prop.choices)
    if prop.kind == registry.INTEGER:
        return value.strip().isdigit()
    return True
