"""Sinch's wire contract: names, limits, formats, and every UNCONFIRMED choice.

The client, the callback parser and the simulator all read these values, so a
guess about Sinch is made once, here. Lines marked UNCONFIRMED follow the best
inference of the wire-contract notes (shared/spec/sinch-batch-api.md, section
in brackets); when Sinch turns out to differ, change it here.
"""

import re
from datetime import UTC, datetime, timedelta

# --- endpoints (confirmed, §0-§3) ----------------------------------------------

TOKEN_PATH = "/oauth2/token"
PROJECT_PATH = "/v1/projects/{project_id}"
MESSAGES_PATH = PROJECT_PATH + "/messages"
CONTACTS_PATH = PROJECT_PATH + "/contacts"
CONSENTS_PATH = PROJECT_PATH + "/consents"
REGION_BATCH_API_URL = "https://{region}.conversationbatch.api.sinch.com"
DEFAULT_AUTH_URL = "https://auth.sinch.com"

# --- limits ---

MAX_RECIPIENTS = 1000  # confirmed (§3.1)
MAX_CONTACTS = 1000  # confirmed (§3.5, §3.6)
MAX_CONSENT_RECORDS = 1000  # UNCONFIRMED, by analogy (§7)
MAX_CHOICES = 10  # confirmed for choice/card messages (§7)
# UNCONFIRMED (§7): a send_after more than a minute ahead is rounded up to the
# next 5-minute mark; the rounded value may be at most 7 days ahead; a value
# within a minute, or in the past, means "send now".
SEND_AFTER_MAX_AHEAD = timedelta(days=7)
SEND_AFTER_ROUNDING = timedelta(minutes=5)
SEND_AFTER_IMMEDIATE_WITHIN = timedelta(seconds=60)
# ttl is "<seconds>s" within these bounds: single-send rule, by analogy (§3.1).
TTL_PATTERN = re.compile(r"^([0-9]{1,12})s$")
TTL_MIN_S, TTL_MAX_S = 3, 315_576_000_000
CHANNEL_PROPERTY_MAX_LEN = 1024
# Keys of `channel_properties` the product accepts. UNCONFIRMED beyond the SMS
# ones (§3.1 names SMS_SENDER, SMS_MAX_NUMBER_OF_MESSAGE_PARTS,
# SMS_FLASH_MESSAGE, MMS_SENDER, VIBER_SENDER_NAME); the rest follow the
# Conversation API's channel-property documentation. Add keys here as needed.
CHANNEL_PROPERTY_KEYS = frozenset(
    {
        "SMS_SENDER",
        "SMS_MAX_NUMBER_OF_MESSAGE_PARTS",
        "SMS_FLASH_MESSAGE",
        "MMS_SENDER",
        "MMS_STRICT_VALIDATION",
        "MMS_FALLBACK_TEXT",
        "MMS_DISABLE_FALLBACK_SMS",
        "MMS_DISABLE_FALLBACK_SMS_LINK",
        "VIBER_SENDER_NAME",
        "VIBER_SENDER_AVATAR",
        "KAKAO_TALK_SENDER_KEY",
        "MESSENGER_MESSAGING_TYPE",
        "MESSENGER_MESSAGE_TAG",
        "MESSENGER_NOTIFICATION_TYPE",
        "INSTAGRAM_MESSAGE_TAG",
        "WHATSAPP_DISABLE_LINK_PREVIEW",
    }
)
TOKEN_TTL_S = 3599  # what Sinch's token endpoint answers (§1.2)
API_RATE_LIMIT_PER_S = 800  # per project (§7); UNCONFIRMED for the batch host
DRAIN_RATE_PER_S = 20  # messages drained to channels per app by default (§7)
# The app's MT ingress queue (§7): Sinch documents at most 500,000 messages
# per app (the app's `queue_stats`: outbound_limit, default 500000, and
# outbound_size), drained at DRAIN_RATE_PER_S, among its 429 rate limits.
INGRESS_QUEUE_LIMIT = 500_000
# UNCONFIRMED (§7): what a send does when the queue is full is not documented.
# Assumed: refused as a whole with 429 RESOURCE_EXHAUSTED, the batch not
# processed (the client treats it as retryable, like any 429), with a
# Retry-After saying when the room comes when Sinch knows. Also assumed: a
# scheduled batch counts for the time it comes due (Sinch rounds send_after
# up to 5 minutes), checked when it is sent to the API.
INGRESS_QUEUE_FULL_STATUS = 429
CALLBACK_RATE_PER_S = 25  # callbacks per app per second; UNCONFIRMED (§5.1)

# --- enums ---

