"""How a file is to be read: its format, encoding, delimiter and header.

The one entry point for "what is this file?" (inspect_file) and "give me its
records" (records), whatever the format, so the importer, the review page and
the command read CSV files and workbooks the same way.
"""

from dataclasses import dataclass

from contacts.importing.encodings import detect_encoding
from contacts.importing.sniffing import CSV, XLSX, NotATableError, file_format
from contacts.importing.source import CsvFileError, CsvRows, sniff
from contacts.importing.workbook import WorkbookRows, read_header


@dataclass(frozen=True)
class Layout:
    file_format: str  # sniffing.CSV or sniffing.XLSX
    encoding: str  # a codec for CSV files, "" for workbooks
    delimiter: str
    headers: list[str]


def inspect_file(path: str, encoding: str = "") -> Layout:
    """Read enough of `path` to know how to read it all.

    `encoding` is the user's choice for a CSV file; empty means detect it.
    Raises CsvFileError with a message that says what is wrong: not a table
    (and what it is instead), empty, a header and no rows, undecodable.
    """
    try:
        kind = file_format(path)
    except NotATableError as exc:
        raise CsvFileError(str(exc)) from None
    if kind == XLSX:
        headers, has_rows = read_header(path)
        delimiter, encoding = ",", ""
        where = "The first sheet of the workbook"
    else:
        encoding = encoding or detect_encoding(path)
        delimiter, headers, has_rows = sniff(path, encoding)
        where = "The file"
    _check_headers(headers)
    if not has_rows:
        raise CsvFileError(
            f"{where} has a header and no rows: there is nobody to import "
            f"(the header names {', '.join(repr(h) for h in headers if h)})."
        )
    return Layout(kind, encoding, delimiter, headers)


def _check_headers(headers: list[str]) -> None:
    if not any(headers):
        raise CsvFileError("The first line must name the columns.")
    seen = set()
    for h in headers:
        if h and h.lower() in seen:
            raise CsvFileError(f"The column {h!r} appears twice in the header.")
        seen.add(h.lower())


def records(job) -> CsvRows | WorkbookRows:
    """An iterable of (line, values) over `job`'s data records, with bytes_read."""
    if job.file_format == XLSX:
        return WorkbookRows(job.file_path, len(job.headers))
    return CsvRows(job.file_path, job.delimiter, job.encoding)


__all__ = ["CSV", "XLSX", "CsvFileError", "Layout", "inspect_file", "records"]
