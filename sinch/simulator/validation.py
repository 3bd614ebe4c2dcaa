"""Request validation as Sinch does it, with Sinch's field violations.

The checks run over every recipient, so they stay plain loops over dicts:
a 1000-recipient batch is validated in about a millisecond.
"""

import json
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sinch import channel_templates, wire
from sinch.channels import Channel

CHANNELS = frozenset(Channel.values)
RESERVED = wire.RESERVED_METADATA_KEY
MAX_VIOLATIONS = 20


@dataclass
class ApiError(Exception):
    status: int
    message: str
    violations: list[tuple[str, str]] = field(default_factory=list)
    headers: dict[str, str] = field(default_factory=dict)


class Violations:
    def __init__(self) -> None:
        self.items: list[tuple[str, str]] = []

    def add(self, where: str, what: str) -> None:
        if len(self.items) < MAX_VIOLATIONS:
            self.items.append((where, what))

    def raise_if_any(self, message: str = "Invalid argument") -> None:
        if self.items:
            raise ApiError(400, message, self.items)


def json_object(data: Any) -> dict:
    if not isinstance(data, dict):
        raise ApiError(400, "Invalid JSON payload: an object was expected")
    return data


@dataclass
class Schedule:
    send_after: datetime  # effective, as echoed
    scheduled: bool  # False: sent now, and never cancellable


@dataclass
class Accepted:
    """What the API keeps of a valid send body (the raw body is kept too)."""

    size: int
    batch_metadata: dict[str, str]
    callback_url: str
    send_after: datetime
    scheduled: bool


def check_send(body: bytes, app_id: str, now: datetime) -> Accepted | ApiError:
    """Parse and validate a send body; the ApiError is returned, not raised.

    The parsed body is dropped on return: at 1000 recipients its dicts take
    ten times the memory of the bytes, which the engine parses again later.
    """
    try:
        data = json_object(loads_json(body))
        schedule = validate_send(data, app_id=app_id, now=now)
    except ApiError as error:
        return error
    metadata = data.get("batch_metadata") or {}
    return Accepted(
        size=len(data["recipient_and_params"]),
        batch_metadata={str(k): str(v) for k, v in metadata.items()},
        callback_url=data.get("callback_url") or "",
        send_after=schedule.send_after,
        scheduled=schedule.scheduled,
    )


def loads_json(body: bytes) -> Any:
    try:
        return json.loads(body or b"null")
    except ValueError:
        raise ApiError(400, "Invalid JSON payload received.") from None


def validate_send(data: dict, *, app_id: str, now: datetime) -> Schedule:
    """Check a send-batch body; return its effective schedule or raise ApiError."""
    errors = Violations()
    if not data.get("app_id"):
        errors.add("app_id", "app_id is required")
    elif data["app_id"] != app_id:
        errors.add("app_id", f"Unknown app {data['app_id']!r}")
    _message(data.get("message"), errors)
    _recipients(data.get("recipient_and_params"), errors)
    for name in ("batch_metadata", "message_metadata", "conversation_metadata"):
        _metadata(data.get(name), name, errors)
    _string_map(data.get("channel_properties"), "channel_properties", errors)
    strategy = data.get("processing_strategy")
    if strategy is not None and strategy not in wire.PROCESSING_STRATEGIES:
        errors.add("processing_strategy", f"Unknown value {strategy!r}")
    order = data.get("channel_priority_order")
    if order is not None:
        if not isinstance(order, list):
            errors.add("channel_priority_order", "must be a list of channels")
        else:
            for i, channel in enumerate(order):
                if channel not in CHANNELS:
                    errors.add(f"channel_priority_order[{i}]", _bad_channel(channel))
    _ttl(data.get("ttl"), errors)
    schedule = _send_after(data.get("send_after"), now, errors)
    errors.raise_if_any()
    return schedule


def _message(message: Any, errors: Violations) -> None:
    if not isinstance(message, dict):
        errors.add("message", "message is required")
        return
    kinds = [key for key in message if key in wire.MESSAGE_KINDS]
    unknown = [
        key
        for key in message
        if key not in wire.MESSAGE_KINDS and key not in wire.MESSAGE_EXTRA_KEYS
    ]
    if len(kinds) != 1:
        errors.add("message", "exactly one message type must be set")
    for key in unknown:
        errors.add(f"message.{key}", "unknown field")
    if len(kinds) == 1:
        _content(kinds[0], message[kinds[0]], errors)


