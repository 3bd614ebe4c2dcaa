"""Batch API request and response bodies as dataclasses.

Requests are built with `to_wire()`; responses are read with `from_wire()`,
which raises SinchProtocolError for a body that lacks what the contract
promises. Nothing outside the sinch package handles these dicts.
"""

import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from json.encoder import encode_basestring as _quote
from types import MappingProxyType
from typing import Any, NamedTuple

from sinch import variants, wire
from sinch.errors import SinchProtocolError
from sinch.messages import (  # noqa: F401  (re-exported: the message parts)
    AppMessage,
    CalendarEvent,
    Card,
    Choice,
    ContactEmail,
    ContactPhone,
    ListItem,
    ListSection,
    omni_template_reference,
    omni_text,
)

EMPTY: Mapping[str, str] = MappingProxyType({})
# After a key, a value that is not a string (a number, true, null, an array
# or an object); in a value, an escaped quote before a colon matches too.
_NOT_A_STRING_VALUE = re.compile(r'"\s*:\s*[^"\s]')


class EncodedParameters(str):
    """A recipient's parameters as the text of a JSON object of strings, sent
    as they are: a launch's million snapshots are read from the database as
    such text, and decoding each to encode it again was most of a batch's
    client-side cost. Made by `encoded_parameters`."""


def encoded_parameters(text: str) -> EncodedParameters | None:
    """`text` (valid JSON, as a database keeps it) to send as it is, if it is
    surely an object whose values are all strings; None: decode it."""
    if text[:1] != "{" or text[-1:] != "}" or _NOT_A_STRING_VALUE.search(text):
        return None
    return EncodedParameters(text)


def _has_parameters(parameters) -> bool:
    return bool(parameters) and parameters != "{}"


def _parameters_json(parameters) -> str:
    if parameters.__class__ is EncodedParameters:
        return parameters
    return _json_map(parameters)


def _plain(mapping: Mapping[str, Any]) -> dict[str, str]:
    """A dict of strings for json (values that are not strings become str)."""
    return {str(k): v if type(v) is str else str(v) for k, v in mapping.items()}


def _text(value: Any) -> str:
    """A JSON string literal (C-accelerated; non-strings are str()-ed)."""
    return _quote(value if type(value) is str else str(value))


def _json_map(mapping: Mapping[str, Any]) -> str:
    return "{" + ",".join([_text(k) + ":" + _text(v) for k, v in mapping.items()]) + "}"


class ChannelIdentity(NamedTuple):
    channel: str
    identity: str
    app_id: str = ""

    def to_wire(self) -> dict[str, str]:
        if self.app_id:
            return {
                "channel": self.channel,
                "identity": self.identity,
                "app_id": self.app_id,
            }
        return {"channel": self.channel, "identity": self.identity}

    def to_json(self) -> str:
        app = ',"app_id":' + _text(self.app_id) if self.app_id else ""
        return (
            '{"channel":'
            + _text(self.channel)
            + ',"identity":'
            + _text(self.identity)
            + app
            + "}"
        )

    @classmethod
    def from_wire(cls, data: Any) -> "ChannelIdentity":
        data = data if isinstance(data, dict) else {}
        return cls(
            channel=str(data.get("channel", "")),
            identity=str(data.get("identity", "")),
            app_id=str(data.get("app_id", "")),
        )

    @property
    def e164(self) -> str:
        """The identity with its "+" back for phone-number channels.

        Sinch writes phone identities without "+" in callbacks.
        """
        from sinch.channels import PHONE_CHANNELS

        if self.channel in PHONE_CHANNELS and self.identity.isdigit():
            return "+" + self.identity
        return self.identity


