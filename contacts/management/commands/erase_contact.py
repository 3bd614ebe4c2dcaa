"""Erase a person on request (e.g. by e-mail): the admin's "Erase" button."""

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError

from config.lib.redaction import mask_identity
from contacts.models import Contact
from contacts.services.erasure import erase, find_for_erasure


class Command(BaseCommand):
    help = (
        "Erase a contact's personal data everywhere (tables, files under "
        "MEDIA_ROOT); their numbers stay only as suppressed keyed hashes and the "
        "consent ledger is kept. Name the person by --identity (a phone number "
        "in any format, or another channel's id) or by --contact ID."
    )

    def add_arguments(self, parser):
        who = parser.add_mutually_exclusive_group(required=True)
        who.add_argument("--identity", help="A number or id the person is reached on.")
        who.add_argument("--contact", type=int, help="The contact's id.")
        parser.add_argument(
            "--reason",
            required=True,
            help="Why (e.g. 'E-mail request of 2026-12-01, ticket 4711'); kept in "
            "the audit trail, with the person's own data taken out.",
        )
        parser.add_argument(
            "--by", help="Username of who handles the request (the audit's actor)."
        )

    def handle(self, *args, identity, contact, reason, by, **opts):
        if not reason.strip():
            raise CommandError("--reason must say why the person is erased.")
        actor = self._actor(by)
        if contact is not None:
            found = Contact.objects.filter(pk=contact).first()
            if found is None:
                raise CommandError(f"No contact #{contact}.")
            pending, done = ([], [found]) if found.erased_at else ([found], [])
            named = f"contact #{contact}"
        else:
            pending, done = find_for_erasure(identity)
            # Never echo the number in full: terminals and their logs are kept.
            named = f"identity {mask_identity(identity.strip())}"
            if not pending and not done:
                raise CommandError(f"No contact has the {named}.")
        for person in done:
            self.stdout.write(f"Contact #{person.pk} was erased before: nothing to do.")
        for person in pending:
            report = erase(contact=person, actor=actor, reason=reason)
            self.stdout.write(f"Erased contact #{person.pk} ({named}):")
            for line in report.lines():
                self.stdout.write(f"  {line}")

    def _actor(self, username):
        if not username:
            return None
        user = get_user_model().objects.filter(username=username).first()
        if user is None:
            raise CommandError(f"No user {username!r}.")
        return user