BATCH_STATUSES = ("READY", "SCHEDULED", "PROCESSED", "CANCELLED")  # confirmed (§4)
PROCESSING_STRATEGIES = ("DEFAULT", "DISPATCH_ONLY")
PROCESSING_MODES = ("CONVERSATION", "DISPATCH")
MESSAGE_KINDS = (
    "text_message",
    "media_message",
    "card_message",
    "choice_message",
    "carousel_message",
    "location_message",
    "list_message",
    "contact_info_message",
    "template_message",
)
# Keys allowed in `message` beside the one message kind (§3.1.1).
MESSAGE_EXTRA_KEYS = (
    "explicit_channel_message",
    "explicit_channel_omni_message",
    "channel_specific_message",
    "agent",
)
DELIVERY_STATUSES = (
    "QUEUED_ON_CHANNEL",
    "DELIVERED",
    "READ",
    "FAILED",
    "SWITCHING_CHANNEL",
)
CONSENT_TYPES = ("OPT_OUT_ALL", "OPT_OUT_NOTIFICATION", "OPT_OUT_MARKETING")
# Channels that report READ. UNCONFIRMED: inferred from the channels' features.
READ_RECEIPT_CHANNELS = frozenset(
    {"WHATSAPP", "RCS", "MESSENGER", "VIBERBM", "INSTAGRAM", "TELEGRAM", "APPLEBC"}
)
REASON_DESCRIPTIONS = {
    "RECIPIENT_NOT_REACHABLE": "The underlying channel reported: unreachable.",
    "RECIPIENT_INVALID_CHANNEL_IDENTITY": "The channel identity is not valid.",
    "RECIPIENT_NOT_OPTED_IN": "The recipient has opted out of this app.",
    "DELIVERY_TIMED_OUT": "The channel did not confirm delivery in time.",
    "CHANNEL_FAILURE": "The channel failed to deliver the message.",
    "DELIVERY_REJECTED_DUE_TO_POLICY": "The channel rejected the message (policy).",
    "OUTSIDE_ALLOWED_SENDING_WINDOW": "Outside the channel's allowed sending window.",
    "CONTACT_NOT_FOUND": "No contact with this contact_id.",
    "NO_CHANNEL_IDENTITY_FOR_CONTACT": "The contact has no identity on any channel.",
    "NO_CHANNELS_LEFT": "Every channel in the fallback order failed.",
    "MESSAGE_EXPIRED": "The message expired (ttl) before it was delivered.",
}
NO_SUB_CODE = "UNSPECIFIED_SUB_CODE"

# --- errors (§8) ---

# UNCONFIRMED: whether the live Batch API wraps its error body in {"error": ...}
# (the old overview's example) or sends the fields flat (the rendered OpenAPI).
# The client reads both; the simulator sends this shape unless told otherwise.
ERROR_BODY_SHAPE = "wrapped"
# Only 400 and 403 are evidenced; the rest follow Sinch's sibling APIs.
ERROR_STATUS_NAMES = {
    400: "INVALID_ARGUMENT",
    401: "UNAUTHENTICATED",
    403: "PERMISSION_DENIED",
    404: "NOT_FOUND",
    429: "RESOURCE_EXHAUSTED",
    500: "INTERNAL",
    503: "UNAVAILABLE",
}
BAD_REQUEST_DETAIL_TYPE = "type.googleapis.com/google.rpc.BadRequest"
# Likely, not verified (§1.3): an expired token is refused with this challenge,
# and only such a 401 is worth one token refresh.
EXPIRED_TOKEN_CHALLENGE = 'Bearer error="expired"'
INVALID_TOKEN_CHALLENGE = 'Bearer error="invalid_token"'
# UNCONFIRMED (§3.1): a project id the key has no access to.
WRONG_PROJECT_STATUS = 403
# UNCONFIRMED: an app_id that is not the project's app is refused as invalid.
UNKNOWN_APP_STATUS = 400

# --- request and response bodies ---

RESERVED_METADATA_KEY = "_batch_id"
# The spec says Sinch overwrites a `_batch_id` sent by the caller; the product
# treats sending one as a bug, so the simulator refuses it (400) instead.
REFUSE_RESERVED_METADATA_KEY = True
# UNCONFIRMED (§3.2): cancel by id sends {"batch_id": ...}; the simulator also
# accepts {"metadata": {"key", "value"}} and {"metadata_key", "metadata_value"}.
CANCEL_BODY_ID_FIELD = "batch_id"
# UNCONFIRMED: responses documented without fields are answered with {}.
EMPTY_RESPONSE: dict = {}
# UNCONFIRMED (§3.4): the by-metadata list is a bare JSON array. The client also
# accepts an object holding one array.
LIST_BY_METADATA_IS_BARE_ARRAY = True
# UNCONFIRMED (§3.1): an immediate batch echoes its acceptance time as send_after.
# (send_after given but due within a minute, or past: echoed as sent.)

