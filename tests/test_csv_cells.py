"""The one CSV writer: every cell safe to open in a spreadsheet, whether rows
come one at a time or a million at once (the pre-send check's file)."""

import csv
import io

from config.lib.csv_cells import SafeCsvWriter, safe_row


def written(rows) -> list[list[str]]:
    handle = io.StringIO()
    SafeCsvWriter(handle).writerows(rows)
    return list(csv.reader(io.StringIO(handle.getvalue())))


def test_many_rows_at_once_get_the_same_safe_cells_as_one_at_a_time():
    rows = [
        [1, None, "Ada", '=HYPERLINK("x")', "+15551230001", "-2", 2.5, True],
        ["@SUM(A1)", "\tTab", "plain", "+1415•••0101", 0, "", "\rCR", "a=b"],
        [-3, 42, 10**20],  # numbers: a negative one reads as a formula
    ]
    one_at_a_time = io.StringIO()
    writer = SafeCsvWriter(one_at_a_time)
    for row in rows:
        writer.writerow(row)
    assert written(rows) == list(csv.reader(io.StringIO(one_at_a_time.getvalue())))
    assert safe_row(rows[0])[:2] == ["1", ""]  # text, as csv would write it
    assert written(rows) == [
        ["1", "", "Ada", '\'=HYPERLINK("x")', "+15551230001", "'-2", "2.5", "True"],
        ["'@SUM(A1)", "'\tTab", "plain", "'+1415•••0101", "0", "", "'\rCR", "a=b"],
        ["'-3", "42", "100000000000000000000"],
    ]
