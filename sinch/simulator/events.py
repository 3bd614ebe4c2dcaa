"""Callback payloads as Sinch sends them (spec §5): envelope plus one trigger key."""

import json
from typing import Any

from sinch import wire
from sinch.channels import PHONE_CHANNELS
from sinch.simulator.knobs import Account
from sinch.simulator.state import Batch, Message, iso

COMPACT = (",", ":")


def dumps(data: Any) -> bytes:
    return json.dumps(data, separators=COMPACT, ensure_ascii=False).encode()


def envelope(account: Account, now: float, key: str, item: dict, **extra: Any) -> dict:
    return {
        "app_id": account.app_id,
        "accepted_time": iso(now),
        "event_time": iso(now - 0.05),
        "project_id": account.project_id,
        key: item,
        "message_metadata": "",
        **extra,
    }


def callback_identity(channel: str, identity: str) -> str:
    if wire.CALLBACK_PHONE_WITHOUT_PLUS and channel in PHONE_CHANNELS:
        return identity.lstrip("+")
    return identity


def delivery_report(
    account: Account,
    message: Message,
    *,
    status: str,
    channel: str,
    identity: str,
    reason: str,
    mode: str,
    correlation_id: str,
    now: float,
) -> dict:
    item: dict[str, Any] = {
        "message_id": message.message_id,
        "conversation_id": message.contact_id and f"conv-{message.contact_id}",
        "status": status,
        "channel_identity": {
            "channel": channel,
            "identity": callback_identity(channel, identity),
            "app_id": "",
        },
        "contact_id": message.contact_id if mode == "CONVERSATION" else "",
        "metadata": message.metadata,
        "processing_mode": mode,
    }
    if mode != "CONVERSATION":
        item["conversation_id"] = ""
    if reason:
        item["reason"] = {
            "code": reason,
            "description": wire.REASON_DESCRIPTIONS.get(reason, reason),
            "sub_code": wire.NO_SUB_CODE,
        }
    extra = {"correlation_id": correlation_id} if correlation_id else {}
    return envelope(account, now, "message_delivery_report", item, **extra)


# The keys each batch-callback style sends (the knobs may name another).
STYLE_KEYS = {
    "rest": (wire.BATCH_STATUS_UPDATE_KEY, wire.BATCH_PROCESSING_REPORT_KEY),
    "event": ("batch_status_update", "batch_processing_report_notification"),
}


def batch_status_update(
    account: Account,
    batch: Batch,
    status: str,
    now: float,
    *,
    style: str = "rest",
    key: str = "",
    counts: tuple[int, int] | None = None,
) -> dict:
    """A batch status update. rest: the REST enum with the batch's meta_data;
    event: the event docs' shape (message counts, no metadata)."""
    item: dict[str, Any] = {"batch_id": batch.batch_id, "status": status}
    if style == "event":
        total, failed = counts or (batch.size, 0)
        item["total_messages"] = total
        item["successful_messages"] = total - failed
        item["failed_messages"] = failed
        item["processing_time_ms"] = int(max(0.0, now - batch.send_after) * 1000)
    else:
        item["meta_data"] = batch.metadata
    return envelope(account, now, key or STYLE_KEYS[style][0], item)


def event_outcome(total: int, failed: int) -> str:
    """How the event docs name the end of a batch's processing."""
    if failed and failed >= total:
        return "FAILED"
    return "PARTIAL" if failed else "COMPLETED"


def processing_report(
    account: Account,
    batch_id: str,
    index: int,
    reason: str,
    now: float,
    *,
    style: str = "rest",
    key: str = "",
    base: int = 0,
    identity: tuple[str, str] | None = None,
) -> dict:
    """One failed recipient (0-based `index`, written from `base`). rest: the
    report is the entry; event: a list of entries (`failed_messages`), each
    naming the recipient's identity when known."""
    entry: dict[str, Any] = {
        "message_index": index + base,
        "reason": {
            "code": reason,
            "description": wire.REASON_DESCRIPTIONS.get(reason, reason),
            "sub_code": wire.NO_SUB_CODE,
        },
    }
    if identity is not None:
        channel, value = identity
        entry["channel_identity"] = {
            "channel": channel,
            "identity": callback_identity(channel, value),
        }
    item: dict[str, Any] = {"batch_id": batch_id}
    if style == "event":
        item["failed_messages"] = [entry]
    else:
        item.update(entry)
    return envelope(account, now, key or STYLE_KEYS[style][1], item)


def inbound(
    account: Account,
    *,
    message_id: str,
    channel: str,
    identity: str,
    text: str,
    sender_id: str,
    conversation_metadata: str,
    mode: str,
    now: float,
) -> dict:
    item = {
        "id": message_id,
        "direction": "TO_APP",
        "contact_message": {"text_message": {"text": text}},
        "channel_identity": {
            "channel": channel,
            "identity": callback_identity(channel, identity),
            "app_id": "",
        },
        "conversation_id": "",
        "contact_id": "",
        "metadata": "",
        "accept_time": iso(now - 0.02),
        "sender_id": sender_id,
        "processing_mode": mode,
        "injected": False,
    }
    data = envelope(account, now, "message", item)
    data["message_metadata"] = conversation_metadata
    return data


def consent_notification(
    account: Account,
    *,
    kind: str,
    request_id: str,
    channel: str,
    identity: str,
    mode: str,
    now: float,
) -> dict:
    key = "opt_out_notification" if kind == "OPT_OUT" else "opt_in_notification"
    item = {
        "request_id": request_id,
        "contact_id": "",
        "channel": channel,
        "identity": callback_identity(channel, identity),
        "status": f"{kind}_SUCCEEDED",
        "processing_mode": mode,
    }
    return envelope(account, now, key, item)


def contact_notification(
    account: Account, kind: str, contact: dict, now: float
) -> dict:
    key = f"contact_{kind.lower()}_notification"
    return envelope(account, now, key, {"contact": contact})
