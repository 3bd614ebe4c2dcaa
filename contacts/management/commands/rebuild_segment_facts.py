"""Recompute what segments count from (Contact.segment_facts), or check it."""

import time

from django.core.management.base import BaseCommand, CommandError

from contacts import segment_facts


class Command(BaseCommand):
    help = (
        "Recompute every contact's segment facts (country and consent tokens "
        "of its live identities) from the identities. --check only reports the "
        "contacts whose stored facts differ (exit status 1 when any do)."
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "--check",
            action="store_true",
            help="Report drift without writing anything.",
        )

    def handle(self, *args, check=False, **options):
        started = time.monotonic()
        if check:
            drifted = segment_facts.drift()
            if drifted:
                shown = ", ".join(f"#{pk}" for pk in drifted[:20])
                raise CommandError(
                    f"{len(drifted)} contact(s) with stale segment facts "
                    f"({shown}{', ...' if len(drifted) > 20 else ''}); "
                    "run rebuild_segment_facts without --check to fix them."
                )
            self.stdout.write("Segment facts match the identities.")
            return
        done = segment_facts.rebuild()
        self.stdout.write(
            f"Segment facts recomputed for {done} contact(s) "
            f"in {time.monotonic() - started:.1f} s."
        )
