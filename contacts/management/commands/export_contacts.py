"""Export every contact with its consent state to a CSV file."""

from django.core.management.base import BaseCommand

from contacts.exporting import stream_csv
from contacts.models import Contact


class Command(BaseCommand):
    help = "Write all contacts, one row per channel identity, to a CSV file."

    def add_arguments(self, parser):
        parser.add_argument("path")

    def handle(self, *args, path, **opts):
        with open(path, "w", newline="", encoding="utf-8") as out:
            for line in stream_csv(
                Contact.objects.all(), actor=None, description=f"all, to {path}"
            ):
                out.write(line)
        self.stdout.write(f"Wrote {path}")
