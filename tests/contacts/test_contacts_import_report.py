"""CSV import: bad rows reported by line number while the good rows import."""

import csv
import io

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from contacts.importing.importer import run_import
from contacts.importing.jobs import ImportSetupError, create_import_job
from contacts.models import (
    AuditEvent,
    ChannelIdentity,
    ConsentEvent,
    Contact,
    ImportJob,
    ListMembership,
)

HEADER = ["phone", "first_name", "channel", "consent", "time_zone"]
EVIDENCE = "Shop sign-up form, 2024 wording"


@pytest.fixture
def run_csv(db):
    """create_import_job + run_import, with consent from the column by default."""

    def run(path, *, dry_run=False, **options):
        options = {
            "original_name": "contacts.csv",
            "actor": None,
            "target_list": None,
            "default_channel": "SMS",
            "purpose": "MARKETING",
            "consent_mode": ImportJob.ConsentMode.COLUMN,
            "consent_source": "IMPORT",
            "consent_evidence": EVIDENCE,
            **options,
        }
        job = create_import_job(path=path, **options)
        return run_import(job, dry_run=dry_run, actor=options["actor"])

    return run


def _mixed_rows():
    """Header on line 1; a quoted two-line name occupies lines 10 and 11."""
    return [
        HEADER,
        ["+4915123456789", "Anna", "SMS", "yes", "Europe/Berlin"],  # 2 ok
        ["not-a-number", "Bad", "SMS", "yes", ""],  # 3
        ["+4915123456780", "Carl", "FAX", "yes", ""],  # 4
        ["+49 151 23456789", "Dup", "SMS", "yes", ""],  # 5 duplicate of 2
        ["", "NoPhone", "SMS", "yes", ""],  # 6
        ["+4915123456781", "Eve", "SMS", "maybe", ""],  # 7
        ["+4915123456782", "Fay", "SMS", "yes", "Mars/Olympus"],  # 8
        ["+4915123456783", "Gus"],  # 9 too few columns
        ["+4915123456784", "Multi\nLine", "SMS", "no", ""],  # 10-11 ok
        ["+4915123456785", "Hal", "SMS", "nope", ""],  # 12
        ["+4915123456786", "Ivy", "whatsapp", "", "Europe/Paris", "extra"],  # 13
        ["+4915123456787", "Jan", "WHATSAPP", "", "Europe/Paris"],  # 14 ok
    ]


EXPECTED_BAD = {
    3: "invalid SMS identity 'not-a-number'",
    4: "unknown channel 'FAX'",
    5: "duplicate in file: SMS +4915123456789 is already on line 2",
    6: "missing required value: 'phone' is empty",
    7: "consent value 'maybe' not understood",
    8: "unknown time zone 'Mars/Olympus'",
    9: "has 2 columns, the header has 5",
    12: "consent value 'nope' not understood",
    13: "has 6 columns, the header has 5",
}


def _assert_expected_problems(samples):
    # Duplicates are found when a chunk is written, after the parse errors.
    assert sorted(s["line"] for s in samples) == sorted(EXPECTED_BAD)
    for sample in samples:
        assert EXPECTED_BAD[sample["line"]] in sample["problem"], sample


def test_bad_rows_are_reported_by_line_while_good_rows_import(write_csv, run_csv):
    job = run_csv(write_csv(_mixed_rows()))

    assert job.status == ImportJob.Status.DONE
    assert job.error == ""
    assert (job.rows_total, job.rows_ok, job.rows_bad) == (12, 3, 9)
    _assert_expected_problems(job.sample_errors)
    assert sorted(ChannelIdentity.objects.values_list("channel", "identity")) == [
        ("SMS", "+4915123456784"),
        ("SMS", "+4915123456789"),
        ("WHATSAPP", "+4915123456787"),
    ]
    anna = Contact.objects.get(identities__identity="+4915123456789")
    assert (anna.first_name, anna.time_zone) == ("Anna", "Europe/Berlin")
    multi = Contact.objects.get(first_name="Multi\nLine").identities.get()
    assert multi.origin_line == 10


