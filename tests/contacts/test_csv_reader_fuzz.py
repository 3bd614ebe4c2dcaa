"""Fuzzing the CSV reader: random bytes and mutations of a valid file.

Whatever the bytes, reading a file raises nothing but the product's own
CsvFileError, and every line of the file is accounted for: it is part of a
record that was read (and then imported or reported), or it is blank.
"""

import random
import re

from contacts.importing.layout import inspect_file
from contacts.importing.mapping import auto_map, mapping_problems
from contacts.importing.reader import validated_batches
from contacts.importing.rows import RowParser
from contacts.importing.source import BrokenRecord, CsvFileError, CsvRows

SEED = 15
CASES = 2500
VALID = (
    b"phone,first_name,consent\n"
    + b"".join(b"+49151123456%02d,Name %d,yes\n" % (i, i) for i in range(12))
    + b'+4915112345699,"Two\nlines",no\n'
)
NOISE = [b'"', b",", b";", b"\n", b"\r", b"\r\n", b"\x00", b"\xff", b"\xe2\x82", b"\t"]
_BREAK = re.compile(r"\r\n|\r|\n")


def _mutate(rng: random.Random, data: bytes) -> bytes:
    data = bytearray(data)
    for _ in range(rng.randint(1, 6)):
        at = rng.randrange(len(data) + 1)
        kind = rng.random()
        if kind < 0.5:
            data[at:at] = rng.choice(NOISE)
        elif kind < 0.7 and data:
            del data[at : at + rng.randint(1, 4)]
        elif kind < 0.85:
            data[at:at] = bytes(rng.randrange(256) for _ in range(rng.randint(1, 8)))
        else:
            data[at:at] = data[: rng.randint(0, 40)]
    return bytes(data)


def _case(rng: random.Random) -> bytes:
    if rng.random() < 0.15:
        return bytes(rng.randrange(256) for _ in range(rng.randint(0, 300)))
    return _mutate(rng, VALID)


def _physical_lines(data: bytes, encoding: str) -> list[str]:
    text = data.decode(encoding)
    return _BREAK.split(text)


def _read(path: str):
    """(layout, [(line, values)]) or None when the file is refused as a whole."""
    try:
        layout = inspect_file(path)
        return layout, list(CsvRows(path, layout.delimiter, layout.encoding))
    except CsvFileError:
        return None


def test_the_reader_raises_only_clear_errors_and_accounts_for_every_line(tmp_path):
    rng = random.Random(SEED)
    path = str(tmp_path / "fuzz.csv")
    read_whole = 0
    for case in range(CASES):
        data = _case(rng)
        with open(path, "wb") as out:
            out.write(data)
        result = _read(path)  # anything but CsvFileError fails the test
        if result is None:
            continue
        read_whole += 1
        layout, records = result
        lines = _physical_lines(data, layout.encoding)
        covered = set()
        for line, values in records:
            if isinstance(values, BrokenRecord):
                spanned = 1
            else:
                spanned = 1 + sum(len(_BREAK.findall(v)) for v in values)
            span = set(range(line, line + spanned))
            assert not span & covered, f"case {case}: line {line} read twice"
            covered |= span
        blank = {n for n, text in enumerate(lines, 1) if not text}
        expected = set(range(2, len(lines) + 1)) - blank
        # Lines the reader skipped must be blank ones; none may go missing.
        missing = expected - covered
        assert not missing, f"case {case}: lines {sorted(missing)} lost in {data!r}"
    assert read_whole > CASES // 3  # the mutations mostly stay readable


def test_validation_counts_every_record_as_read_or_reported(tmp_path):
    rng = random.Random(SEED + 1)
    path = str(tmp_path / "fuzz.csv")
    checked = 0
    for case in range(CASES // 5):
        with open(path, "wb") as out:
            out.write(_mutate(rng, VALID))
        try:
            layout = inspect_file(path)
        except CsvFileError:
            continue
        mapping = auto_map(layout.headers)
        if mapping_problems(mapping, consent_from_column=True):
            continue  # the import would be refused before reading on
        parser = RowParser(
            layout.headers,
            mapping,
            default_channel="SMS",
            consent_from_column=True,
            declared_opt_in=False,
            default_region="DE",
        )
        good = bad = total = 0
        try:
            for batch in validated_batches(
                CsvRows(path, layout.delimiter, layout.encoding), parser, 5
            ):
                good += len(batch.rows)
                bad += len(batch.bad)
                total = batch.rows_total
        except CsvFileError:
            pass  # the file stops being readable: the rows before it count
        assert good + bad == total, f"case {case}"
        checked += 1
    assert checked > CASES // 20
