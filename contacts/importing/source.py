"""Reading a CSV file as (line number, values) with byte progress.

In the job's encoding (see encodings.py), "," or ";" delimiters, quoted
fields with newlines.
The file is streamed: memory does not grow with its size.
"""

import codecs
import csv
import io
from collections.abc import Iterator

_HEAD_BYTES = 64 * 1024


class CsvFileError(ValueError):
    """The file as a whole cannot be read; the message says what to do."""


class _CountingReader(io.RawIOBase):
    def __init__(self, raw):
        self.raw = raw
        self.count = 0

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:
        n = self.raw.readinto(buffer)
        self.count += n or 0
        return n


def _not_in(encoding: str) -> str:
    if encoding in ("utf-8-sig", "utf-8"):
        return "not UTF-8"
    return f"not in the encoding {encoding}"


def sniff(path: str, encoding: str = "utf-8-sig") -> tuple[str, list[str], bool]:
    """Return (delimiter, headers, whether a record follows the header)."""
    with open(path, "rb") as handle:
        head = handle.read(_HEAD_BYTES)
    whole = len(head) < _HEAD_BYTES
    if not head.strip():
        raise CsvFileError("The file is empty.")
    decoder = codecs.getincrementaldecoder(encoding)()
    try:
        # A multi-byte character cut by the end of what was read is fine; an
        # invalid byte, or a file that ends mid-character, is not.
        text = decoder.decode(head, final=whole)
    except UnicodeDecodeError as exc:
        raise CsvFileError(
            f"The file is {_not_in(encoding)} (byte {exc.object[exc.start]:#04x} at "
            f"offset {exc.start}). Choose its encoding (e.g. Windows-1252), or "
            "save it as 'CSV UTF-8' and upload it again."
        ) from None
    if not text.strip():
        raise CsvFileError("The file is empty.")
    first_line = text.splitlines()[0] if text.splitlines() else ""
    delimiter = (
        ";"
        if _count_unquoted(first_line, ";") > _count_unquoted(first_line, ",")
        else ","
    )
    records = csv.reader(io.StringIO(text), delimiter=delimiter)
    headers = [h.strip() for h in next(records, [])]
    try:
        has_rows = not whole or any(any(v.strip() for v in r) for r in records)
    except csv.Error:
        has_rows = True  # a broken record is still a record, reported by line
    return delimiter, headers, has_rows


def _count_unquoted(line: str, char: str) -> int:
    count, quoted = 0, False
    for ch in line:
        if ch == '"':
            quoted = not quoted
        elif ch == char and not quoted:
            count += 1
    return count


class CsvRows:
    """Iterate the data records of a CSV file after its header line."""

    def __init__(self, path: str, delimiter: str, encoding: str = "utf-8-sig"):
        self.path = path
        self.delimiter = delimiter
        self.encoding = encoding
        self._counter: _CountingReader | None = None

    @property
    def bytes_read(self) -> int:
        return self._counter.count if self._counter else 0

    def __iter__(self) -> Iterator[tuple[int, list[str]]]:
        with open(self.path, "rb", buffering=0) as raw:
            self._counter = _CountingReader(raw)
            text = io.TextIOWrapper(
                io.BufferedReader(self._counter, 1 << 16),
                encoding=self.encoding,
                newline="",
            )
            reader = csv.reader(text, delimiter=self.delimiter)
            next(reader, None)
            last = reader.line_num
            try:
                for values in reader:
                    start, last = last + 1, reader.line_num
                    if values:
                        yield start, values
            except UnicodeDecodeError as exc:
                raise CsvFileError(
                    f"The file is {_not_in(self.encoding)} after line {last} (byte "
                    f"{exc.object[exc.start]:#04x}). Choose its encoding on the "
                    "review page and check it again, or save it as 'CSV UTF-8'; "
                    f"the rows before line {last + 1} were processed."
                ) from None
            except csv.Error as exc:
                raise CsvFileError(f"Line {last + 1}: {exc}.") from None
