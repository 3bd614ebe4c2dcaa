"""Sinch's channel properties: the one registry of keys, channels and values.

`channel_properties` in a send request is a map of texts whose keys must be
values of Sinch's `ChannelPropertyKey` enum. The keys below are that enum as
the official Node SDK spells it (packages/conversation/src/models/v1/
send-message-request/send-message-request.ts; the Python, Java and .NET SDKs
type the map as plain strings), plus WHATSAPP_PREVIEW_URL, which the
Conversation API's WhatsApp channel-properties page documents. The channel,
value type, limits and defaults come from the Conversation API's per-channel
"channel properties" pages; what they do not state is marked UNCONFIRMED.

Values are always texts on the wire: booleans are "true" / "false", numbers
are decimal digits. The product, the simulator and the admin all read this
module (sinch.wire re-exports the key set and the length limit).
"""

from collections.abc import Mapping
from dataclasses import dataclass

# Any value: at most this long (every SDK's description of the field).
MAX_VALUE_LEN = 1024

BOOLEAN, INTEGER, CHOICE, TEXT, URL = "boolean", "integer", "choice", "text", "url"


@dataclass(frozen=True)
class ChannelProperty:
    """One key of `channel_properties`.

    `channel` is the Conversation API channel the key acts on (VIBER is
    Sinch's Viber Bot channel, which the product does not send on).
    `default` is what Sinch does when the key is absent (None: not stated).
    `unconfirmed` names what the documentation does not say.
    """

    key: str
    channel: str
    kind: str
    label: str
    help: str
    choices: tuple[tuple[str, str], ...] = ()
    min_value: int | None = None
    max_value: int | None = None
    max_length: int = MAX_VALUE_LEN
    default: str | None = None
    off_label: str = ""  # a boolean defaulting to "true": its "false" named
    required_on_channel: bool = False
    unconfirmed: str = ""


PROPERTIES: dict[str, ChannelProperty] = {
    p.key: p
    for p in (
        ChannelProperty(
            "SMS_SENDER",
            "SMS",
            TEXT,
            "SMS sender",
            "A phone number, short code or alphanumeric sender id. A sender "
            "the SMS network refuses shows up in the delivery receipts.",
        ),
        ChannelProperty(
            "SMS_MAX_NUMBER_OF_MESSAGE_PARTS",
            "SMS",
            INTEGER,
            "Most SMS parts",
            "A message is sent only if it fits in this many SMS parts; "
            "longer ones fail. Empty: no limit.",
            min_value=1,
            max_value=255,
            unconfirmed="the bounds: Sinch states none; 1 to 255, the most "
            "parts a concatenated SMS can have",
        ),
        ChannelProperty(
            "SMS_FLASH_MESSAGE",
            "SMS",
            BOOLEAN,
            "Flash message",
            "Shown on the screen at once and not kept in the inbox.",
            default="false",
        ),
        ChannelProperty(
            "MMS_SENDER",
            "MMS",
            TEXT,
            "MMS sender",
            "The short code or long number the MMS comes from. Sinch requires "
            "it on the MMS channel.",
            required_on_channel=True,
        ),
        ChannelProperty(
            "MMS_STRICT_VALIDATION",
            "MMS",
            BOOLEAN,
            "Strict media check",
            "Sinch refuses the message when its media does not follow "
            "Sinch's MMS best practices.",
            default="false",
        ),
        ChannelProperty(
            "WHATSAPP_PREVIEW_URL",
            "WHATSAPP",
            BOOLEAN,
            "Link preview",
            "Whether a link in a text message shows a preview (by default it does).",
            default="true",
            off_label="No link preview",
        ),
        ChannelProperty(
            "MESSENGER_MESSAGING_TYPE",
            "MESSENGER",
            CHOICE,
            "Messaging type",
            "Why the message is sent (Meta's messaging types). Sinch uses "
            "Message tag when a message tag is chosen.",
            choices=(
                ("RESPONSE", "Response (a reply within 24 hours)"),
                ("UPDATE", "Update (sent proactively within 24 hours)"),
                ("MESSAGE_TAG", "Message tag (outside 24 hours, with a tag)"),
            ),
            unconfirmed="the values: Sinch links to Meta's list "
            "(RESPONSE, UPDATE, MESSAGE_TAG) without repeating it",
        ),
        ChannelProperty(
            "MESSENGER_MESSAGE_TAG",
            "MESSENGER",
            CHOICE,
            "Message tag",
            "Needed to send after the 24-hour window; Meta forbids promotional "
            "content under every tag.",
            choices=(
                ("CONFIRMED_EVENT_UPDATE", "Confirmed event update"),
                ("POST_PURCHASE_UPDATE", "Post-purchase update"),
                ("ACCOUNT_UPDATE", "Account update"),
                ("HUMAN_AGENT", "Human agent (within 7 days)"),
            ),
            unconfirmed="the values: Sinch links to Meta's message-tag list "
            "without repeating it",
        ),
        ChannelProperty(
            "MESSENGER_NOTIFICATION_TYPE",
            "MESSENGER",
            CHOICE,
            "Notification",
            "How the phone announces the message.",
            choices=(
                ("REGULAR", "Sound or vibration"),
                ("SILENT_PUSH", "On screen only"),
                ("NO_PUSH", "No notification"),
            ),
            default="REGULAR",
        ),
        ChannelProperty(
            "INSTAGRAM_MESSAGE_TAG",
            "INSTAGRAM",
            CHOICE,
            "Message tag",
            "Human agent: a person answers up to 7 days after the customer's "
            "last message (outside the 24-hour window).",
            choices=(("HUMAN_AGENT", "Human agent"),),
        ),
        ChannelProperty(
            "TELEGRAM_DISABLE_LINK_PREVIEW",
            "TELEGRAM",
            BOOLEAN,
            "No link preview",
            "Telegram shows no preview of a link in the message.",
            default="false",
            unconfirmed="the case of the value: Sinch's example sends "
            '"TRUE"; the product sends "true"',
        ),
        ChannelProperty(
            "KAKAOTALK_AUTHENTICATION",
            "KAKAOTALK",
            TEXT,
            "Authentication",
            "Passed to KakaoTalk as it is.",
            unconfirmed="its meaning and values: in Sinch's enum, but no "
            "Sinch page describes it, so any text is accepted",
        ),
        ChannelProperty(
            "LINE_VIDEO_TRACKING_ID",
            "LINE",
            TEXT,
            "Video tracking id",
            "Names a video message in LINE's video-viewing-complete event; "
            "several messages may share it.",
            max_length=100,
            unconfirmed="the length: Sinch states none; 100 is LINE's limit",
        ),
        ChannelProperty(
            "VIBER_SENDER_NAME",
            "VIBER",
            TEXT,
            "Sender name",
            "The Viber Bot sender name shown.",
            max_length=28,
        ),
        ChannelProperty(
            "VIBER_SENDER_AVATAR",
            "VIBER",
            URL,
            "Sender avatar",
            "The address of the Viber Bot sender's picture (at most 100 kB).",
        ),
    )
}
KEYS = frozenset(PROPERTIES)


