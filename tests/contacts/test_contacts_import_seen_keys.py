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
