"""Create a staff user in one of the roles (contacts.roles), audited."""

import getpass
import sys

from django.core.management.base import BaseCommand, CommandError

from contacts import roles
from contacts.services.users import (
    UserRefused,
    create_staff_user,
    generated_password,
    role_named,
)


class Command(BaseCommand):
    help = (
        "Create a staff user in a role: "
        f"{', '.join(roles.ROLES)}. Without --password, asks for one (when run "
        "in a terminal) or makes one up and prints it."
    )

    def add_arguments(self, parser):
        parser.add_argument("username")
        parser.add_argument(
            "--role", required=True, help=f"One of {', '.join(roles.ROLES)}."
        )
        parser.add_argument("--email", default="", help="For notifications.")
        parser.add_argument("--password", help="Else asked for, or generated.")
        parser.add_argument(
            "--no-input",
            action="store_true",
            help="Never ask: generate the password when none is given.",
        )

    def handle(self, *args, username, role, email, password, no_input, **opts):
        try:
            role = role_named(role)
        except UserRefused as exc:
            raise CommandError(str(exc)) from None
        generated = False
        if password is None:
            if not no_input and sys.stdin.isatty():
                password = self._ask()
            if not password:
                password, generated = generated_password(), True
        try:
            user = create_staff_user(username, role, email=email, password=password)
        except UserRefused as exc:
            raise CommandError(str(exc)) from None
        self.stdout.write(
            f"Created staff user {user.get_username()} with the role {role}."
        )
        if generated:
            self.stdout.write(f"Password: {password}")
            self.stdout.write(
                "Give it to them privately; they can change it after login."
            )

    def _ask(self) -> str:
        first = getpass.getpass("Password (empty: generate one): ")
        if not first:
            return ""
        if getpass.getpass("Password again: ") != first:
            raise CommandError("The passwords differ: nothing was created.")
        return first
