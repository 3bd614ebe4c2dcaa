"""Every CSV the product writes for people to open: one writer, cells safe to
open in a spreadsheet.

Spreadsheet formula injection: a cell starting with = + - @ TAB or CR may be
run as a formula by Excel, LibreOffice or Google Sheets. Such cells get a
leading apostrophe, which spreadsheets hide and which turns the cell into
text. Phone numbers are the one exception: a cell that is a whole E.164
number ("+" and 7 to 15 digits, nothing a spreadsheet can execute) is written
exactly as stored, "+15551230001", and stays a valid number for any other
tool. A masked number ("+1415•••0101") is not one, so it gets the apostrophe.

`SafeCsvWriter` (to a file) and `csv_lines` (for a StreamingHttpResponse) are
the only ways product code writes CSV (tests/test_architecture.py holds it to
that); the two rewrites of files the product only reads back (erasure of an
upload waiting to be imported, of an earlier download) keep their cells as
they are, since they are not new cells.
"""

import csv
import re
from collections.abc import Iterable, Iterator

_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
_E164 = re.compile(r"\+[1-9]\d{6,14}")
_whole_phone = _E164.fullmatch


def is_safe_phone(text: str) -> bool:
    """A cell that is a whole E.164 number: the documented exception."""
    return bool(_E164.fullmatch(text))


def safe_cell(value) -> str:
    """A value as CSV text that no spreadsheet will evaluate as a formula."""
    text = "" if value is None else str(value)
    if text.startswith(_FORMULA_START) and not is_safe_phone(text):
        return "'" + text
    return text


def safe_row(row: Iterable) -> list[str]:
    """The row's cells as safe text. A pre-send check writes a row per member
    (a million or more): plain text, the usual cell, is kept as it is without
    a call each, and so are a whole E.164 number (a member's identity) and
    a whole number of zero or more (ids, counts: never a formula; its text
    is str())."""
    return [
        v
        if v.__class__ is str
        and (not v.startswith(_FORMULA_START) or _whole_phone(v) is not None)
        else str(v)
        if v.__class__ is int and v >= 0
        else safe_cell(v)
        for v in row
    ]


class SafeCsvWriter:
    """csv.writer whose every cell goes through `safe_cell`."""

    def __init__(self, handle, **fmtparams):
        self._writer = csv.writer(handle, **fmtparams)

    def writerow(self, row: Iterable):
        return self._writer.writerow(safe_row(row))

    def writerows(self, rows: Iterable[Iterable]) -> None:
        self._writer.writerows(map(safe_row, rows))


class _Echo:
    """A file that hands back what is written to it (for csv.writer)."""

    def write(self, value: str) -> str:
        return value


def csv_lines(rows: Iterable[Iterable]) -> Iterator[str]:
    """Rows as spreadsheet-safe CSV text lines, for a StreamingHttpResponse."""
    writer = SafeCsvWriter(_Echo())
    for row in rows:
        yield writer.writerow(row)
