"""The Batch API's `message` object (Sinch's AppMessage) and its parts.

Field names and nesting follow Sinch's Conversation API models (the Python
SDK's sinch/domains/conversation/models/v1/messages, the Node SDK's
models/v1): one message kind key, plus the optional per-channel overrides
`explicit_channel_message`, `explicit_channel_omni_message` and
`channel_specific_message`. Empty optional parts are left out. Every text may
hold `${param}` placeholders, which Sinch fills per recipient. Re-exported by
sinch.payloads; nothing outside the sinch package builds these dicts.
"""

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sinch import wire

EMPTY: Mapping[str, str] = {}


def _plain(mapping: Mapping[str, Any]) -> dict[str, str]:
    return {str(k): v if type(v) is str else str(v) for k, v in mapping.items()}


def _put(data: dict[str, Any], key: str, value: Any) -> dict[str, Any]:
    """`data` with `key` set when `value` is not empty."""
    if value:
        data[key] = value
    return data


@dataclass(frozen=True)
class CalendarEvent:
    """What a "save the date" choice adds to the recipient's calendar."""

    start: datetime
    end: datetime
    title: str
    fallback_url: str
    description: str = ""


@dataclass(frozen=True)
class Choice:
    """One reply button or call to action of a card, choice or carousel.

    A text reply by default; with `url` a link, with `phone_number` a call,
    with `calendar` a calendar entry. `postback_data` comes back in the
    recipient's choice_response_message instead of the title.
    """

    title: str
    url: str = ""
    phone_number: str = ""
    calendar: CalendarEvent | None = None
    postback_data: str = ""

    def to_wire(self) -> dict[str, Any]:
        if self.url:
            data: dict[str, Any] = {
                "url_message": {"title": self.title, "url": self.url}
            }
        elif self.phone_number:
            data = {
                "call_message": {
                    "title": self.title,
                    "phone_number": self.phone_number,
                }
            }
        elif self.calendar is not None:
            event = self.calendar
            content = {
                "title": self.title,
                "event_start": wire.format_time(event.start),
                "event_end": wire.format_time(event.end),
                "event_title": event.title,
            }
            _put(content, "event_description", event.description)
            content["fallback_url"] = event.fallback_url
            data = {"calendar_message": content}
        else:
            data = {"text_message": {"text": self.title}}
        return _put(data, "postback_data", self.postback_data)


def _choices(choices: Sequence["Choice | str"], limit: int) -> list[dict[str, Any]]:
    if len(choices) > limit:
        raise ValueError(f"at most {limit} choices")
    return [(Choice(c) if isinstance(c, str) else c).to_wire() for c in choices]


@dataclass(frozen=True)
class Card:
    """A card: a title, a description, an image or video, and choices."""

    title: str = ""
    description: str = ""
    media_url: str = ""
    choices: Sequence[Choice | str] = ()

    def to_wire(self) -> dict[str, Any]:
        content: dict[str, Any] = {}
        _put(content, "title", self.title)
        _put(content, "description", self.description)
        if self.media_url:
            content["media_message"] = {"url": self.media_url}
        if self.choices:
            content["choices"] = _choices(self.choices, wire.MAX_CHOICES)
        return content


@dataclass(frozen=True)
class ListItem:
    """One choice of a list message (Sinch's ChoiceItem)."""

    title: str
    description: str = ""
    postback_data: str = ""

    def to_wire(self) -> dict[str, Any]:
        item: dict[str, Any] = {"title": self.title}
        _put(item, "description", self.description)
        _put(item, "postback_data", self.postback_data)
        return {"choice": item}


@dataclass(frozen=True)
class ListSection:
    title: str
    items: Sequence[ListItem]

    def to_wire(self) -> dict[str, Any]:
        section: dict[str, Any] = _put({}, "title", self.title)
        section["items"] = [item.to_wire() for item in self.items]
        return section


@dataclass(frozen=True)
class ContactPhone:
    phone_number: str
    type: str = ""  # e.g. WORK, HOME

    def to_wire(self) -> dict[str, str]:
        return _put({"phone_number": self.phone_number}, "type", self.type)


@dataclass(frozen=True)
class ContactEmail:
    email_address: str
    type: str = ""

    def to_wire(self) -> dict[str, str]:
        return _put({"email_address": self.email_address}, "type", self.type)


def template_reference(
    template_id: str,
    version: str,
    *,
    language_code: str = "",
    parameters: Mapping[str, str] = EMPTY,
) -> dict[str, Any]:
    """A reference to a template of Sinch's Template Management (omni template)."""
    reference: dict[str, Any] = {"template_id": template_id, "version": version}
    _put(reference, "language_code", language_code)
    if parameters:
        reference["parameters"] = _plain(parameters)
    return reference