def _content(kind: str, content: Any, errors: Violations) -> None:
    where = f"message.{kind}"
    if not isinstance(content, dict):
        errors.add(where, "must be an object")
        return
    required = {
        "text_message": ("text",),
        "media_message": ("url",),
        "choice_message": ("choices",),
        "carousel_message": ("cards",),
        "location_message": ("coordinates", "title"),
        "list_message": ("title", "sections"),
        "contact_info_message": ("name", "phone_numbers"),
    }.get(kind, ())
    for name in required:
        if not content.get(name):
            errors.add(f"{where}.{name}", f"{name} is required")
    if kind == "template_message" and not (
        content.get("omni_template") or content.get("channel_template")
    ):
        errors.add(where, "omni_template or channel_template is required")
    if kind == "template_message":
        _channel_templates(content.get("channel_template"), where, errors)
    choices = content.get("choices")
    if isinstance(choices, list) and len(choices) > wire.MAX_CHOICES:
        errors.add(f"{where}.choices", f"at most {wire.MAX_CHOICES} choices")


def _channel_templates(entries: Any, where: str, errors: Violations) -> None:
    """Each channel template names a template; a WhatsApp one also its
    language and its parameters in WhatsApp's component form."""
    if entries is None:
        return
    if not isinstance(entries, dict):
        errors.add(f"{where}.channel_template", "must be an object")
        return
    for channel, reference in entries.items():
        at = f"{where}.channel_template.{channel}"
        if channel not in CHANNELS:
            errors.add(at, _bad_channel(channel))
        if not isinstance(reference, dict) or not reference.get("template_id"):
            errors.add(f"{at}.template_id", "template_id is required")
            continue
        parameters = reference.get("parameters") or {}
        if not isinstance(parameters, dict):
            errors.add(f"{at}.parameters", "must be an object of strings")
            continue
        if channel != "WHATSAPP":
            continue
        if not reference.get("language_code"):
            errors.add(f"{at}.language_code", "language_code is required")
        for error in channel_templates.whatsapp_key_errors(parameters):
            errors.add(f"{at}.parameters", error)


def _recipients(items: Any, errors: Violations) -> None:
    where = "recipient_and_params"
    if not isinstance(items, list) or not 1 <= len(items) <= wire.MAX_RECIPIENTS:
        errors.add(where, f"must contain 1 to {wire.MAX_RECIPIENTS} items")
        return
    for i, item in enumerate(items):
        if _plain_recipient(item):
            continue
        if not isinstance(item, dict):
            errors.add(f"{where}[{i}]", "must be an object")
            continue
        recipient = item.get("recipient")
        if not isinstance(recipient, dict):
            errors.add(f"{where}[{i}].recipient", "recipient is required")
        elif "contact_id" in recipient:
            if not recipient["contact_id"] or "identified_by" in recipient:
                errors.add(f"{where}[{i}].recipient", "contact_id or identified_by")
        else:
            _identities(recipient.get("identified_by"), f"{where}[{i}]", errors)
        if "parameters" in item:
            _string_map(item["parameters"], f"{where}[{i}].parameters", errors)
        if "message_metadata" in item:
            _metadata(
                item["message_metadata"], f"{where}[{i}].message_metadata", errors
            )
        if "conversation_metadata" in item:
            _metadata(
                item["conversation_metadata"],
                f"{where}[{i}].conversation_metadata",
                errors,
            )


def _plain_recipient(item: Any) -> bool:
    """True for a recipient that is valid for sure (the usual case), checked
    inline: at 1000 per batch, the function calls of the detailed checks
    below would be most of the simulator's time."""
    if type(item) is not dict:
        return False
    recipient = item.get("recipient")
    if type(recipient) is not dict or len(recipient) != 1:
        return False
    by = recipient.get("identified_by")
    identities = by.get("channel_identities") if type(by) is dict else None
    if type(identities) is not list or not identities:
        return False
    for ident in identities:
        if (
            type(ident) is not dict
            or ident.get("channel") not in CHANNELS
            or type(ident.get("identity")) is not str
            or not ident["identity"]
        ):
            return False
    for name in ("message_metadata", "conversation_metadata"):
        meta = item.get(name)
        if meta is not None and (type(meta) is not dict or RESERVED in meta):
            return False
    params = item.get("parameters")
    if params is not None:
        if type(params) is not dict:
            return False
        for value in params.values():
            if type(value) is not str:
                return False
    return True


def _identities(identified_by: Any, where: str, errors: Violations) -> None:
    where += ".recipient.identified_by.channel_identities"
    items = (
        identified_by.get("channel_identities")
        if isinstance(identified_by, dict)
        else None
    )
    if not isinstance(items, list) or not items:
        errors.add(where, "at least one channel identity is required")
        return
    for j, ident in enumerate(items):
        if not isinstance(ident, dict) or not ident.get("identity"):
            errors.add(f"{where}[{j}].identity", "identity is required")
        elif ident.get("channel") not in CHANNELS:
            errors.add(f"{where}[{j}].channel", _bad_channel(ident.get("channel")))


