"""Reading a CSV file as (line number, values) with byte progress.

In the job's encoding (see encodings.py), "," or ";" delimiters, quoted
fields with newlines, and any line ending (Windows CR LF, Unix LF, old Mac CR).
The file is streamed: memory does not grow with its size.

A record that cannot be parsed (an unclosed or stray quote, a value over the
size limit) comes out as a BrokenRecord that names its problem and its line;
reading goes on at the next line, so one bad quote cannot swallow the rows
after it.
"""

import codecs
import csv
import io
from collections.abc import Iterator

_HEAD_BYTES = 64 * 1024
# A quoted value may hold line breaks (an address, a note), but one that runs
# on for this many lines is an unclosed quote swallowing the rows below it.
MAX_RECORD_LINES = 50


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
    records = csv.reader(
        io.StringIO(text, newline=""), delimiter=delimiter, strict=True
    )
    try:
        headers = [h.strip() for h in next(records, [])]
    except csv.Error as exc:
        raise CsvFileError(
            f"Line 1 (the header) cannot be read: {exc} (an unclosed quote?)."
        ) from None
    if any("\x00" in h for h in headers):
        raise CsvFileError(
            "Line 1 (the header) contains a NUL byte (\\x00): the file is damaged "
            "or in another encoding. Save it again as 'CSV UTF-8' and upload that."
        )
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


class BrokenRecord(list):
    """A record that could not be parsed: its first line as one value."""

    def __init__(self, text: str, problem: str):
        super().__init__([text])
        self.problem = problem


class _Lines:
    """The physical lines of a text, numbered, with lines handed back to be
    read again (after a broken record, from the line after its first)."""

    def __init__(self, text):
        self.text = text
        self.number = 0  # of the last line handed out
        self.again: list[tuple[int, str]] = []  # in reverse order
        self.record: list[tuple[int, str]] = []  # the lines of the current record

    def __iter__(self):
        return self

    def __next__(self) -> str:
        if len(self.record) >= MAX_RECORD_LINES:
            raise _RunawayRecord
        if self.again:
            self.number, line = self.again.pop()
        else:
            line = self.text.readline()
            if not line:
                raise StopIteration
            self.number += 1
        self.record.append((self.number, line))
        return line

    def start_record(self) -> None:
        self.record = []

    def first_line(self) -> int:
        return self.record[0][0]

    def read_again_after_first(self) -> str:
        """Hand back the current record's lines after its first; its first."""
        first, *rest = self.record
        self.again.extend(reversed(rest))
        if rest:
            self.number = rest[0][0] - 1
        self.record = []
        return first[1].rstrip("\r\n")


class _RunawayRecord(Exception):
    pass


class CsvRows:
    """Iterate the data records of a CSV file after its header line.

    Yields (line, values); values is a BrokenRecord for a record that cannot
    be parsed.
    """

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
                newline="",  # keeps CR, LF and CR LF for the csv module
            )
            lines = _Lines(text)
            reader = csv.reader(lines, delimiter=self.delimiter, strict=True)
            header = True
            while True:
                lines.start_record()
                try:
                    values = next(reader)
                except StopIteration:
                    return
                except UnicodeDecodeError as exc:
                    last = lines.number - 1
                    raise CsvFileError(
                        f"The file is {_not_in(self.encoding)} after line {last} "
                        f"(byte {exc.object[exc.start]:#04x}). Choose its encoding "
                        "on the review page and check it again, or save it as "
                        f"'CSV UTF-8'; the rows before line {last + 1} were "
                        "processed."
                    ) from None
                except (csv.Error, _RunawayRecord) as exc:
                    if header:
                        raise CsvFileError(
                            f"Line 1 (the header) cannot be read: {exc}."
                        ) from None
                    line = lines.first_line()
                    problem = _broken(exc, line, len(lines.record))
                    yield line, BrokenRecord(lines.read_again_after_first(), problem)
                    continue
                if header:
                    header = False
                elif values:
                    yield lines.first_line(), values


def _broken(exc: Exception, line: int, spanned: int) -> str:
    if isinstance(exc, _RunawayRecord):
        return (
            f"a quote opened on line {line} is not closed within {spanned} lines "
            "(an unclosed quote?); this line is not imported, the lines after "
            "it are read on their own"
        )
    reason = str(exc)
    if "unexpected end of data" in reason:
        return (
            f"a quote opened on line {line} is never closed (an unclosed "
            "quote); this line is not imported, the lines after it are read "
            "on their own"
        )
    if "expected after" in reason:
        return (
            "a stray quote: a quoted value must be followed by the delimiter or "
            "the end of the line (an unclosed quote on this line?); this line "
            "is not imported, the lines after it are read on their own"
        )
    return f"cannot be read as CSV ({reason}); this line is not imported"
