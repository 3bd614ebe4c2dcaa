"""Which text encoding a CSV file is in: detected, or chosen by the user.

Detection is deliberately simple and predictable: a byte-order mark says it
(UTF-8, UTF-16, UTF-32); a UTF-16 file without one shows itself by its zero
bytes; a file that decodes as UTF-8 is UTF-8; anything else is a Western
legacy encoding: Windows-1252 when it uses that code page's extra characters
(curly quotes, the euro sign, dashes in 0x80-0x9F), else ISO-8859-1 (Latin-1),
which reads every byte. The review page shows the decoded rows with the
encoding, and the user can choose another one.
"""

import codecs

from contacts.importing.sniffing import HEAD_BYTES

UTF8 = "utf-8-sig"  # reads UTF-8 with or without a BOM
# codec -> what the user sees; the order is the choice list's.
ENCODINGS = {
    UTF8: "UTF-8",
    "utf-16": "UTF-16",
    "cp1252": "Windows-1252 (Western European)",
    "latin-1": "ISO-8859-1 (Latin-1)",
    "iso-8859-15": "ISO-8859-15 (Latin-9, with €)",
    "cp1250": "Windows-1250 (Central European)",
    "cp1251": "Windows-1251 (Cyrillic)",
    "mac-roman": "Mac Roman",
    "utf-16-le": "UTF-16 little-endian, no BOM",
    "utf-16-be": "UTF-16 big-endian, no BOM",
    "utf-32": "UTF-32",
}
_SCAN_CHUNK = 1 << 20
# Bytes that Windows-1252 leaves undefined; the rest of 0x80-0x9F are its
# printable extras, which Latin-1 has as invisible control characters.
_CP1252_UNDEFINED = frozenset(b"\x81\x8d\x8f\x90\x9d")
_C1 = frozenset(range(0x80, 0xA0))


def label(codec: str) -> str:
    return ENCODINGS.get(codec, codec)


def detect_encoding(path: str) -> str:
    """The codec to read `path` with (a key of ENCODINGS)."""
    with open(path, "rb") as handle:
        head = handle.read(HEAD_BYTES)
        if head.startswith(codecs.BOM_UTF8):
            return UTF8
        if head.startswith((codecs.BOM_UTF32_LE, codecs.BOM_UTF32_BE)):
            return "utf-32"
        if head.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
            return "utf-16"
        no_bom_utf16 = _utf16_without_bom(head)
        if no_bom_utf16:
            return no_bom_utf16
        sample = head
        if head.isascii() and len(head) == HEAD_BYTES:
            # The first non-ASCII bytes decide; an ASCII file is UTF-8.
            sample = _first_non_ascii(handle)
    if _is_utf8(sample, cut_at_start=sample is not head):
        return UTF8
    return _legacy(sample)


def _utf16_without_bom(head: bytes) -> str | None:
    """Mostly-ASCII UTF-16 text has a zero byte in every other position."""
    pairs = len(head) // 2
    if pairs < 2:
        return None
    even_zeros = head[0 : pairs * 2 : 2].count(0)
    odd_zeros = head[1 : pairs * 2 : 2].count(0)
    if odd_zeros > 0.4 * pairs and even_zeros < 0.05 * pairs:
        return "utf-16-le"
    if even_zeros > 0.4 * pairs and odd_zeros < 0.05 * pairs:
        return "utf-16-be"
    return None


def _first_non_ascii(handle) -> bytes:
    """From the current position: the first chunk with a non-ASCII byte."""
    while chunk := handle.read(_SCAN_CHUNK):
        if not chunk.isascii():
            at = next(i for i, byte in enumerate(chunk) if byte > 0x7F)
            return chunk[max(0, at - 16) : at + HEAD_BYTES]
    return b""


def _is_utf8(data: bytes, *, cut_at_start: bool) -> bool:
    if cut_at_start:
        # Skip continuation bytes of a character cut by where we started.
        data = data.lstrip(bytes(range(0x80, 0xC0)))
    try:
        data.decode("utf-8")
    except UnicodeDecodeError as exc:
        # A character cut by the end of what was read is not a wrong byte
        # (but a whole file that ends mid-character is not UTF-8).
        return (
            exc.reason == "unexpected end of data"
            and exc.end == len(data)
            and len(data) >= HEAD_BYTES
        )
    return True


def _legacy(sample: bytes) -> str:
    used = set(sample)
    if used & _CP1252_UNDEFINED:
        return "latin-1"
    if used & _C1:
        return "cp1252"
    return "latin-1"