def test_line_numbers_count_physical_lines_after_a_quoted_newline(write_csv, run_csv):
    rows = [
        ["phone", "first_name", "notes"],
        ["+4915123456789", "Anna", "first line\nsecond line\r\nthird line"],  # 2-4
        ["+4915123456780", "Ben", ""],  # 5
        ["nope", "Bad", ""],  # 6
        [],  # 7 blank line
        ["+4915123456781", "Cid", "x"],  # 8
        ["12", "Short", 'a "quoted"\nvalue'],  # 9-10
        ["+4915123456782", "Dan", ""],  # 11
        ["+4915123456780", "Ben again", ""],  # 12
    ]
    job = run_csv(write_csv(rows), consent_mode=ImportJob.ConsentMode.NONE)
    assert [(s["line"]) for s in job.sample_errors] == [6, 9, 12]
    assert "already on line 5" in job.sample_errors[2]["problem"]
    assert job.rows_ok == 4
    origin = dict(ChannelIdentity.objects.values_list("identity", "origin_line"))
    assert origin == {
        "+4915123456789": 2,
        "+4915123456780": 5,
        "+4915123456781": 8,
        "+4915123456782": 11,
    }


def test_the_report_csv_lists_each_bad_row_with_its_line(write_csv, run_csv):
    job = run_csv(write_csv(_mixed_rows()))
    with open(job.report_file, newline="", encoding="utf-8") as f:
        report = list(csv.reader(f))
    assert report[0] == ["line", "problem", *HEADER]
    assert sorted(int(r[0]) for r in report[1:]) == sorted(EXPECTED_BAD)
    by_line = {int(r[0]): r for r in report[1:]}
    assert by_line[3][2:] == ["not-a-number", "Bad", "SMS", "yes", ""]
    assert by_line[9][2:] == ["+4915123456783", "Gus"]
    assert "already on line 2" in by_line[5][1]


def test_a_dry_run_writes_nothing_but_reports_the_same_rows(write_csv, run_csv):
    path = write_csv(_mixed_rows())
    counts = (
        Contact.objects.count(),
        ChannelIdentity.objects.count(),
        ConsentEvent.objects.count(),
        ListMembership.objects.count(),
        AuditEvent.objects.count(),
    )
    dry = run_csv(path, dry_run=True)
    assert dry.status == ImportJob.Status.VALIDATED
    assert counts == (
        Contact.objects.count(),
        ChannelIdentity.objects.count(),
        ConsentEvent.objects.count(),
        ListMembership.objects.count(),
        AuditEvent.objects.count(),
    )
    _assert_expected_problems(dry.sample_errors)

    real = run_csv(path)
    assert real.sample_errors == dry.sample_errors
    for name in (
        "rows_total",
        "rows_ok",
        "rows_bad",
        "contacts_created",
        "opt_ins",
        "opt_outs",
    ):
        assert getattr(dry, name) == getattr(real, name), name
    with (
        open(dry.report_file, encoding="utf-8") as a,
        open(real.report_file, encoding="utf-8") as b,
    ):
        assert a.read() == b.read()


def test_the_import_is_in_the_audit_trail(write_csv, run_csv, compliance_admin):
    job = run_csv(write_csv(_mixed_rows()), actor=compliance_admin)
    audit = AuditEvent.objects.get(action=AuditEvent.Action.IMPORT)
    assert audit.actor == compliance_admin
    assert audit.target_type == "import"
    assert audit.target_id == str(job.pk)
    assert "3 rows imported, 9 rejected" in audit.summary
    assert audit.details["rows_ok"] == 3
    assert audit.details["rows_bad"] == 9
    assert audit.details["evidence"] == EVIDENCE
    assert audit.details["consent_mode"] == "COLUMN"


def test_utf8_with_bom_is_read(write_csv, run_csv):
    path = write_csv(
        [
            ["phone", "first_name", "last_name"],
            ["+4915123456789", "Jürgen", "Groß"],
            ["+4915123456780", "Zoë", "Ødegård"],
        ],
        bom=True,
    )
    with open(path, "rb") as f:
        assert f.read(3) == b"\xef\xbb\xbf"
    job = run_csv(path, consent_mode=ImportJob.ConsentMode.NONE)
    assert job.headers == ["phone", "first_name", "last_name"]
    assert job.mapping["phone"] == "identity"
    assert (job.rows_ok, job.rows_bad) == (2, 0)
    assert set(Contact.objects.values_list("first_name", "last_name")) == {
        ("Jürgen", "Groß"),
        ("Zoë", "Ødegård"),
    }


def test_semicolon_delimited_files_are_read(write_csv, run_csv):
    path = write_csv(
        [
            ["Telefon;ish", "first_name", "tier"],
            ["+49 151 23456789", "Anna", "gold, silver"],
            ["bad", "Bert", "x"],
        ],
        delimiter=";",
        name="semi.csv",
    )
    job = run_csv(
        path,
        consent_mode=ImportJob.ConsentMode.NONE,
        mapping={"Telefon;ish": "identity"},
    )
    assert job.delimiter == ";"
    assert (job.rows_ok, job.rows_bad) == (1, 1)
    assert job.sample_errors[0]["line"] == 3
    anna = Contact.objects.get()
    assert anna.attributes == {"tier": "gold, silver"}
    assert anna.identities.get().identity == "+4915123456789"


