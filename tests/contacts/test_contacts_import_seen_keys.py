"""The import's duplicate check keeps its keys (phone numbers) in a file that
no one can find on disk, even while the import runs or after it was killed."""

import os
import tempfile

from contacts.importing.seen import SeenKeys


def _seen_files() -> set[str]:
    folder = tempfile.gettempdir()
    return {name for name in os.listdir(folder) if name.startswith("import-seen-")}


def test_the_numbers_of_the_duplicate_check_are_never_left_on_disk():
    before = _seen_files()
    seen = SeenKeys()
    try:
        assert not os.path.exists(seen.path)
        assert _seen_files() == before
        first = seen.check_and_add([("SMS:+14155550100", 2), ("SMS:+14155550101", 3)])
        again = seen.check_and_add([("SMS:+14155550100", 9), ("SMS:+14155550102", 10)])
    finally:
        seen.close()
    assert first == [None, None]
    assert again == [2, None]
    assert _seen_files() == before


def test_a_repeated_number_is_reported_against_the_line_it_first_appeared_on():
    seen = SeenKeys()
    try:
        first = seen.check_and_add(
            [("SMS:+14155550100", 2), ("SMS:+14155550101", 3), ("SMS:+14155550101", 4)]
        )
        # Seen in an earlier chunk, then twice more in this one; and a new
        # number twice in this one.
        again = seen.check_and_add(
            [
                ("SMS:+14155550102", 7),
                ("SMS:+14155550100", 8),
                ("SMS:+14155550102", 9),
                ("SMS:+14155550100", 10),
            ]
        )
    finally:
        seen.close()
    assert first == [None, None, 3]
    assert again == [None, 2, 7, 2]


def test_the_duplicate_check_handles_chunks_larger_than_one_statement():
    seen = SeenKeys()
    try:
        keys = [(f"SMS:+1415555{n:04d}", n + 2) for n in range(2500)]
        first = seen.check_and_add(keys)
        again = seen.check_and_add([(key, line + 5000) for key, line in keys[::-1]])
    finally:
        seen.close()
    assert first == [None] * 2500
    assert again == [line for _, line in keys[::-1]]