class Recipient(NamedTuple):
    """One entry of recipient_and_params: identities or a contact id.

    A NamedTuple, not a dataclass: a million of them are built per campaign.
    """

    identities: Sequence[ChannelIdentity] = ()
    contact_id: str = ""
    # Or EncodedParameters.
    parameters: Mapping[str, str] = EMPTY
    message_metadata: Mapping[str, str] = EMPTY
    conversation_metadata: Mapping[str, str] = EMPTY

    def to_wire(self) -> dict[str, Any]:
        if self.contact_id:
            recipient: dict[str, Any] = {"contact_id": self.contact_id}
        else:
            recipient = {
                "identified_by": {
                    "channel_identities": [i.to_wire() for i in self.identities]
                }
            }
        data: dict[str, Any] = {"recipient": recipient}
        if _has_parameters(self.parameters):
            parameters = self.parameters
            if parameters.__class__ is EncodedParameters:
                parameters = json.loads(parameters)
            data["parameters"] = _plain(parameters)
        if self.message_metadata:
            data["message_metadata"] = _plain(self.message_metadata)
        if self.conversation_metadata:
            data["conversation_metadata"] = _plain(self.conversation_metadata)
        return data

    def to_json(self) -> str:
        """The same as json.dumps(to_wire()), three times faster."""
        if self.contact_id:
            text = '{"recipient":{"contact_id":' + _text(self.contact_id) + "}"
        else:
            identities = ",".join([i.to_json() for i in self.identities])
            text = '{"recipient":{"identified_by":{"channel_identities":['
            text += identities + "]}}"
        if _has_parameters(self.parameters):
            text += ',"parameters":' + _parameters_json(self.parameters)
        if self.message_metadata:
            text += ',"message_metadata":' + _json_map(self.message_metadata)
        if self.conversation_metadata:
            text += ',"conversation_metadata":' + _json_map(self.conversation_metadata)
        return text + "}"


@dataclass(frozen=True)
class SendBatchRequest:
    """POST /messages. `send_after` must be aware; `ttl_s` is whole seconds."""

    message: AppMessage
    recipients: Sequence[Recipient]
    app_id: str = ""
    batch_metadata: Mapping[str, str] = field(default_factory=dict)
    message_metadata: Mapping[str, str] = field(default_factory=dict)
    conversation_metadata: Mapping[str, str] = field(default_factory=dict)
    send_after: datetime | None = None
    ttl_s: int | None = None
    channel_priority_order: Sequence[str] = ()
    channel_properties: Mapping[str, str] = field(default_factory=dict)
    processing_strategy: str = ""
    callback_url: str = ""
    correlation_id: str = ""

    def to_wire(self) -> dict[str, Any]:
        data = self._envelope()
        data["recipient_and_params"] = [r.to_wire() for r in self.recipients]
        return data

    def to_json(self, *, app_id: str = "") -> bytes:
        """The request body; `app_id` is used when the request has none.

        Recipients are encoded by hand (see Recipient.to_json): at 1000 per
        batch, json.dumps of dicts is most of a send's client-side cost.
        """
        data = self._envelope()
        if app_id and "app_id" not in data:
            data = {"app_id": app_id, **data}
        head = json.dumps(data, separators=(",", ":"), ensure_ascii=False)
        recipients = _recipients_json(self.recipients)
        return (head[:-1] + ',"recipient_and_params":[' + recipients + "]}").encode()

    def _envelope(self) -> dict[str, Any]:
        data: dict[str, Any] = {}
        if self.app_id:
            data["app_id"] = self.app_id
        data["message"] = self.message.to_wire()
        for name in (
            "batch_metadata",
            "message_metadata",
            "conversation_metadata",
            "channel_properties",
        ):
            if value := getattr(self, name):
                data[name] = dict(value)
        if self.send_after is not None:
            if self.send_after.tzinfo is None:
                raise ValueError("send_after must be an aware datetime")
            data["send_after"] = wire.format_time(self.send_after)
        if self.ttl_s is not None:
            data["ttl"] = f"{self.ttl_s}s"
        if self.channel_priority_order:
            data["channel_priority_order"] = list(self.channel_priority_order)
        for name in ("processing_strategy", "callback_url", "correlation_id"):
            if value := getattr(self, name):
                data[name] = value
        return data


@dataclass(frozen=True)
class SendBatchResponse:
    batch_id: str
    # Effective send time after Sinch's rounding: show this, not what was asked.
    send_after: datetime | None

    @classmethod
    def from_wire(cls, data: Any) -> "SendBatchResponse":
        batch_id = _required_str(data, "batch_id")
        return cls(batch_id=batch_id, send_after=_optional_time(data, "send_after"))


