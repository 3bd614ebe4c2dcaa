"""Send kept, unapplied callbacks through the processor again (the health
page's "Callbacks not understood")."""

from django.core.management.base import BaseCommand, CommandError

from campaigns.tracking import receipts
from campaigns.tracking.orphans import REQUEUABLE, requeue_unapplied


class Command(BaseCommand):
    help = (
        "Process again the callbacks kept as UNKNOWN (an unknown batch_* key: "
        "run this once its key is in sinch/wire.py) or MISMATCH (a processing "
        "report naming someone else), and print what became of them."
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "--state",
            action="append",
            choices=REQUEUABLE,
            help="Only callbacks in this state (repeatable; default: both).",
        )

    def handle(self, *args, state, **opts):
        try:
            n = requeue_unapplied(state or REQUEUABLE)
        except ValueError as exc:
            raise CommandError(str(exc)) from None
        if not n:
            self.stdout.write("No kept callback to process again.")
            return
        outcome = receipts.process_pending()
        self.stdout.write(f"{n} callbacks processed again: {receipts.summary(outcome)}")
