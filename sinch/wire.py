"""Sinch's wire contract: names, limits, formats, and every UNCONFIRMED choice.

The client, the callback parser and the simulator all read these values, so a
guess about Sinch is made once, here. Lines marked UNCONFIRMED follow the best
inference of the wire-contract notes (shared/spec/sinch-batch-api.md, section
in brackets); when Sinch turns out to differ, change it here.
"""

import math
import re
from datetime import UTC, datetime, timedelta

from sinch import channel_properties

# --- endpoints (confirmed, §0-§3) ----------------------------------------------

TOKEN_PATH = "/oauth2/token"
PROJECT_PATH = "/v1/projects/{project_id}"
MESSAGES_PATH = PROJECT_PATH + "/messages"
CONTACTS_PATH = PROJECT_PATH + "/contacts"
CONSENTS_PATH = PROJECT_PATH + "/consents"
REGION_BATCH_API_URL = "https://{region}.conversationbatch.api.sinch.com"
DEFAULT_AUTH_URL = "https://auth.sinch.com"
REGIONS = ("us", "eu", "br")  # confirmed (§2); the app must be in the region

# --- the main Conversation API: the app and its webhooks (§2, §5.1) ---
# Apps and webhooks live on the main Conversation API host, never on the batch
# host (§9.1). Both accept the same bearer token.
REGION_CONVERSATION_API_URL = "https://{region}.conversation.api.sinch.com"
APP_PATH = PROJECT_PATH + "/apps/{app_id}"
APP_WEBHOOKS_PATH = APP_PATH + "/webhooks"  # GET: {"webhooks": [...]}
WEBHOOKS_PATH = PROJECT_PATH + "/webhooks"  # POST: create one
WEBHOOK_PATH = WEBHOOKS_PATH + "/{webhook_id}"  # GET, PATCH, DELETE
MAX_WEBHOOKS_PER_APP = 5
# A webhook without a target_type is DISMISS: Sinch sends it nothing.
WEBHOOK_TARGET_TYPE = "HTTP"
WEBHOOK_DEFAULT_TARGET_TYPE = "DISMISS"
# The triggers the product needs on the app's webhook (§5.1, Appendix C).
# The batch status trigger's name comes from Sinch's skill and event docs, not
# from any SDK enum (UNCONFIRMED): the other spellings are accepted in its
# place. OPT_IN/OPT_OUT matter only with Sinch's consent management (STOP is
# otherwise an ordinary inbound message, §5.5).
BATCH_STATUS_TRIGGER = "BATCH_STATUS_UPDATE"
BATCH_STATUS_TRIGGER_ALIASES = (
    BATCH_STATUS_TRIGGER,
    "BATCH_STATUS_UPDATE_NOTIFICATION",
    "BATCH_STATUS",
)
REQUIRED_WEBHOOK_TRIGGERS = (
    "MESSAGE_DELIVERY",
    "MESSAGE_INBOUND",
    BATCH_STATUS_TRIGGER,
)
CONSENT_WEBHOOK_TRIGGERS = ("OPT_OUT", "OPT_IN")
PRODUCT_WEBHOOK_TRIGGERS = REQUIRED_WEBHOOK_TRIGGERS + CONSENT_WEBHOOK_TRIGGERS
# UNCONFIRMED: whether reading a webhook returns its secret (the API reference
# types it as a password). Read as: absent or empty (not shown, or none set),
# made only of these characters (masked: one is set), or the secret itself.
WEBHOOK_SECRET_MASK_CHARS = frozenset("*•x")
# The app's processing mode and, in DISPATCH mode, how many days Sinch keeps
# messages and their conversation metadata (the `_batch_id` a reply carries
# back): `dispatch_retention_policy` {retention_type, ttl_days}, 0 to 7 days,
# 0 by default. proto3 JSON may leave out a 0 (read as 0) or write an integer
# as a string (read as the number).
APP_DISPATCH_RETENTION_FIELD = "dispatch_retention_policy"
APP_RETENTION_DAYS_FIELD = "ttl_days"
DEFAULT_PROCESSING_MODE = "DISPATCH"  # apps created since 2025-04-16

