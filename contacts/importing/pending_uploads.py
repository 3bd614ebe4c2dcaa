"""Erasure in uploads that are not UTF-8 text: Excel workbooks, UTF-16 and
legacy encodings.

Erasure rewrites the CSV files under MEDIA_ROOT without the person's rows
(config.lib.redaction.scrub_files), reading them as UTF-8: a workbook is
compressed, a UTF-16 file has a zero byte in every other place, and a
Windows-1252 name is not its UTF-8 spelling, so the person could stay in such
an upload, waiting to be imported. Here each such upload is read as the
import reads it; one that mentions the person is rewritten as a UTF-8 CSV file
without their rows, and its job reads that file from then on.
"""

import contextlib
import csv
import os

from django.conf import settings

from contacts.importing.layout import CSV, records
from contacts.models import ImportJob

_TEXT_UTF8 = ("utf-8-sig", "utf-8")


def scrub_pending_uploads(redactor) -> int:
    """Drop the person's rows from every upload that is not UTF-8 text;
    returns how many files were rewritten."""
    folder = os.path.realpath(os.path.join(settings.MEDIA_ROOT, "imports"))
    rewritten = 0
    jobs = ImportJob.objects.exclude(file_format=CSV, encoding__in=_TEXT_UTF8).exclude(
        status__in=(ImportJob.Status.DONE, ImportJob.Status.DISCARDED)
    )
    for job in jobs.iterator():
        path = os.path.realpath(job.file_path)
        if path.startswith(folder + os.sep) and os.path.isfile(path):
            rewritten += _scrub(job, path, redactor)
    return rewritten


def _scrub(job: ImportJob, path: str, redactor) -> bool:
    target = os.path.splitext(path)[0] + ".csv"
    partial = target + ".erasure-part"
    dropped = 0
    try:
        with open(partial, "w", newline="", encoding="utf-8") as out:
            writer = csv.writer(out)
            writer.writerow(job.headers)
            for _line, values in records(job):
                if redactor.mentions("\x1f".join(values)):
                    dropped += 1
                else:
                    writer.writerow(values)
    except (OSError, ValueError):
        # Unreadable as its job reads it: it cannot be checked, so it goes.
        os.remove(partial)
        os.remove(path)
        job.status, job.error = (
            ImportJob.Status.FAILED,
            "The uploaded file was deleted by an erasure (it could not be read "
            "to remove only that person's rows). Upload it again.",
        )
        job.save(update_fields=["status", "error"])
        return True
    if not dropped:
        os.remove(partial)
        return False
    os.replace(partial, target)
    if target != path:
        with contextlib.suppress(FileNotFoundError):
            os.remove(path)
    job.file_path, job.file_format = target, CSV
    job.encoding, job.delimiter = "utf-8-sig", ","
    job.size_bytes = os.path.getsize(target)
    job.save(
        update_fields=[
            "file_path",
            "file_format",
            "encoding",
            "delimiter",
            "size_bytes",
        ]
    )
    return True
