"""Import a (very large) CSV file of contacts from the command line."""

import codecs
import sys
import time

from django.core.management.base import BaseCommand, CommandError

from contacts.importing.encodings import ENCODINGS
from contacts.importing.importer import run_import
from contacts.importing.jobs import ImportSetupError, create_import_job
from contacts.importing.mapping import FIELDS
from contacts.models import ConsentEvent, ContactList, ImportJob, Purpose
from sinch.channels import Channel


class Command(BaseCommand):
    help = (
        "Import contacts from a CSV file or an Excel workbook (.xlsx), streaming, "
        "with a line-numbered report of every rejected row. Consent needs "
        "--consent-column or --declare-opt-in with --evidence."
    )

    def add_arguments(self, parser):
        parser.add_argument("path")
        parser.add_argument(
            "--list",
            dest="list_name",
            help="Add everyone to this list (created when missing).",
        )
        parser.add_argument(
            "--channel",
            default=Channel.SMS,
            choices=[c.value for c in Channel],
            help="Channel of rows without a channel column.",
        )
        parser.add_argument(
            "--purpose", default=Purpose.MARKETING, choices=[p.value for p in Purpose]
        )
        consent = parser.add_mutually_exclusive_group()
        consent.add_argument(
            "--consent-column",
            action="store_true",
            help="Read consent from the column mapped to consent.",
        )
        consent.add_argument(
            "--declare-opt-in",
            action="store_true",
            help="Every row opted in, on the --evidence given.",
        )
        parser.add_argument(
            "--source",
            default=ConsentEvent.Source.IMPORT,
            choices=[s.value for s in ConsentEvent.Source],
        )
        parser.add_argument(
            "--evidence",
            default="",
            help="Where the consent comes from (required with consent).",
        )
        parser.add_argument(
            "--map",
            action="append",
            default=[],
            metavar="HEADER=FIELD",
            help=f"Override a column mapping; fields: {', '.join(FIELDS)}",
        )
        parser.add_argument(
            "--encoding",
            default="",
            help="The CSV file's encoding (default: detected), e.g. utf-8, "
            "cp1252, latin-1, utf-16.",
        )
        parser.add_argument(
            "--date-order",
            default="",
            choices=["", *ImportJob.DateOrder.values[1:]],
            help="How to read ambiguous consent dates like 03/04/2026: DMY (day "
            "first) or MDY (month first); without it they are rejected.",
        )
        parser.add_argument(
            "--dry-run", action="store_true", help="Validate only; write nothing."
        )

    def handle(self, *args, **opts):
        mapping = {}
        for item in opts["map"]:
            header, sep, field = item.partition("=")
            if not sep:
                raise CommandError(f"--map {item!r}: use HEADER=FIELD.")
            mapping[header] = field
        target = None
        if opts["list_name"]:
            target, _ = ContactList.objects.get_or_create(name=opts["list_name"])
        if opts["consent_column"]:
            mode = ImportJob.ConsentMode.COLUMN
        elif opts["declare_opt_in"]:
            mode = ImportJob.ConsentMode.DECLARED_OPT_IN
        else:
            mode = ImportJob.ConsentMode.NONE
        try:
            job = create_import_job(
                path=opts["path"],
                original_name=opts["path"],
                actor=None,
                target_list=target,
                default_channel=opts["channel"],
                purpose=opts["purpose"],
                consent_mode=mode,
                consent_source=opts["source"],
                consent_evidence=opts["evidence"],
                mapping=mapping,
                encoding=_codec(opts["encoding"]),
                date_order=opts["date_order"],
            )
        except ImportSetupError as exc:
            raise CommandError(str(exc)) from None
        started = time.monotonic()

        def progress(job):
            rate = job.rows_total / max(time.monotonic() - started, 1e-9)
            sys.stderr.write(
                f"\r{job.percent_done:3d}% {job.rows_total} rows "
                f"({job.rows_bad} bad) {rate:,.0f} rows/s"
            )

        job = run_import(job, dry_run=opts["dry_run"], on_progress=progress)
        sys.stderr.write("\n")
        if job.error:
            raise CommandError(f"Import #{job.pk} failed: {job.error}")
        self.stdout.write(
            f"Import #{job.pk}: {job.rows_total} rows, {job.rows_ok} imported, "
            f"{job.rows_bad} rejected; {job.contacts_created} contacts created, "
            f"{job.contacts_merged} merged; {job.opt_ins} opt-ins, {job.opt_outs} "
            f"opt-outs, {job.kept_opted_out} kept opted out.\n"
            f"Report of rejected rows: {job.report_file}"
        )


def _codec(name: str) -> str:
    """A codec name as typed ("UTF-8", "windows-1252") as the import knows it."""
    if not name:
        return ""
    try:
        codec = codecs.lookup(name).name
    except LookupError:
        raise CommandError(f"Unknown encoding {name!r}.") from None
    known = {codecs.lookup(key).name: key for key in ENCODINGS}
    known["utf-8"] = "utf-8-sig"  # reads UTF-8 with or without a BOM
    if codec not in known:
        raise CommandError(
            f"Unsupported encoding {name!r}; use one of: {', '.join(ENCODINGS)}."
        )
    return known[codec]
