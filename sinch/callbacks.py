"""Callbacks (webhook events) Sinch sends, parsed into dataclasses.

`parse_callback` never raises for a well-formed JSON object: a kind it does
not know becomes an `UnknownCallback` that keeps the raw payload, because an
event must never be lost just because Sinch added a trigger.
"""

import hashlib
import json
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sinch import variants, wire
from sinch.payloads import ChannelIdentity


@dataclass(frozen=True)
class Reason:
    code: str
    description: str = ""
    sub_code: str = ""

    @classmethod
    def from_wire(cls, data: Any) -> "Reason | None":
        if not isinstance(data, dict) or not data.get("code"):
            return None
        return cls(
            str(data["code"]),
            str(data.get("description", "")),
            str(data.get("sub_code", "")),
        )


@dataclass(frozen=True)
class Envelope:
    """Fields every callback carries."""

    app_id: str
    project_id: str
    accepted_time: datetime | None
    event_time: datetime | None
    message_metadata: str
    correlation_id: str


@dataclass(frozen=True)
class Callback:
    kind: str  # the trigger, e.g. "MESSAGE_DELIVERY"
    envelope: Envelope
    raw: dict = field(repr=False)

    @property
    def dedupe_key(self) -> str:
        """Identifies the event, so a duplicate delivery is recognised."""
        body = json.dumps(self.raw, sort_keys=True, separators=(",", ":"))
        return f"{self.kind}:{hashlib.sha256(body.encode()).hexdigest()}"


@dataclass(frozen=True)
class DeliveryReport(Callback):
    message_id: str = ""
    conversation_id: str = ""
    status: str = ""
    channel_identity: ChannelIdentity | None = None
    contact_id: str = ""
    reason: Reason | None = None
    # The receipt's metadata string, parsed: merged message metadata.
    metadata: dict = field(default_factory=dict)
    batch_id: str = ""
    processing_mode: str = ""

    @property
    def dedupe_key(self) -> str:
        channel = self.channel_identity.channel if self.channel_identity else ""
        return f"{self.kind}:{self.message_id}:{self.status}:{channel}"


@dataclass(frozen=True)
class BatchStatusUpdate(Callback):
    batch_id: str = ""
    status: str = ""  # opaque: REST enum or anything else Sinch sends
    metadata: dict = field(default_factory=dict)

    @property
    def dedupe_key(self) -> str:
        return f"{self.kind}:{self.batch_id}:{self.status}"


@dataclass(frozen=True)
class ProcessingFailure:
    message_index: int | None  # as Sinch wrote it (wire.PROCESSING_REPORT_INDEX_BASE)
    reason: Reason | None
    # The recipient the entry names, when it names one (UNCONFIRMED, §5.3).
    channel_identity: ChannelIdentity | None = None


@dataclass(frozen=True)
class BatchProcessingReport(Callback):
    batch_id: str = ""
    failures: tuple[ProcessingFailure, ...] = ()


@dataclass(frozen=True)
class InboundMessage(Callback):
    message_id: str = ""
    channel_identity: ChannelIdentity | None = None
    text: str = ""  # the text of a text message, else ""
    contact_message: dict = field(default_factory=dict)
    contact_id: str = ""
    conversation_id: str = ""
    sender_id: str = ""
    # Conversation metadata of the last message sent there, when Sinch kept it.
    conversation_metadata: dict = field(default_factory=dict)
    batch_id: str = ""
    # A quick-reply or button answer: the title(s) and postback data found in
    # it (wire.INBOUND_ANSWER_KINDS), else ().
    answers: tuple[str, ...] = ()

    @property
    def dedupe_key(self) -> str:
        return f"{self.kind}:{self.message_id}"


@dataclass(frozen=True)
class ConsentNotification(Callback):
    """OPT_IN or OPT_OUT (consent management only)."""

    request_id: str = ""
    channel_identity: ChannelIdentity | None = None
    contact_id: str = ""
    status: str = ""


@dataclass(frozen=True)
class ContactNotification(Callback):
    """CONTACT_CREATE, CONTACT_DELETE, CONTACT_MERGE or CONTACT_UPDATE."""

    contact_id: str = ""
    contact: dict = field(default_factory=dict)


@dataclass(frozen=True)
class UnknownCallback(Callback):
    pass


def parse_callback(body: bytes | str | dict) -> Callback:
    """The callback in `body` (raw bytes as received, or already decoded).

    Raises ValueError only when the body is not a JSON object.
    """
    data = body if isinstance(body, dict) else json.loads(body)
    if not isinstance(data, dict):
        raise ValueError("a callback is a JSON object")
    envelope = Envelope(
        app_id=str(data.get("app_id", "")),
        project_id=str(data.get("project_id", "")),
        accepted_time=_time(data.get("accepted_time")),
        event_time=_time(data.get("event_time")),
        message_metadata=str(data.get("message_metadata") or ""),
        correlation_id=str(data.get("correlation_id") or ""),
    )
    for key, value in data.items():
        if not isinstance(value, dict):
            continue
        if key in wire.CALLBACK_KEYS:
            parser = _PARSERS[wire.CALLBACK_KEYS[key]]
            return parser(wire.CALLBACK_KEYS[key], envelope, data, value)
        batch_kind = variants.batch_callback_kind(key)
        if batch_kind == variants.STATUS_UPDATE:
            return _batch_status(envelope, data, value)
        if batch_kind == variants.PROCESSING_REPORT:
            return _processing_report(envelope, data, value)
        if batch_kind == variants.UNKNOWN:
            return UnknownCallback(wire.UNKNOWN_BATCH_CALLBACK_KIND, envelope, data)
    return UnknownCallback("UNKNOWN", envelope, data)


