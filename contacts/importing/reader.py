"""Reading a file into batches of validated rows, ready to be written.

Everything that needs no database happens here, batch by batch: parsing and
validating each record and finding the rows that repeat an earlier one. The
writer (importer.py) then deals with the database only.
"""

from collections.abc import Iterator
from dataclasses import dataclass, field

from contacts.importing.rows import ParsedRow, RowError, RowParser
from contacts.importing.seen import SeenKeys
from contacts.importing.source import BrokenRecord, CsvFileError


@dataclass
class Batch:
    """One chunk of the file, in file order."""

    rows: list[ParsedRow] = field(default_factory=list)  # valid, not duplicated
    raw: dict[int, list[str]] = field(default_factory=dict)  # their values by line
    bad: list[tuple[int, str, list[str]]] = field(default_factory=list)
    rows_total: int = 0  # records read so far, good and bad
    bytes_read: int = 0


def validated_batches(source, parser: RowParser, size: int) -> Iterator[Batch]:
    """Batches of about `size` valid rows of `source` (layout.records), in
    file order; each batch's bad rows are in line order.

    A row whose channel and identity came earlier in the file is a bad row
    ("duplicate in file"). A CsvFileError (the file cannot be read on) comes
    after the batch of the rows before it, so that those are written.
    """
    seen = SeenKeys()
    batch = Batch()
    try:
        for line, values in source:
            batch.rows_total += 1
            if isinstance(values, BrokenRecord):
                batch.bad.append((line, values.problem, values))
                continue
            try:
                batch.rows.append(parser.parse(line, values))
                batch.raw[line] = values
            except RowError as exc:
                batch.bad.append((line, str(exc), values))
            if len(batch.rows) >= size:
                yield _finish(batch, seen, source)
                batch = Batch(rows_total=batch.rows_total)
    except CsvFileError:
        yield _finish(batch, seen, source)
        raise
    else:
        yield _finish(batch, seen, source)
    finally:
        seen.close()


class ReadAhead:
    """Batches of `validated_batches`, with the next one read on request
    (`fetch`): the importer reads it while the database writes the current
    one. An error reading the file comes after the batches before it."""

    def __init__(self, batches: Iterator[Batch]):
        self._batches = batches
        self._next: Batch | None = None
        self._error: Exception | None = None
        self._done = False

    def __iter__(self):
        return self

    def __next__(self) -> Batch:
        self.fetch()
        if self._next is not None:
            batch, self._next = self._next, None
            return batch
        if self._error is not None:
            error, self._error = self._error, None
            raise error
        raise StopIteration

    def fetch(self) -> None:
        """Read the next batch now, unless it is read already."""
        if self._next is not None or self._done:
            return
        try:
            self._next = next(self._batches)
        except StopIteration:
            self._done = True
        except Exception as exc:  # raised after the batches before it
            self._error = exc
            self._done = True


def _finish(batch: Batch, seen: SeenKeys, source) -> Batch:
    rows = batch.rows
    firsts = seen.check_and_add([(f"{r.channel}:{r.identity}", r.line) for r in rows])
    batch.rows = []
    for row, first in zip(rows, firsts, strict=True):
        if first is None:
            batch.rows.append(row)
        else:
            batch.bad.append(
                (
                    row.line,
                    f"duplicate in file: {row.channel} {row.identity} is already "
                    f"on line {first}",
                    batch.raw.pop(row.line),
                )
            )
    batch.bad.sort(key=_line)
    batch.bytes_read = source.bytes_read
    return batch


def _line(bad: tuple[int, str, list[str]]) -> int:
    return bad[0]
