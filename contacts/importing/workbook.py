"""Reading the first sheet of an Excel workbook (.xlsx) as text records.

openpyxl's read-only mode streams the sheet's XML, so a million-row workbook
is read row by row without loading the sheet. Cells become the text the
importer expects from a CSV file: numbers without a spurious ".0" or an
exponent (a phone number stored as the number 4915112345678 stays
"4915112345678", whatever its display format), dates as ISO 8601
("2026-12-31", or "2026-12-31T09:30:00" with a time), booleans as true/false.
A record's line is its row number in the sheet, as Excel shows it.
"""

import datetime as dt
import os
import warnings
from collections.abc import Iterator
from contextlib import contextmanager

from contacts.importing.source import CsvFileError


@contextmanager
def _open_sheet(path: str):
    from openpyxl import load_workbook  # a few hundred ms to import: when needed

    # A file object: openpyxl would refuse a path without an .xlsx suffix
    # (uploads are stored under a name of our own).
    with open(path, "rb") as handle:
        try:
            with warnings.catch_warnings():
                # openpyxl warns about styles and extensions it ignores.
                warnings.simplefilter("ignore")
                book = load_workbook(handle, read_only=True, data_only=True)
        except Exception as exc:  # openpyxl raises many kinds for a damaged file
            raise CsvFileError(
                f"The Excel workbook cannot be read ({exc.__class__.__name__}: "
                f"{exc}). Open it in Excel, save it again as .xlsx, and upload "
                "that."
            ) from None
        try:
            if not book.worksheets:
                raise CsvFileError("The Excel workbook has no sheet.")
            yield book.worksheets[0]
        finally:
            book.close()


def cell_text(value) -> str:
    """A cell's value as the text a CSV export would hold."""
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if value.is_integer():
            return str(int(value))
        return repr(value)
    if isinstance(value, dt.datetime):
        if value.time() == dt.time():
            return value.date().isoformat()
        return value.isoformat(timespec="seconds")
    if isinstance(value, dt.date | dt.time):
        return value.isoformat()
    return str(value)


def _texts(cells, width: int | None) -> list[str]:
    values = [cell_text(v) for v in cells]
    while values and not values[-1].strip():
        values.pop()
    if width is not None and len(values) < width and values:
        values += [""] * (width - len(values))
    return values


def read_header(path: str) -> tuple[list[str], bool]:
    """(the header's names, whether any record follows it).

    The header is the first row that is not empty.
    """
    with _open_sheet(path) as sheet:
        rows = sheet.iter_rows(values_only=True)
        for cells in rows:
            headers = [h.strip() for h in _texts(cells, None)]
            if headers:
                return headers, any(_texts(c, None) for c in rows)
    raise CsvFileError("The file is empty: the workbook's first sheet has no cells.")


class WorkbookRows:
    """Iterate the data records of the first sheet after its header row.

    bytes_read is the share of the sheet's rows read, in bytes of the file,
    for the progress bar (a workbook is compressed: its bytes are not read
    in order).
    """

    def __init__(self, path: str, width: int):
        self.path = path
        self.width = width
        self.size = os.path.getsize(path)
        self.bytes_read = 0

    def __iter__(self) -> Iterator[tuple[int, list[str]]]:
        with _open_sheet(self.path) as sheet:
            total = sheet.max_row or 0
            rows = enumerate(sheet.iter_rows(values_only=True), start=1)
            for _line, cells in rows:
                if _texts(cells, None):
                    break  # the header
            for line, cells in rows:
                if total and line % 128 == 0:
                    self.bytes_read = int(self.size * min(1.0, line / total))
                values = _texts(cells, self.width)
                if values:
                    yield line, values
        self.bytes_read = self.size
