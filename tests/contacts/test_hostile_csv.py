"""Hostile CSV files: every broken line is reported by its number, and the
rows around it still import."""

import pytest

from contacts.importing.importer import run_import
from contacts.importing.jobs import ImportSetupError, create_import_job
from contacts.models import ChannelIdentity, Contact, ImportJob

HEADER = b"phone,first_name\n"


@pytest.fixture
def import_bytes(db, tmp_path):
    """Write raw bytes to a file and import it (consent: none)."""

    def run(data: bytes, *, dry_run=False):
        path = tmp_path / "hostile.csv"
        path.write_bytes(data)
        job = create_import_job(
            path=str(path),
            original_name="hostile.csv",
            actor=None,
            target_list=None,
            default_channel="SMS",
            purpose="MARKETING",
            consent_mode=ImportJob.ConsentMode.NONE,
            consent_source="IMPORT",
            consent_evidence="",
        )
        return run_import(job, dry_run=dry_run)

    return run


def _problems(job):
    return {e["line"]: e["problem"] for e in job.sample_errors}


def _names():
    return set(Contact.objects.values_list("first_name", flat=True))


def test_an_unclosed_quote_is_reported_on_its_line_and_the_rows_after_it_import(
    import_bytes,
):
    job = import_bytes(
        HEADER
        + b"+4915112345671,Anna\n"
        + b'+4915112345672,"Bob\n'  # line 3: the quote is never closed
        + b"+4915112345673,Carl\n"
        + b"+4915112345674,Dora\n"
    )

    assert job.status == ImportJob.Status.DONE, job.error
    problems = _problems(job)
    assert list(problems) == [3]
    assert "quote opened on line 3 is never closed" in problems[3]
    assert _names() == {"Anna", "Carl", "Dora"}
    assert (job.rows_total, job.rows_ok, job.rows_bad) == (4, 3, 1)


def test_a_quote_closed_by_a_later_row_does_not_swallow_the_rows_between(
    import_bytes,
):
    job = import_bytes(
        HEADER
        + b'+4915112345671,"Anna\n'  # line 2: unclosed
        + b"+4915112345672,Bob\n"
        + b'+4915112345673,"Carl"\n'  # its quote would close line 2's
        + b"+4915112345674,Dora\n"
    )

    assert job.status == ImportJob.Status.DONE, job.error
    assert list(_problems(job)) == [2]
    assert "stray quote" in _problems(job)[2]
    assert _names() == {"Bob", "Carl", "Dora"}


def test_a_quote_left_open_for_many_lines_is_reported_where_it_opened(import_bytes):
    rows = b"".join(b"+49151123%05d,Name%d\n" % (i, i) for i in range(200))
    job = import_bytes(HEADER + b'+4915199999999,"Open\n' + rows)

    assert job.status == ImportJob.Status.DONE, job.error
    problems = _problems(job)
    assert "quote opened on line 2" in problems[2]
    assert Contact.objects.count() == 200
    assert job.rows_ok + job.rows_bad == job.rows_total


def test_a_quoted_value_with_line_breaks_still_imports(import_bytes):
    job = import_bytes(HEADER + b'+4915112345671,"Anna\nMaria"\n+4915112345672,Bob\n')

    assert job.rows_bad == 0, job.sample_errors
    assert _names() == {"Anna\nMaria", "Bob"}


def test_a_nul_byte_rejects_its_row_with_the_reason_and_the_others_import(
    import_bytes,
):
    job = import_bytes(
        HEADER
        + b"+4915112345671,Anna\n"
        + b"+4915112345672,B\x00ob\n"
        + b"+4915112345673,Carl\n"
    )

    assert job.status == ImportJob.Status.DONE, job.error
    assert "NUL byte" in _problems(job)[3]
    assert "'first_name'" in _problems(job)[3]
    assert _names() == {"Anna", "Carl"}
    with open(job.report_file, encoding="utf-8") as report:
        assert "B\x00ob" in report.read()  # nothing lost: the row is in the report


def test_a_nul_byte_in_the_header_is_a_clear_error(import_bytes):
    with pytest.raises(ImportSetupError, match="NUL byte"):
        import_bytes(b"phone,first\x00name\n+4915112345671,Anna\n")


@pytest.mark.parametrize("ending", [b"\r", b"\r\n", b"\n"], ids=["CR", "CRLF", "LF"])
def test_every_line_ending_is_read_including_old_mac_cr(import_bytes, ending):
    data = ending.join(
        [b"phone,first_name", b"+4915112345671,Anna", b"+4915112345672,Bob", b""]
    )
    job = import_bytes(data)

    assert job.status == ImportJob.Status.DONE, job.error
    assert job.rows_bad == 0
    assert ChannelIdentity.objects.count() == 2
    assert _names() == {"Anna", "Bob"}


def test_a_header_with_an_unclosed_quote_is_a_clear_error(import_bytes):
    with pytest.raises(ImportSetupError, match="header"):
        import_bytes(b'phone,"first_name\n+4915112345671,Anna\n')
