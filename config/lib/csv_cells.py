"""CSV the product writes: cells safe to open in a spreadsheet, streamed.

Spreadsheet formula injection: a cell starting with = + - @ TAB or CR may be
run as a formula by Excel, LibreOffice or Google Sheets. Such cells get a
leading apostrophe, which spreadsheets hide and which turns the cell into
text. Phone numbers are the exception: identities on phone channels are
validated E.164 ("+" and digits only, nothing a spreadsheet can execute), so
they are written exactly as stored, "+15551230001", and stay valid numbers
for any other tool.
"""

import csv
import re
from collections.abc import Iterable, Iterator

_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
_E164 = re.compile(r"\+[1-9]\d{6,14}")


def safe_cell(value) -> str:
    """A value as CSV text that no spreadsheet will evaluate as a formula."""
    text = "" if value is None else str(value)
    if text.startswith(_FORMULA_START) and not _E164.fullmatch(text):
        return "'" + text
    return text


class _Echo:
    """A file that hands back what is written to it (for csv.writer)."""

    def write(self, value: str) -> str:
        return value


def csv_lines(rows: Iterable[list]) -> Iterator[str]:
    """Rows as CSV text lines, for a StreamingHttpResponse."""
    writer = csv.writer(_Echo())
    for row in rows:
        yield writer.writerow(row)
