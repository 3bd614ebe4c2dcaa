"""Finding and checking `${name}` placeholders in template text.

Sinch's syntax (sinch.wire.PLACEHOLDER) quietly ignores anything that does not
match it, so a typo such as `${first name}` would reach the recipient as
written. Here every "$" that looks like the start of a placeholder must be a
well-formed one, or a PlaceholderError says where it goes wrong.
Positions are 1-based character positions in the field's text.
"""

import re

from sinch import wire

# The parameter holding each recipient's compliance footer
# (campaigns.compliance.footer): never a template's own placeholder.
FOOTER_PARAMETER = "cm_footer"

_NAME_CHAR = re.compile(r"[A-Za-z0-9_.\-]")


class PlaceholderError(ValueError):
    def __init__(self, position: int, problem: str) -> None:
        super().__init__(f"{problem} at character {position}")
        self.position = position
        self.problem = problem


def extract(text: str) -> list[str]:
    """The placeholder names in `text`, in order of first use, without repeats.

    Raises PlaceholderError for the first malformed or reserved placeholder.
    """
    names: list[str] = []
    start = text.find("$")
    while start != -1:
        name, end = _placeholder_at(text, start)
        if name is not None and name not in names:
            names.append(name)
        start = text.find("$", end)
    return names


def _placeholder_at(text: str, start: int) -> tuple[str | None, int]:
    """The placeholder starting at text[start] ("$") and where scanning resumes."""
    position = start + 1
    following = text[start + 1 : start + 2]
    if following != "{":
        if following.isalpha() or following == "_":
            word = re.match(r"[A-Za-z0-9_]+", text[start + 1 :]).group(0)
            raise PlaceholderError(
                position, f'"${word}" needs braces: write "${{{word}}}"'
            )
        return None, start + 1  # a plain dollar sign, e.g. "$5"
    i = start + 2
    while i < len(text) and _NAME_CHAR.match(text[i]):
        i += 1
    name = text[start + 2 : i]
    if i == len(text) or text[i] in "${" or "}" not in text[i:]:
        raise PlaceholderError(position, f'"${{{name}" is not closed with "}}"')
    if text[i] != "}":
        raise PlaceholderError(
            i + 1, f"character {text[i]!r} is not allowed in a placeholder name"
        )
    if not name:
        raise PlaceholderError(position, 'empty placeholder "${}"')
    if name == FOOTER_PARAMETER:
        raise PlaceholderError(
            position,
            f'"{name}" is reserved for the compliance footer, which is added to '
            "marketing SMS by itself (COMPLIANCE_FOOTER_OPT_OUT); choose another name",
        )
    if is_reserved(name):
        raise PlaceholderError(
            position, f'"{name}" is reserved by Sinch and cannot be a placeholder'
        )
    return name, i + 1


def is_reserved(name: str) -> bool:
    return name in wire.RESERVED_PARAMETER_NAMES or name.startswith(
        wire.RESERVED_PARAMETER_PREFIX
    )
