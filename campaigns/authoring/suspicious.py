"""Parameter values that are empty or look like a data mistake.

A value such as "None", "nan" or "#N/A" is what a spreadsheet or a script
writes when the real value is missing; sent as is, it reaches the recipient
("Hi None,"). `problems` names every such sign in one value, for the warnings
of the pre-send check. It runs once per placeholder per recipient, so it is
cheap: a clean value costs one strip and one set look-up.
"""

EMPTY = "empty"
BLANK = "only spaces"
EDGE_SPACES = "leading or trailing spaces"
MISSING_MARKER = "looks like a missing value"
PLACEHOLDER_LEFT = 'contains "${" (a placeholder left over)'

# Compared case-insensitively, after stripping spaces.
MISSING_MARKERS = frozenset(
    {
        "none",
        "null",
        "nil",
        "nan",
        "nat",
        "undefined",
        "n/a",
        "#n/a",
        "#value!",
        "#ref!",
        "#name?",
        "#div/0!",
        "#num!",
        "#null!",
    }
)
# Values a walk remembers the reasons of, at most (a million distinct first
# names would otherwise all stay in memory).
REMEMBERED = 10_000


def problems(value: str | None) -> list[str]:
    """The reasons `value` looks empty or suspicious; [] when it looks fine.

    A missing marker is reported with the value itself, e.g.
    'looks like a missing value ("NaN")'.
    """
    if not value:
        return [EMPTY]
    stripped = value.strip()
    if not stripped:
        return [BLANK]
    reasons = []
    if len(stripped) != len(value):
        reasons.append(EDGE_SPACES)
    if len(stripped) <= 9 and stripped.lower() in MISSING_MARKERS:
        reasons.append(f'{MISSING_MARKER} ("{stripped}")')
    if "${" in value:
        reasons.append(PLACEHOLDER_LEFT)
    return reasons


def is_suspicious(value: str | None) -> bool:
    """True when `problems(value)` would report anything."""
    return bool(problems(value))


def remember(known: dict[str, list[str]], value: str) -> list[str]:
    """`problems(value)`, stored in `known`, a walk's memo (emptied when full)."""
    if len(known) >= REMEMBERED:
        known.clear()
    reasons = known[value] = problems(value)
    return reasons