@dataclass(frozen=True)
class BatchStatus:
    batch_id: str
    # One of wire.BATCH_STATUSES; kept as Sinch wrote it if it is another.
    status: str
    send_after: datetime | None
    metadata: Mapping[str, str]

    @classmethod
    def from_wire(cls, data: Any) -> "BatchStatus":
        meta = variants.batch_metadata(data) if isinstance(data, dict) else {}
        return cls(
            batch_id=_required_str(data, "batch_id"),
            status=_required_str(data, "status"),
            send_after=_optional_time(data, "send_after"),
            metadata={str(k): str(v) for k, v in meta.items()},
        )

    @classmethod
    def list_from_wire(cls, data: Any) -> list["BatchStatus"]:
        """Every shape of the by-metadata list (sinch.variants.batch_list)."""
        try:
            items = variants.batch_list(data)
        except ValueError as exc:
            raise SinchProtocolError(f"unreadable batch list: {exc}") from None
        return [cls.from_wire(item) for item in items]


@dataclass(frozen=True)
class ContactCreate:
    identities: Sequence[ChannelIdentity]
    language: str = "EN_US"
    display_name: str = ""
    email: str = ""
    external_id: str = ""
    metadata: str = ""
    channel_priority: Sequence[str] = ()

    def to_wire(self) -> dict[str, Any]:
        data: dict[str, Any] = {
            "channel_identities": [i.to_wire() for i in self.identities],
            "language": self.language,
        }
        for name in ("display_name", "email", "external_id", "metadata"):
            if value := getattr(self, name):
                data[name] = value
        if self.channel_priority:
            data["channel_priority"] = list(self.channel_priority)
        return data


@dataclass(frozen=True)
class ConsentRecord:
    identification: str
    consent_type: str = "OPT_OUT_ALL"

    def to_wire(self) -> dict[str, str]:
        return {
            "identification": self.identification,
            "consent_type": self.consent_type,
        }


@dataclass(frozen=True)
class ConsentInsertResponse:
    batch_id: str

    @classmethod
    def from_wire(cls, data: Any) -> "ConsentInsertResponse":
        return cls(batch_id=_required_str(data, "batch_id"))


def _required_str(data: Any, key: str) -> str:
    value = data.get(key) if isinstance(data, dict) else None
    if not isinstance(value, str) or not value:
        raise SinchProtocolError(f"response without {key}")
    return value


def _optional_time(data: Any, key: str) -> datetime | None:
    value = data.get(key) if isinstance(data, dict) else None
    if not value:
        return None
    try:
        return wire.parse_time(str(value))
    except ValueError as exc:
        raise SinchProtocolError(f"unreadable {key}") from exc


_ONE_IDENTITY = (
    '{"recipient":{"identified_by":{"channel_identities":'
    '[{"channel":%s,"identity":%s}]}}'
)
_IDENTITIES = '{"recipient":{"identified_by":{"channel_identities":[%s]}}'


def _recipients_json(recipients: Sequence[Recipient]) -> str:
    """json of recipient_and_params, fast: the usual recipient (one identity,
    or several in fallback order; string parameters) costs one format and a
    few C calls. Anything else, or a value that is not a string, takes
    Recipient.to_json."""
    quote = _quote
    parts = []
    for r in recipients:
        try:
            identities = r.identities
            if r.contact_id or not identities:
                raise TypeError
            if len(identities) == 1 and not identities[0].app_id:
                text = _ONE_IDENTITY % (
                    quote(identities[0].channel),
                    quote(identities[0].identity),
                )
            else:
                text = _IDENTITIES % ",".join([i.to_json() for i in identities])
            parameters = r.parameters
            if parameters.__class__ is EncodedParameters:
                if parameters != "{}":
                    text += ',"parameters":' + parameters
            elif parameters:
                text += (
                    ',"parameters":{'
                    + ",".join(
                        [quote(k) + ":" + quote(v) for k, v in parameters.items()]
                    )
                    + "}"
                )
            if r.message_metadata:
                text += (
                    ',"message_metadata":{'
                    + ",".join(
                        [
                            quote(k) + ":" + quote(v)
                            for k, v in r.message_metadata.items()
                        ]
                    )
                    + "}"
                )
            if r.conversation_metadata:
                raise TypeError
            parts.append(text + "}")
        except TypeError:
            parts.append(r.to_json())
    return ",".join(parts)
