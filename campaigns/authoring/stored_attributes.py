"""A contact's custom attributes as a raw member query reads them: JSON text
(or already decoded), decoded only when it may hold a key that is used."""

import json
from typing import Any

EMPTY: dict[str, Any] = {}


def read(raw: Any, needles: list[str] | None) -> dict[str, Any]:
    """The attributes; EMPTY when the stored JSON cannot hold any of the keys
    `needles` (from `needles`) stands for."""
    if raw.__class__ is str:
        if needles is not None and not any([n in raw for n in needles]):
            return EMPTY
        raw = json.loads(raw)
    return raw if isinstance(raw, dict) else EMPTY


def needles(keys: list[str]) -> list[str] | None:
    """Each key as stored JSON spells it ("key") when all are plain ASCII, so
    that a missing needle means a missing key; None otherwise (decode always)."""
    if all(_plain_key(k) for k in keys):
        return [f'"{k}"' for k in keys]
    return None


def _plain_key(key: str) -> bool:
    return key.isascii() and key.isprintable() and '"' not in key and "\\" not in key
