"""Finding and checking `${name}` placeholders in template text.

Sinch's syntax (sinch.wire.PLACEHOLDER) quietly ignores anything that does not
match it, so a typo such as `${first name}` would reach the recipient as
written. Here every "$" that looks like the start of a placeholder must be a
well-formed one, or a PlaceholderError says where it goes wrong.
Positions are 1-based character positions in the field's text.
"""

import re
from typing import NamedTuple

from sinch import wire

# The parameter holding each recipient's compliance footer
# (campaigns.compliance.footer): never a template's own placeholder.
FOOTER_PARAMETER = "cm_footer"
# The parameters holding each recipient's short links (campaigns.authoring.
# link_tracking): cm_link_1, cm_link_2, ...; no template's own placeholder.
LINK_PARAMETER_PREFIX = "cm_link_"

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
        problem = f"character {text[i]!r} is not allowed in a placeholder name"
        inside = text[start + 2 : text.index("}", i)].strip()
        if text[i].isspace() and inside and all(map(_NAME_CHAR.match, inside)):
            problem += f': write "${{{inside}}}"'  # "${ first_name }"
        raise PlaceholderError(i + 1, problem)
    if not name:
        raise PlaceholderError(position, 'empty placeholder "${}"')
    if name == FOOTER_PARAMETER:
        raise PlaceholderError(
            position,
            f'"{name}" is reserved for the compliance footer, which is added to '
            "marketing SMS by itself (COMPLIANCE_FOOTER_OPT_OUT); choose another name",
        )
    if name.startswith(LINK_PARAMETER_PREFIX):
        raise PlaceholderError(
            position,
            f'"{name}" is reserved for tracked links, which replace the '
            "message's URLs by themselves; choose another name",
        )
    if is_reserved(name):
        raise PlaceholderError(
            position, f'"{name}" is reserved by Sinch and cannot be a placeholder'
        )
    return name, i + 1


# Placeholder syntaxes of other tools, which Sinch sends as written. One
# pattern, in the syntax Python's re and JavaScript's RegExp share, so the
# template editor's page warns with these very rules (foreign_syntax_rules).
# Each alternative captures the name in its own group; FOREIGN_SYNTAXES names
# them in group order. A name starts with a letter or "_", and a "." or "-"
# inside it must be followed by more name ("Hi $first_name." ends at "name").
_WORD = r"[A-Za-z_][A-Za-z0-9_]*(?:[.\-][A-Za-z0-9_]+)*"
FOREIGN_SYNTAXES = (
    "${ name } with spaces",
    "{{name}}",
    "{name}",
    "%name%",
    "[name]",
    "$name without braces",
)
FOREIGN_PATTERN = "|".join(
    (
        rf"\$\{{(?:\s+({_WORD})\s*|({_WORD})\s+)\}}",
        rf"\{{\{{\s*({_WORD})\s*\}}\}}",
        rf"(?<!\$)\{{\s*({_WORD})\s*\}}",
        rf"%({_WORD})%",
        rf"\[\s*({_WORD})\s*\]",
        rf"\$({_WORD})",
    )
)
# Which syntax each capture group belongs to (the first has two groups).
_GROUP_SYNTAX = (0, 0, 1, 2, 3, 4, 5)
_FOREIGN = re.compile(FOREIGN_PATTERN)


class ForeignPlaceholder(NamedTuple):
    """A placeholder written in another tool's syntax, and what to write."""

    written: str  # as found, e.g. "{{first_name}}"
    name: str  # "first_name"
    position: int  # 1-based character position of `written`
    syntax: str  # one of FOREIGN_SYNTAXES

    @property
    def suggestion(self) -> str:
        return "${" + self.name + "}"

    @property
    def message(self) -> str:
        return (
            f"“{self.written}” at character {self.position} is not a placeholder "
            f"Sinch fills: it would be sent as written. Write {self.suggestion}."
        )


def foreign_syntax(text: str) -> list[ForeignPlaceholder]:
    """Placeholders of `text` written in another syntax, in order.

    "{{first_name}}", "{first_name}", "%first_name%", "[first_name]",
    "$first_name" and "${ first_name }" (the last two are also refused by
    `extract`, with the same suggestion). Well-formed ${name} placeholders and
    amounts such as "$5" or "50% off" are not reported.
    """
    found = []
    for match in _FOREIGN.finditer(text):
        group = next(i for i, name in enumerate(match.groups()) if name)
        found.append(
            ForeignPlaceholder(
                match.group(0),
                match.group(group + 1),
                match.start() + 1,
                FOREIGN_SYNTAXES[_GROUP_SYNTAX[group]],
            )
        )
    return found


def foreign_syntax_rules() -> dict:
    """The detection as data for the template editor's script."""
    return {"pattern": FOREIGN_PATTERN, "groups": list(_GROUP_SYNTAX)}


def is_reserved(name: str) -> bool:
    return name in wire.RESERVED_PARAMETER_NAMES or name.startswith(
        wire.RESERVED_PARAMETER_PREFIX
    )