def for_channel(channel: str) -> list[ChannelProperty]:
    """The properties that act on `channel`, in registry order."""
    return [p for p in PROPERTIES.values() if p.channel == channel]


def value_problem(key: str, value: object, *, guesses: bool = True) -> str | None:
    """Why `value` is not a valid wire value of property `key` (None: it is).

    `guesses=False` applies only what Sinch documents (the simulator's view):
    an entry's UNCONFIRMED limits and value lists are then not checked.
    Booleans are accepted in any case ("TRUE" too: Sinch's own Telegram
    example uses it).
    """
    prop = PROPERTIES.get(key)
    if prop is None:
        return "is not a channel property Sinch knows"
    if not isinstance(value, str):
        return "must be a text"
    firm = guesses or not prop.unconfirmed
    limit = prop.max_length if firm else MAX_VALUE_LEN
    if len(value) > limit:
        return f"is {len(value)} characters long; at most {limit}"
    if prop.kind == BOOLEAN and value.lower() not in ("true", "false"):
        return 'must be "true" or "false"'
    if prop.kind == INTEGER:
        return _integer_problem(prop, value, bounds=firm)
    if prop.kind == CHOICE and firm and value not in dict(prop.choices):
        allowed = ", ".join(code for code, _ in prop.choices)
        return f"must be one of {allowed}"
    if prop.kind == URL and not value.lower().startswith(("https://", "http://")):
        return "must be a web address (https://...)"
    return None


def _integer_problem(prop: ChannelProperty, value: str, *, bounds: bool) -> str | None:
    if not (value.isascii() and value.isdigit()):
        return "must be a whole number"
    number = int(value)
    if bounds and prop.min_value is not None and number < prop.min_value:
        return f"must be at least {prop.min_value}"
    if bounds and prop.max_value is not None and number > prop.max_value:
        return f"must be at most {prop.max_value}"
    return None


def problems(
    properties: Mapping[str, object], *, guesses: bool = True
) -> dict[str, str]:
    """Each bad key of `properties` with what is wrong with it ({}: none)."""
    found = {}
    for key, value in properties.items():
        problem = value_problem(str(key), value, guesses=guesses)
        if problem:
            found[str(key)] = problem
    return found