# --- ${param} substitution ---

# UNCONFIRMED (§3.1): which characters a parameter name may hold. Values are
# substituted in one pass, so a value containing "${x}" is never expanded again.
PLACEHOLDER = re.compile(r"\$\{([A-Za-z0-9_.\-]+)\}")
# UNCONFIRMED (§3.1): parameter names Sinch uses itself or may give a meaning
# to. `_batch_id` is the metadata key Sinch writes; the product also keeps every
# name starting with "_" for Sinch, so a template never collides with one.
RESERVED_PARAMETER_NAMES = frozenset({RESERVED_METADATA_KEY})
RESERVED_PARAMETER_PREFIX = "_"
# UNCONFIRMED (§3.1): a placeholder without a value for the recipient is left as
# written ("${first_name}"). The product blocks such launches before sending.
MISSING_PARAMETER_KEPT_LITERALLY = True

# --- callbacks (§5) ---

# The trigger is the one top-level key present (§5.1).
CALLBACK_KEYS = {
    "message_delivery_report": "MESSAGE_DELIVERY",
    "message": "MESSAGE_INBOUND",
    "opt_in_notification": "OPT_IN",
    "opt_out_notification": "OPT_OUT",
    "contact_create_notification": "CONTACT_CREATE",
    "contact_delete_notification": "CONTACT_DELETE",
    "contact_merge_notification": "CONTACT_MERGE",
    "contact_update_notification": "CONTACT_UPDATE",
}
# UNCONFIRMED (§5.2, §5.3): the batch callbacks' keys and payloads. Any other
# top-level "batch_*" object holding a batch_id is read as a processing report.
BATCH_STATUS_UPDATE_KEY = "batch_status_update"
BATCH_PROCESSING_REPORT_KEY = "batch_processing_report"
# Sinch's examples show callback identities without the "+" (§9.12): bare
# digits of a phone identity are read as "+digits" first (contacts.phones).
CALLBACK_PHONE_WITHOUT_PLUS = True
# Where an inbound message carries the `_batch_id` of the batch it answers
# (§5.5, §9): the top-level `message_metadata` (the conversation metadata,
# confirmed as a JSON string) first, then the message's own `metadata`
# (UNCONFIRMED, read too because the field is there and may carry it).
INBOUND_BATCH_ID_SOURCES = ("message_metadata", "metadata")
# UNCONFIRMED (§5.5): how a quick-reply or button answer arrives. The
# Conversation API documents `choice_response_message` {message_id,
# postback_data}; channels differ on whether the button's title comes along
# and under which name, so every kind and field below is read, at any depth
# up to INBOUND_ANSWER_DEPTH. A WhatsApp or RCS reply that arrives as a plain
# `text_message` with the button's title is read as text.
INBOUND_ANSWER_KINDS = (
    "choice_response_message",
    "channel_specific_message",
    "product_response_message",
    "reply_message",
    "quick_reply",
    "button",
    "button_reply",
    "postback",
)
INBOUND_ANSWER_FIELDS = (
    "postback_data",
    "payload",
    "postback",
    "title",
    "text",
    "label",
    "display_text",
    "id",
)
INBOUND_ANSWER_DEPTH = 4
# UNCONFIRMED (§5.1): Sinch retries a callback that got no 2xx with exponential
# backoff; the schedule is a guess (first retry after this many seconds).
CALLBACK_RETRY_FIRST_S = 2.0
CALLBACK_MAX_ATTEMPTS = 6
# UNCONFIRMED (§5.4): callbacks for a batch's own callback_url are signed with
# the same secret as the app's webhook.

# --- webhook signatures (§6, confirmed) ---

SIGNATURE_HEADER = "x-sinch-webhook-signature"
NONCE_HEADER = "x-sinch-webhook-signature-nonce"
TIMESTAMP_HEADER = "x-sinch-webhook-signature-timestamp"
ALGORITHM_HEADER = "x-sinch-webhook-signature-algorithm"
SIGNATURE_ALGORITHM = "HmacSHA256"

# --- times ---


def format_time(moment: datetime) -> str:
    """RFC 3339 in UTC with a Z; milliseconds only when there are any."""
    moment = moment.astimezone(UTC)
    if moment.microsecond:
        return (
            moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"
        )
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_time(value: str) -> datetime:
    """An RFC 3339 time as an aware datetime (more than 6 decimals are cut).

    Raises ValueError for anything else, including a time without an offset.
    """
    moment = datetime.fromisoformat(value)
    if moment.tzinfo is None:
        raise ValueError(f"time without an offset: {value!r}")
    return moment.astimezone(UTC)
