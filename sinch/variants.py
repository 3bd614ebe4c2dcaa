"""Reading the shapes Sinch has not confirmed, in every plausible variant.

sinch.wire names the variants (keys, fields, statuses and their precedence);
this module is the one place that reads them, for the client
(sinch.payloads), the callback parser (sinch.callbacks) and the batch status
precedence the product applies (campaigns.models.states). Each function
accepts everything plausible and says clearly when a body cannot be read.
"""

import json
from typing import Any

from sinch import wire

# --- the by-metadata list -----------------------------------------------------


def batch_list(data: Any) -> list[Any]:
    """The batch objects of a by-metadata list response, in any of its shapes
    (wire.BATCH_LIST_HOLDER_KEYS): a bare array, an object holding the array
    under any key, one batch object, or an empty object. ValueError when no
    shape fits (several arrays, none of which holds batches; a scalar)."""
    if isinstance(data, list):
        return data
    if not isinstance(data, dict):
        raise ValueError(f"a batch list is an array or an object, not {type(data)}")
    if not data:
        return []
    if "batch_id" in data:
        return [data]
    for key in wire.BATCH_LIST_HOLDER_KEYS:
        if isinstance(data.get(key), list):
            return data[key]
    lists = [v for v in data.values() if isinstance(v, list)]
    if len(lists) == 1:
        return lists[0]
    holding = [v for v in lists if v and all(_is_batch(i) for i in v)]
    if len(holding) == 1:
        return holding[0]
    held = [v for v in data.values() if _is_batch(v)]
    if len(held) == 1 and not any(lists):
        return held  # one batch object under a key: {"batch": {...}}
    if not held and not any(lists):
        return []  # e.g. {"next_page_token": ""}, {"items": [], "errors": []}
    raise ValueError(f"no batch list among the keys {sorted(data)}")


def _is_batch(value: Any) -> bool:
    return isinstance(value, dict) and "batch_id" in value


# --- batch callbacks ----------------------------------------------------------

STATUS_UPDATE, PROCESSING_REPORT, UNKNOWN = "status", "report", "unknown"


def batch_callback_kind(key: str) -> str | None:
    """What a top-level callback key names: a batch status update, a
    processing report, an unknown batch callback (any other "batch_*" key),
    or None (not a batch callback)."""
    if key in wire.BATCH_STATUS_UPDATE_KEYS:
        return STATUS_UPDATE
    if key in wire.BATCH_PROCESSING_REPORT_KEYS:
        return PROCESSING_REPORT
    if key.startswith("batch_"):
        return UNKNOWN
    return None


def batch_metadata(item: dict) -> dict:
    """The batch metadata a status update carries (a JSON object or a JSON
    string, under any of wire.BATCH_METADATA_FIELDS), else {}."""
    for name in wire.BATCH_METADATA_FIELDS:
        value = item.get(name)
        if isinstance(value, str) and value:
            try:
                value = json.loads(value)
            except ValueError:
                continue
        if isinstance(value, dict) and value:
            return value
    return {}


def report_entries(item: dict) -> list[dict]:
    """The failed-recipient entries of a processing report: the list under
    one of wire.PROCESSING_REPORT_LIST_FIELDS, or the report itself when it
    names one recipient."""
    for name in wire.PROCESSING_REPORT_LIST_FIELDS:
        entries = item.get(name)
        if isinstance(entries, list):
            return [e for e in entries if isinstance(e, dict)]
    if entry_index(item) is not None or "reason" in item:
        return [item]
    return []


def entry_index(entry: dict) -> int | None:
    """The entry's position field (wire.PROCESSING_REPORT_INDEX_FIELDS) as
    Sinch wrote it (an int, or digits in a string); None if absent."""
    for name in wire.PROCESSING_REPORT_INDEX_FIELDS:
        value = entry.get(name)
        if isinstance(value, bool):
            continue
        if isinstance(value, int) and value >= 0:
            return value
        if isinstance(value, str) and value.isdigit():
            return int(value)
    return None


def entry_identity(entry: dict) -> tuple[str, str] | None:
    """(channel, identity) the entry names, in any of the shapes of
    wire.PROCESSING_REPORT_IDENTITY_FIELDS or as flat `channel`/`identity`
    fields; None when it names none. The channel may be ""."""
    candidates: list[Any] = []
    for name in wire.PROCESSING_REPORT_IDENTITY_FIELDS:
        value = entry.get(name)
        if isinstance(value, dict):
            candidates.append(value)
            identified = value.get("identified_by", value)
            if isinstance(identified, dict):
                listed = identified.get("channel_identities")
                if isinstance(listed, list):
                    candidates.extend(listed)
    candidates.append(entry)
    for value in candidates:
        if isinstance(value, dict) and isinstance(value.get("identity"), str):
            identity = value["identity"].strip()
            if identity:
                return str(value.get("channel") or ""), identity
    return None


# --- batch status precedence -------------------------------------------------


def batch_status_may_replace(current: str, new: str) -> bool:
    """True when a batch whose status is `current` ("" if none known) may
    take `new` (see wire.BATCH_STATUS_RANK: never backwards, the first final
    status wins, an unknown status never replaces a known one)."""
    if not new or new == current:
        return False
    if not current:
        return True
    rank = wire.BATCH_STATUS_RANK
    if new not in rank:
        return current not in rank
    if current not in rank:
        return True
    if current in wire.BATCH_FINAL_STATUSES and new == "CANCELLED":
        # Only a batch still waiting is cancelled: once processed, it went.
        return False
    return rank[new] > rank[current]


def statuses_not_replaced_by(new: str) -> frozenset[str]:
    """The known statuses a batch keeps when `new` arrives (for a bulk UPDATE
    that excludes them)."""
    return frozenset(
        s for s in wire.BATCH_STATUS_RANK if not batch_status_may_replace(s, new)
    )