def _delivery(kind, envelope, data, item) -> DeliveryReport:
    metadata = _json_object(item.get("metadata"))
    return DeliveryReport(
        kind,
        envelope,
        data,
        message_id=str(item.get("message_id", "")),
        conversation_id=str(item.get("conversation_id", "")),
        status=str(item.get("status", "")),
        channel_identity=_identity(item.get("channel_identity")),
        contact_id=str(item.get("contact_id", "")),
        reason=Reason.from_wire(item.get("reason")),
        metadata=metadata,
        batch_id=str(metadata.get(wire.RESERVED_METADATA_KEY, "")),
        processing_mode=str(item.get("processing_mode", "")),
    )


def _inbound(kind, envelope, data, item) -> InboundMessage:
    contact_message = item.get("contact_message")
    contact_message = contact_message if isinstance(contact_message, dict) else {}
    text_message = contact_message.get("text_message")
    conversation_metadata = _json_object(envelope.message_metadata)
    metadata = {"message_metadata": conversation_metadata}
    metadata["metadata"] = _json_object(item.get("metadata"))
    batch_id = next(
        (
            str(metadata[where][wire.RESERVED_METADATA_KEY])
            for where in wire.INBOUND_BATCH_ID_SOURCES
            if metadata.get(where, {}).get(wire.RESERVED_METADATA_KEY)
        ),
        "",
    )
    return InboundMessage(
        kind,
        envelope,
        data,
        message_id=str(item.get("id", "")),
        channel_identity=_identity(item.get("channel_identity")),
        text=str(text_message.get("text", ""))
        if isinstance(text_message, dict)
        else "",
        contact_message=contact_message,
        contact_id=str(item.get("contact_id", "")),
        conversation_id=str(item.get("conversation_id", "")),
        sender_id=str(item.get("sender_id", "")),
        conversation_metadata=conversation_metadata,
        batch_id=batch_id,
        answers=_answers(contact_message),
    )


def _answers(contact_message: dict) -> tuple[str, ...]:
    """The strings of a quick-reply or button answer, in the order found."""
    found: list[str] = []

    def walk(value: Any, depth: int) -> None:
        if depth > wire.INBOUND_ANSWER_DEPTH or not isinstance(value, dict):
            return
        for key, inner in value.items():
            if isinstance(inner, str) and key in wire.INBOUND_ANSWER_FIELDS:
                if inner.strip() and inner not in found:
                    found.append(inner)
            elif isinstance(inner, dict):
                walk(inner, depth + 1)
            elif isinstance(inner, list):
                for entry in inner[: wire.MAX_CHOICES]:
                    walk(entry, depth + 1)

    for kind in wire.INBOUND_ANSWER_KINDS:
        walk(contact_message.get(kind), 1)
    return tuple(found)


def _consent(kind, envelope, data, item) -> ConsentNotification:
    identity = None
    if item.get("channel") or item.get("identity"):
        identity = ChannelIdentity(
            str(item.get("channel", "")), str(item.get("identity", ""))
        )
    return ConsentNotification(
        kind,
        envelope,
        data,
        request_id=str(item.get("request_id", "")),
        channel_identity=identity,
        contact_id=str(item.get("contact_id", "")),
        status=str(item.get("status", "")),
    )


def _contact(kind, envelope, data, item) -> ContactNotification:
    contact = item.get("contact")
    contact = contact if isinstance(contact, dict) else {}
    return ContactNotification(
        kind, envelope, data, contact_id=str(contact.get("id", "")), contact=contact
    )


def _batch_status(envelope, data, item) -> BatchStatusUpdate:
    return BatchStatusUpdate(
        "BATCH_STATUS_UPDATE",
        envelope,
        data,
        batch_id=str(item.get("batch_id") or ""),
        status=str(item.get("status") or "").strip().upper(),
        metadata=variants.batch_metadata(item),
    )


def _processing_report(envelope, data, item) -> BatchProcessingReport:
    failures = []
    for entry in variants.report_entries(item):
        identity = variants.entry_identity(entry)
        failures.append(
            ProcessingFailure(
                message_index=variants.entry_index(entry),
                reason=Reason.from_wire(entry.get("reason")),
                channel_identity=ChannelIdentity(*identity) if identity else None,
            )
        )
    return BatchProcessingReport(
        "BATCH_PROCESSING_REPORT",
        envelope,
        data,
        batch_id=str(item.get("batch_id") or ""),
        failures=tuple(failures),
    )


_PARSERS = {
    "MESSAGE_DELIVERY": _delivery,
    "MESSAGE_INBOUND": _inbound,
    "OPT_IN": _consent,
    "OPT_OUT": _consent,
    "CONTACT_CREATE": _contact,
    "CONTACT_DELETE": _contact,
    "CONTACT_MERGE": _contact,
    "CONTACT_UPDATE": _contact,
}


def _identity(data: Any) -> ChannelIdentity | None:
    return ChannelIdentity.from_wire(data) if isinstance(data, dict) else None


def _json_object(text: Any) -> dict:
    """Sinch sends metadata as a JSON string; anything else reads as {}."""
    if isinstance(text, dict):
        return text
    if not isinstance(text, str) or not text:
        return {}
    try:
        value = json.loads(text)
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}


def _time(value: Any) -> datetime | None:
    if not isinstance(value, str) or not value:
        return None
    try:
        return wire.parse_time(value)
    except ValueError:
        return None