@dataclass(frozen=True, slots=True)
class AppMessage:
    """One message definition: its kind (e.g. "text_message") and content,
    and `extras`: the per-channel overrides (wire.MESSAGE_EXTRA_KEYS)."""

    kind: str
    content: Mapping[str, Any]
    extras: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.kind not in wire.MESSAGE_KINDS:
            raise ValueError(f"unknown message kind {self.kind!r}")
        unknown = set(self.extras) - set(wire.MESSAGE_EXTRA_KEYS)
        if unknown:
            raise ValueError(f"unknown message keys {sorted(unknown)}")

    @classmethod
    def text(cls, text: str) -> "AppMessage":
        return cls("text_message", {"text": text})

    @classmethod
    def media(cls, url: str) -> "AppMessage":
        return cls("media_message", {"url": url})

    @classmethod
    def card(
        cls,
        *,
        title: str = "",
        description: str = "",
        media_url: str = "",
        choices: Sequence[Choice | str] = (),
    ) -> "AppMessage":
        """A card; empty parts are left out; a choice given as text is a reply."""
        card = Card(title, description, media_url, choices)
        return cls("card_message", card.to_wire())

    @classmethod
    def choice(cls, text: str, choices: Sequence[Choice | str]) -> "AppMessage":
        """A prompt with choices (at most wire.MAX_CHOICES)."""
        content: dict[str, Any] = {"choices": _choices(choices, wire.MAX_CHOICES)}
        if text:
            content = {"text_message": {"text": text}, **content}
        return cls("choice_message", content)

    @classmethod
    def carousel(
        cls, cards: Sequence[Card], choices: Sequence[Choice | str] = ()
    ) -> "AppMessage":
        """Cards shown side by side, and up to three choices below them."""
        if not 1 <= len(cards) <= wire.MAX_CAROUSEL_CARDS:
            raise ValueError(f"1 to {wire.MAX_CAROUSEL_CARDS} cards")
        content: dict[str, Any] = {"cards": [card.to_wire() for card in cards]}
        if choices:
            content["choices"] = _choices(choices, wire.MAX_CAROUSEL_CHOICES)
        return cls("carousel_message", content)

    @classmethod
    def location(
        cls, *, title: str, latitude: float, longitude: float, label: str = ""
    ) -> "AppMessage":
        content: dict[str, Any] = {
            "coordinates": {"latitude": latitude, "longitude": longitude},
            "title": title,
        }
        return cls("location_message", _put(content, "label", label))

    @classmethod
    def list(
        cls,
        *,
        title: str,
        sections: Sequence[ListSection],
        description: str = "",
        media_url: str = "",
    ) -> "AppMessage":
        """A list of choices in sections (a choice list; not a product list)."""
        items = sum(len(section.items) for section in sections)
        if not sections or not 1 <= items <= wire.MAX_LIST_ITEMS:
            raise ValueError(f"1 to {wire.MAX_LIST_ITEMS} list items")
        if len(sections) > wire.MAX_LIST_SECTIONS:
            raise ValueError(f"at most {wire.MAX_LIST_SECTIONS} sections")
        content: dict[str, Any] = {"title": title}
        _put(content, "description", description)
        if media_url:
            content["media"] = {"url": media_url}
        content["sections"] = [section.to_wire() for section in sections]
        return cls("list_message", content)

    @classmethod
    def contact_info(
        cls,
        *,
        full_name: str,
        phone_numbers: Sequence[ContactPhone],
        email_addresses: Sequence[ContactEmail] = (),
        company: str = "",
        urls: Sequence[str] = (),
    ) -> "AppMessage":
        """A contact card (vCard-like): a name and at least one phone number."""
        if not phone_numbers:
            raise ValueError("a contact needs at least one phone number")
        content: dict[str, Any] = {
            "name": {"full_name": full_name},
            "phone_numbers": [p.to_wire() for p in phone_numbers],
        }
        if email_addresses:
            content["email_addresses"] = [e.to_wire() for e in email_addresses]
        if company:
            content["organization"] = {"company": company}
        if urls:
            content["urls"] = [{"url": url} for url in urls]
        return cls("contact_info_message", content)

    @classmethod
    def channel_template(
        cls,
        channel: str,
        template_id: str,
        *,
        language_code: str = "",
        parameters: Mapping[str, str] = EMPTY,
    ) -> "AppMessage":
        """A template registered on one channel (e.g. a WhatsApp template)."""
        template: dict[str, Any] = {"template_id": template_id}
        if language_code:
            template["language_code"] = language_code
        if parameters:
            template["parameters"] = _plain(parameters)
        return cls("template_message", {"channel_template": {channel: template}})

    @classmethod
    def omni_template(
        cls,
        template_id: str,
        version: str,
        *,
        language_code: str = "",
        parameters: Mapping[str, str] = EMPTY,
    ) -> "AppMessage":
        """A channel-agnostic template of Sinch's Template Management."""
        reference = template_reference(
            template_id, version, language_code=language_code, parameters=parameters
        )
        return cls("template_message", {"omni_template": reference})

    def with_overrides(
        self,
        *,
        explicit_channel_message: Mapping[str, str] = EMPTY,
        explicit_channel_omni_message: Mapping[str, Mapping[str, Any]] = EMPTY,
        channel_specific_message: Mapping[str, Mapping[str, Any]] = EMPTY,
    ) -> "AppMessage":
        """This message with per-channel replacements (empty maps left out).

        explicit_channel_message: channel -> the channel's own payload, as a
        string. explicit_channel_omni_message: channel -> another message
        kind, e.g. omni_text("...") or omni_template_reference(...).
        channel_specific_message: channel -> {"message_type", "message"}.
        """
        extras = dict(self.extras)
        _put(extras, "explicit_channel_message", dict(explicit_channel_message))
        _put(
            extras,
            "explicit_channel_omni_message",
            {k: dict(v) for k, v in explicit_channel_omni_message.items()},
        )
        _put(
            extras,
            "channel_specific_message",
            {k: dict(v) for k, v in channel_specific_message.items()},
        )
        return AppMessage(self.kind, self.content, extras)

    def to_wire(self) -> dict[str, Any]:
        return {self.kind: dict(self.content), **self.extras}


def omni_text(text: str) -> dict[str, Any]:
    """An explicit_channel_omni_message value: a text message instead."""
    return {"text_message": {"text": text}}


def omni_template_reference(
    template_id: str,
    version: str,
    *,
    language_code: str = "",
    parameters: Mapping[str, str] = EMPTY,
) -> dict[str, Any]:
    """An explicit_channel_omni_message value: an omni template instead."""
    return {
        "template_reference": template_reference(
            template_id, version, language_code=language_code, parameters=parameters
        )
    }