@pytest.mark.parametrize(
    "text",
    [
        "phone,last_name\n+4915123456789,Müller\n+4915123456780,Schmidt\n",
        # The only non-UTF-8 byte is near the end of a small file.
        "phone,last_name\n+4915123456789,Schmidt\n+4915123456780,René\n",
    ],
    ids=["bad-byte-mid-file", "bad-byte-at-the-end"],
)
def test_a_file_chosen_as_utf8_that_is_not_gets_a_clear_error(tmp_path, run_csv, text):
    """Detection would read it as Latin-1 (see test_contacts_import_forgiving);
    a user who says it is UTF-8 is told that it is not."""
    path = tmp_path / "latin1.csv"
    path.write_bytes(text.encode("latin-1"))
    with pytest.raises(ImportSetupError, match=r"not UTF-8.*CSV UTF-8"):
        run_csv(
            str(path), consent_mode=ImportJob.ConsentMode.NONE, encoding="utf-8-sig"
        )
    assert ImportJob.objects.count() == 0
    assert Contact.objects.count() == 0


def test_the_command_turns_a_non_utf8_file_into_a_command_error(tmp_path, db):
    path = tmp_path / "cp1252.csv"
    text = "phone;name\r\n+4915123456789;Ren\xe9 Dupont\r\n+4915123456780;Anna\r\n"
    path.write_bytes(text.encode("latin-1"))
    with pytest.raises(CommandError, match="not UTF-8"):
        call_command(
            "import_contacts", str(path), "--encoding", "utf-8", stdout=io.StringIO()
        )


def test_a_non_utf8_byte_late_in_the_file_keeps_every_row_read_before_it(
    tmp_path, run_csv
):
    """The error says the rows before the bad line were processed; they must be."""
    lines = ["phone,first_name"]
    lines += [f"+491510000{n:04d},Person {n}" for n in range(2600)]
    good = ("\n".join(lines) + "\n").encode()
    assert len(good) > 64 * 1024  # beyond what the header sniffing reads
    path = tmp_path / "late.csv"
    path.write_bytes(good + "+4915123456789,Ren\xe9\n".encode("latin-1"))

    job = run_csv(
        str(path), consent_mode=ImportJob.ConsentMode.NONE, encoding="utf-8-sig"
    )

    assert job.status == ImportJob.Status.FAILED
    assert "not UTF-8" in job.error
    assert job.rows_total > 2000
    assert job.rows_ok + job.rows_bad == job.rows_total, job.error
    assert Contact.objects.count() == job.rows_ok == job.rows_total


def test_wrong_header_is_a_setup_error(write_csv, run_csv):
    with pytest.raises(ImportSetupError, match="phone number / identity"):
        run_csv(
            write_csv([["name", "city"], ["Anna", "Berlin"]]),
            consent_mode=ImportJob.ConsentMode.NONE,
        )
    with pytest.raises(ImportSetupError, match="appears twice"):
        run_csv(
            write_csv([["phone", "Phone"], ["1", "2"]]),
            consent_mode=ImportJob.ConsentMode.NONE,
        )
    with pytest.raises(ImportSetupError, match="no column is mapped to Consent"):
        run_csv(write_csv([["phone"], ["+4915123456789"]]))
    assert ImportJob.objects.count() == 0


def test_the_import_command_reports_rows_and_writes_the_report(write_csv, db):
    out = io.StringIO()
    call_command(
        "import_contacts",
        write_csv(_mixed_rows()),
        "--list",
        "Spring fair",
        "--consent-column",
        "--evidence",
        EVIDENCE,
        stdout=out,
    )
    text = out.getvalue()
    assert "12 rows, 3 imported, 9 rejected" in text
    job = ImportJob.objects.get()
    assert job.report_file in text
    _assert_expected_problems(job.sample_errors)
    assert job.target_list.name == "Spring fair"
    assert job.target_list.memberships.count() == 3


def test_the_import_command_dry_run_writes_nothing(write_csv, db):
    out = io.StringIO()
    call_command(
        "import_contacts",
        write_csv(_mixed_rows()),
        "--consent-column",
        "--evidence",
        EVIDENCE,
        "--dry-run",
        stdout=out,
    )
    assert "3 imported, 9 rejected" in out.getvalue()
    assert Contact.objects.count() == 0
    assert ConsentEvent.objects.count() == 0
    assert ImportJob.objects.get().status == ImportJob.Status.VALIDATED
