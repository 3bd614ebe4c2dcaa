"""`${param}` substitution exactly as the Batch API applies it.

Sinch substitutes in every string field of the message (never in keys), in one
pass: a value that itself contains "${x}" stays as it is. A placeholder the
recipient has no value for is left as written (see wire.MISSING_PARAMETER_...).
Previews use these functions, so what a user sees is what Sinch sends.
"""

from collections.abc import Mapping
from typing import Any

from sinch.wire import PLACEHOLDER


def placeholders(value: Any) -> set[str]:
    """Every parameter name used in the string fields of `value`."""
    found: set[str] = set()
    for text in strings(value):
        found.update(PLACEHOLDER.findall(text))
    return found


def missing_parameters(value: Any, parameters: Mapping[str, str]) -> set[str]:
    """Names used in `value` that `parameters` has no value for."""
    return {name for name in placeholders(value) if name not in parameters}


def render(value: Any, parameters: Mapping[str, str]) -> Any:
    """`value` (a string, or dicts and lists of them) with placeholders filled.

    Returns a new structure; non-string leaves are kept as they are.
    """
    if isinstance(value, str):
        if "${" not in value:
            return value
        return PLACEHOLDER.sub(
            lambda m: str(parameters.get(m.group(1), m.group(0))), value
        )
    if isinstance(value, dict):
        return {key: render(item, parameters) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [render(item, parameters) for item in value]
    return value


def strings(value: Any):
    """Every string inside a message object (dicts and lists walked in order)."""
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for item in value.values():
            yield from strings(item)
    elif isinstance(value, list | tuple):
        for item in value:
            yield from strings(item)
