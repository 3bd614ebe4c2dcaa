"""JSON from outside (a webhook body, a form field): decoded with limits.

json.loads has no depth limit of its own: a body of ten thousand "[" raises
RecursionError, which no caller expects (a 500), and a value nested a few
hundred levels deep would still break whatever walks it later (display,
storage, erasure). PostgreSQL's jsonb refuses the NUL character (\\u0000), and
its text columns refuse it too.

parse_json() turns all of that into one JsonInputError (a ValueError) with a
message for the user; without_nul() removes NUL characters from a decoded
value where they must be kept out rather than refused (an inbound message).
"""

import json
from typing import Any

MAX_DEPTH = 20  # Sinch's callbacks nest about 5 levels, our forms 2-3


class JsonInputError(ValueError):
    """Not JSON, nested too deeply, or holding a NUL; the message says which."""


def parse_json(text: str | bytes, *, max_depth: int = MAX_DEPTH, nul: bool = False):
    """The decoded value of `text`.

    Raises JsonInputError when it is not JSON, when it nests arrays/objects
    more than `max_depth` levels, or (unless `nul`) when a text or key holds
    a NUL character.
    """
    try:
        value = json.loads(text)
    except RecursionError:
        raise JsonInputError(_too_deep(max_depth)) from None
    except ValueError as exc:  # JSONDecodeError, UnicodeDecodeError
        raise JsonInputError(f"not valid JSON ({exc})") from None
    has_nul = _check(value, max_depth)
    if has_nul and not nul:
        raise JsonInputError(
            "contains a NUL character (\\u0000), which cannot be stored; remove it"
        )
    return value


def without_nul(value: Any) -> Any:
    """`value` with NUL characters removed from every text and key (for a
    value parse_json accepted: its depth is bounded)."""
    if isinstance(value, str):
        return value.replace("\x00", "") if "\x00" in value else value
    if isinstance(value, dict):
        return {without_nul(k): without_nul(v) for k, v in value.items()}
    if isinstance(value, list):
        return [without_nul(v) for v in value]
    return value


def _check(value: Any, max_depth: int) -> bool:
    """Raise when deeper than max_depth; whether a NUL occurs (no recursion)."""
    has_nul = False
    stack = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, dict):
            if depth > max_depth:
                raise JsonInputError(_too_deep(max_depth))
            for key, inner in item.items():
                has_nul = has_nul or "\x00" in key
                stack.append((inner, depth + 1))
        elif isinstance(item, list):
            if depth > max_depth:
                raise JsonInputError(_too_deep(max_depth))
            stack.extend((inner, depth + 1) for inner in item)
        elif isinstance(item, str):
            has_nul = has_nul or "\x00" in item
    return has_nul


def _too_deep(max_depth: int) -> str:
    return f"nested more than {max_depth} levels deep (the limit is {max_depth})"