def _metadata(value: Any, where: str, errors: Violations) -> None:
    if value is None:
        return
    if not isinstance(value, dict):
        errors.add(where, "must be an object")
    elif wire.REFUSE_RESERVED_METADATA_KEY and RESERVED in value:
        errors.add(f"{where}.{RESERVED}", f"{RESERVED} is reserved and set by Sinch")


def _string_map(value: Any, where: str, errors: Violations) -> None:
    if value is None:
        return
    if not isinstance(value, dict):
        errors.add(where, "must be an object of strings")
        return
    for key, item in value.items():
        if not isinstance(item, str):
            errors.add(f"{where}.{key}", "must be a string")
        elif (
            len(item) > wire.CHANNEL_PROPERTY_MAX_LEN and where == "channel_properties"
        ):
            errors.add(f"{where}.{key}", "too long")


def _ttl(ttl: Any, errors: Violations) -> None:
    if ttl is None:
        return
    match = wire.TTL_PATTERN.match(ttl) if isinstance(ttl, str) else None
    if not match or not wire.TTL_MIN_S <= int(match.group(1)) <= wire.TTL_MAX_S:
        errors.add("ttl", f'must be "<seconds>s", {wire.TTL_MIN_S} seconds or more')


def _send_after(value: Any, now: datetime, errors: Violations) -> Schedule:
    if value is None:
        return Schedule(now, scheduled=False)
    try:
        asked = wire.parse_time(value) if isinstance(value, str) else None
    except ValueError:
        asked = None
    if asked is None:
        errors.add("send_after", "must be an RFC 3339 date-time")
        return Schedule(now, scheduled=False)
    if asked - now <= wire.SEND_AFTER_IMMEDIATE_WITHIN:
        return Schedule(asked, scheduled=False)
    effective = round_up(asked)
    if effective - now > wire.SEND_AFTER_MAX_AHEAD:
        errors.add("send_after", "must be at most 7 days in the future")
    return Schedule(effective, scheduled=True)


def round_up(moment: datetime) -> datetime:
    """Up to the next 5-minute mark (a mark itself stays)."""
    step = int(wire.SEND_AFTER_ROUNDING.total_seconds())
    stamp = moment.timestamp()
    whole = int(stamp)
    if whole % step == 0 and stamp == whole:
        return moment.replace(microsecond=0)
    return datetime.fromtimestamp((whole // step + 1) * step, moment.tzinfo)


def _bad_channel(channel: Any) -> str:
    return f"Unknown channel {channel!r}"


def validate_contacts(data: dict) -> list[dict]:
    items = data.get("contacts")
    errors = Violations()
    if not isinstance(items, list) or not 1 <= len(items) <= wire.MAX_CONTACTS:
        errors.add("contacts", f"must contain 1 to {wire.MAX_CONTACTS} items")
        errors.raise_if_any()
    for i, contact in enumerate(items):
        if not isinstance(contact, dict):
            errors.add(f"contacts[{i}]", "must be an object")
            continue
        _identities(
            {"channel_identities": contact.get("channel_identities")},
            f"contacts[{i}]",
            errors,
        )
        if not contact.get("language"):
            errors.add(f"contacts[{i}].language", "language is required")
    errors.raise_if_any()
    return items


def validate_ids(data: dict, name: str, limit: int) -> list[str]:
    ids = data.get(name)
    if (
        not isinstance(ids, list)
        or not 1 <= len(ids) <= limit
        or not all(isinstance(i, str) and i for i in ids)
    ):
        raise ApiError(400, "Invalid argument", [(name, f"1 to {limit} ids")])
    return ids


def validate_consents(data: dict, *, app_id: str) -> list[dict]:
    errors = Violations()
    if not data.get("app_id"):
        errors.add("app_id", "app_id is required")
    elif data["app_id"] != app_id:
        errors.add("app_id", f"Unknown app {data['app_id']!r}")
    records = data.get("consent_records")
    if (
        not isinstance(records, list)
        or not 1 <= len(records) <= wire.MAX_CONSENT_RECORDS
    ):
        errors.add("consent_records", f"must contain 1 to {wire.MAX_CONSENT_RECORDS}")
        records = []
    for i, record in enumerate(records):
        if not isinstance(record, dict) or not record.get("identification"):
            errors.add(f"consent_records[{i}].identification", "is required")
        elif record.get("consent_type", "OPT_OUT_ALL") not in wire.CONSENT_TYPES:
            errors.add(f"consent_records[{i}].consent_type", "unknown consent type")
    errors.raise_if_any()
    return records
