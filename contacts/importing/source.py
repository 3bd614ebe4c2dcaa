"""Reading a CSV file as (line number, values) with byte progress.

UTF-8 with or without BOM, "," or ";" delimiters, quoted fields with newlines.
The file is streamed: memory does not grow with its size.
"""

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


def sniff(path: str) -> tuple[str, list[str]]:
    """Return (delimiter, headers) from the first record of the file."""
    with open(path, "rb") as handle:
        head = handle.read(_HEAD_BYTES)
    if not head.strip():
        raise CsvFileError("The file is empty.")
    try:
        text = head.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        # A multi-byte character cut by the end of what was read is fine; an
        # invalid byte, or a file that ends mid-character, is not.
        cut = len(head) == _HEAD_BYTES and exc.reason == "unexpected end of data"
        if not cut:
            raise CsvFileError(
                f"The file is not UTF-8 (byte {exc.object[exc.start]:#04x} at "
                f"offset {exc.start}). Save it as 'CSV UTF-8' and upload it again."
            ) from None
        text = head[: exc.start].decode("utf-8-sig")
    first_line = text.splitlines()[0] if text.splitlines() else ""
    delimiter = (
        ";"
        if _count_unquoted(first_line, ";") > _count_unquoted(first_line, ",")
        else ","
    )
    headers = next(csv.reader(io.StringIO(text), delimiter=delimiter), [])
    headers = [h.strip() for h in headers]
    if not any(headers):
        raise CsvFileError("The first line must name the columns.")
    seen = set()
    for h in headers:
        if h and h.lower() in seen:
            raise CsvFileError(f"The column {h!r} appears twice in the header.")
        seen.add(h.lower())
    return delimiter, headers


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

    def __init__(self, path: str, delimiter: str):
        self.path = path
        self.delimiter = delimiter
        self._counter: _CountingReader | None = None

    @property
    def bytes_read(self) -> int:
        return self._counter.count if self._counter else 0

    def __iter__(self) -> Iterator[tuple[int, list[str]]]:
        with open(self.path, "rb", buffering=0) as raw:
            self._counter = _CountingReader(raw)
            text = io.TextIOWrapper(
                io.BufferedReader(self._counter, 1 << 16),
                encoding="utf-8-sig",
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
                    f"The file is not UTF-8 after line {last} (byte "
                    f"{exc.object[exc.start]:#04x}). Save it as 'CSV UTF-8'; the "
                    f"rows before line {last + 1} were processed."
                ) from None
            except csv.Error as exc:
                raise CsvFileError(f"Line {last + 1}: {exc}.") from None
