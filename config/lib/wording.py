"""Counted nouns in messages: "1 recipient", "2,000 recipients"."""


def counted(n: int, singular: str, plural: str | None = None) -> str:
    """`n` (with thousands separators) and the noun in the number it needs."""
    noun = singular if n == 1 else (plural or f"{singular}s")
    return f"{n:,} {noun}"
