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


def batch_status_update(
    account: Account, batch: Batch, status: str, now: float
) -> dict:
    item = {
        "batch_id": batch.batch_id,
        "status": status,
        "meta_data": batch.metadata,
    }
    return envelope(account, now, wire.BATCH_STATUS_UPDATE_KEY, item)


def processing_report(
    account: Account, batch_id: str, index: int, reason: str, now: float
) -> dict:
    item = {
        "batch_id": batch_id,
        "message_index": index,
        "reason": {
            "code": reason,
            "description": wire.REASON_DESCRIPTIONS.get(reason, reason),
            "sub_code": wire.NO_SUB_CODE,
        },
    }
    return envelope(account, now, wire.BATCH_PROCESSING_REPORT_KEY, item)


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