# --- limits ---

MAX_RECIPIENTS = 1000  # confirmed (§3.1)
MAX_CONTACTS = 1000  # confirmed (§3.5, §3.6)
MAX_CONSENT_RECORDS = 1000  # UNCONFIRMED, by analogy (§7)
MAX_CHOICES = 10  # confirmed for choice/card messages (§7)
# Carousel: up to 10 cards, up to 3 choices below them (the SDKs' model docs).
MAX_CAROUSEL_CARDS = 10
MAX_CAROUSEL_CHOICES = 3
# Choice list: up to 10 choices in all (Sinch's list-message page); up to 10
# sections is WhatsApp's rule, the only channel showing lists natively.
MAX_LIST_ITEMS = 10
MAX_LIST_SECTIONS = 10
# UNCONFIRMED (§7): a send_after more than a minute ahead is rounded up to the
# next 5-minute mark; the rounded value may be at most 7 days ahead; a value
# within a minute, or in the past, means "send now".
SEND_AFTER_MAX_AHEAD = timedelta(days=7)
SEND_AFTER_ROUNDING = timedelta(minutes=5)
SEND_AFTER_IMMEDIATE_WITHIN = timedelta(seconds=60)
# ttl is "<seconds>s" within these bounds: single-send rule, by analogy (§3.1).
TTL_PATTERN = re.compile(r"^([0-9]{1,12})s$")
TTL_MIN_S, TTL_MAX_S = 3, 315_576_000_000
# Keys of `channel_properties`, their channels and value types: one registry,
# sinch.channel_properties (Sinch's ChannelPropertyKey enum plus
# WHATSAPP_PREVIEW_URL); its UNCONFIRMED entries are marked there.
CHANNEL_PROPERTY_MAX_LEN = channel_properties.MAX_VALUE_LEN
CHANNEL_PROPERTY_KEYS = channel_properties.KEYS
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
# Sinch's event docs (and its skill) show a batch status update saying
# COMPLETED, PARTIAL or FAILED, with message counts; the REST enum above never
# does. Both styles are read (sinch.variants.batch_status_may_replace).
BATCH_EVENT_STATUSES = ("COMPLETED", "PARTIAL", "FAILED")
# Precedence of batch statuses: a status never replaces one of a higher rank,
# nor a final one of the same rank (the first final status wins), so a batch
# never moves backwards whatever order the callbacks and reads arrive in.
# - SCHEDULED < READY < PROCESSED: the REST lifecycle (§4).
# - COMPLETED / PARTIAL / FAILED say how processing ended: they refine
#   PROCESSED (rank above it), and PROCESSED never replaces them.
# - CANCELLED is final, of the same rank as the processing outcomes: Sinch
#   cancels only a batch still waiting for its send time, so a CANCELLED after
#   PROCESSED (or the reverse) cannot really happen. Should it arrive, the
#   status already known is kept: a batch known to have gone out is never
#   relabelled cancelled (its recipients may have got the message), and a
#   confirmed cancel (its recipients already CANCELLED) is never undone.
# - A status not listed here (Sinch may add some) is stored while nothing is
#   known yet, and never replaces a known one.
BATCH_STATUS_RANK = {
    "SCHEDULED": 1,
    "READY": 2,
    "PROCESSED": 3,
    "COMPLETED": 4,
    "PARTIAL": 4,
    "FAILED": 4,
    "CANCELLED": 4,
}
# Final: nothing more happens to the batch at Sinch.
BATCH_FINAL_STATUSES = frozenset(
    {"PROCESSED", "COMPLETED", "PARTIAL", "FAILED", "CANCELLED"}
)
# The batch was expanded into messages (receipts follow): PROCESSED and the
# event docs' outcomes. FAILED counts: "processing failed" may still have
# sent part of it (UNCONFIRMED), and the receipts say what happened.
BATCH_PROCESSED_STATUSES = frozenset({"PROCESSED", "COMPLETED", "PARTIAL", "FAILED"})
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
# UNCONFIRMED: the channels `explicit_channel_omni_message` may name. The Node
# SDK types its keys as the channel-template channels; the API reference says
# any channel. The product offers these; the simulator accepts any channel.
OMNI_OVERRIDE_CHANNELS = ("WHATSAPP", "KAKAOTALK", "WECHAT")
# The message kinds an `explicit_channel_omni_message` value may be (the
# SDKs' OmniMessageOverride); `template_reference` is an omni template.
OMNI_OVERRIDE_KINDS = (*MESSAGE_KINDS[:-1], "template_reference")
# UNCONFIRMED: how Sinch writes a location as SMS text (the SMS channel shows
# locations "natively", without saying how). The segment estimate counts the
# title, the label and a map link of this form.
SMS_LOCATION_LINK = "https://maps.google.com/?q={latitude},{longitude}"
# Channels with channel-specific templates (confirmed: Conversation API
# "Managing templates": WhatsApp, KakaoTalk and WeChat only). A template
# message whose only entry is one of them cannot be sent on any other channel.
CHANNEL_TEMPLATE_CHANNELS = ("WHATSAPP", "KAKAOTALK", "WECHAT")
# WhatsApp channel-template parameter keys (confirmed: Conversation API
# "WhatsApp template support"): <component>[<n>]<field> for header and body,
# button[<i>]<sub_type>[<n>]<field> for buttons; parameters count from 1,
# buttons from 0; fields text, payload, image.link, video.link,
# document.link, document.filename, <media>.provider.name. The language
# code is required and only the underscore form (en_US) is accepted.
# UNCONFIRMED, read from Sinch's MCP-server sources and WhatsApp's own
# component types: carousel[<card>] before a part, the button types beyond
# quick_reply and url, and the fields coupon_code, location.*, action.*,
# currency.*, date_time.*. All are accepted so that no real key is refused.
WHATSAPP_TEMPLATE_BUTTON_TYPES = (
    "quick_reply",
    "url",
    "copy_code",
    "flow",
    "catalog",
    "mpm",
    "voice_call",
    "otp",
)
WHATSAPP_TEMPLATE_PLAIN_FIELDS = ("text", "payload", "coupon_code")
WHATSAPP_TEMPLATE_OBJECT_FIELDS = (
    "image",
    "video",
    "document",
    "location",
    "action",
    "currency",
    "date_time",
)
WHATSAPP_TEMPLATE_MAX_BUTTONS = 10  # UNCONFIRMED (Sinch's old page said 3)
WHATSAPP_TEMPLATE_MAX_CARDS = 10  # confirmed ("at most ten cards")
# UNCONFIRMED: how Sinch answers a WhatsApp template with a bare key ("1")
# or no language. The product never sends one (the template's validation and
# the pre-send check refuse it); the simulator answers 400 with a field
# violation so a test shows the failure (Sinch may instead accept the batch
# and fail every message).
# WhatsApp's customer-service window (confirmed: "Sending a message outside
# of a 24-hour customer service window requires an approved template"). A
# free-form message (any kind but a WhatsApp channel template) to someone
# who has not written within it fails with this reason. The product reads
# the window's length from the WHATSAPP_WINDOW_HOURS setting.
WHATSAPP_WINDOW_HOURS = 24
WHATSAPP_WINDOW_REASON = "OUTSIDE_ALLOWED_SENDING_WINDOW"
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
    "NO_CHANNELS_LEFT": "No channel left to try: none of the order has an identity.",
    "MESSAGE_EXPIRED": "The message expired (ttl) before it was delivered.",
}
NO_SUB_CODE = "UNSPECIFIED_SUB_CODE"
# Fallback (the send-message docs): the channels tried, in order, are those of
# channel_priority_order when given, else the recipient's channel_identities;
# a channel is tried only through an identity on it, and NO_CHANNELS_LEFT is
# the reason when no channel is left to try. UNCONFIRMED: that an identity on
# a channel the order does not list is not tried; that the NO_CHANNELS_LEFT
# receipt names the recipient's first identity; and that the last channel's
# failure carries its own reason (not NO_CHANNELS_LEFT).
NO_CHANNELS_LEFT = "NO_CHANNELS_LEFT"

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
# UNCONFIRMED (§3.4, Appendix C): the by-metadata list. The OpenAPI page shows
# the fields of one batch object; other sources read a bare JSON array. The
# client reads all of them (sinch.variants.batch_list): a bare array, an
# object holding the array under any key (the holder names below are only
# tried first), one batch object, or an empty object (nothing found).
# Pagination is not documented: settlement falls back to a read by id.
LIST_BY_METADATA_IS_BARE_ARRAY = True
BATCH_LIST_HOLDER_KEYS = ("batches", "batch_statuses", "items", "results", "data")
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
# UNCONFIRMED (§5.2, §5.3): the batch callbacks' keys and payloads. The event
# docs and the skill show `batch_status_update`; the trigger names are
# BATCH_STATUS_UPDATE and "Batch Processing Report Notification". The other
# names are plausible spellings of the same triggers, read alike. Any other
# top-level "batch_*" object is an unknown batch callback: stored, shown on
# the health page, never guessed to be one of these.
BATCH_STATUS_UPDATE_KEYS = (
    "batch_status_update",
    "batch_status_update_notification",
    "batch_status_notification",
    "batch_status",
    "batch_update",
)
BATCH_PROCESSING_REPORT_KEYS = (
    "batch_processing_report",
    "batch_processing_report_notification",
    "batch_processing_notification",
    "batch_report",
    "batch_report_notification",
)
BATCH_STATUS_UPDATE_KEY = BATCH_STATUS_UPDATE_KEYS[0]
BATCH_PROCESSING_REPORT_KEY = BATCH_PROCESSING_REPORT_KEYS[0]
UNKNOWN_BATCH_CALLBACK_KIND = "UNKNOWN_BATCH_CALLBACK"
# Where a status update may carry the batch's metadata (§3.3 names it
# `meta_data`; the event docs show none at all: matched by batch_id then).
BATCH_METADATA_FIELDS = ("meta_data", "metadata", "batch_metadata")
# UNCONFIRMED (§5.3): a processing report lists failed recipients under one
# of these keys, or is itself one entry.
PROCESSING_REPORT_LIST_FIELDS = (
    "failed_messages",
    "failures",
    "messages",
    "recipients",
)
PROCESSING_REPORT_INDEX_FIELDS = ("message_index", "index", "recipient_index")
# UNCONFIRMED (§5.3, Appendix C): `message_index` is the 0-based position in
# recipient_and_params. When an entry names the recipient's identity
# (PROCESSING_REPORT_IDENTITY_FIELDS), both 0- and 1-based positions are
# checked against it and the one that matches is used
# (campaigns.tracking.report_positions); an entry whose identity matches
# neither is stored as a mismatch and never applied. Without an identity the
# guess below is trusted.
PROCESSING_REPORT_INDEX_BASE = 0
PROCESSING_REPORT_INDEX_BASES = (0, 1)
# `channel_identity` {channel, identity} (as in receipts), a `recipient` as
# sent ({identified_by: {channel_identities: [...]}}), or flat fields.
PROCESSING_REPORT_IDENTITY_FIELDS = ("channel_identity", "recipient", "identified_by")
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


_ROUNDING_EPOCH = datetime(2000, 1, 1, tzinfo=UTC)


def rounded_send_after(moment: datetime) -> datetime:
    """The 5-minute mark Sinch rounds a send_after up to (§7)."""
    step = SEND_AFTER_ROUNDING.total_seconds()
    seconds = (moment - _ROUNDING_EPOCH).total_seconds()
    return _ROUNDING_EPOCH + timedelta(seconds=math.ceil(seconds / step - 1e-9) * step)
