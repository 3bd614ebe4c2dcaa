"""First-run set-up for `make run`: demo data and an admin login, each once."""

import secrets
from pathlib import Path

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand

from contacts.demo import SEED_LIST, ensure_demo_seed_list, load_demo_data

LOGIN_FILE = Path(settings.BASE_DIR) / "var" / "admin-login.txt"


class Command(BaseCommand):
    help = "Load demo data and create the admin login, once; print the login."

    def handle(self, *args, **opts):
        created = load_demo_data()
        if created:
            self.stdout.write(f"Loaded {created} demo contacts in two lists.")
        if ensure_demo_seed_list():
            self.stdout.write(
                f"Created the seed list “{SEED_LIST}” (3 people) for test sends."
            )
        User = get_user_model()
        if (
            not LOGIN_FILE.exists()
            or not User.objects.filter(username="admin").exists()
        ):
            password = secrets.token_urlsafe(12)
            user, _ = User.objects.get_or_create(username="admin")
            user.is_staff = user.is_superuser = True
            user.set_password(password)
            user.save()
            LOGIN_FILE.parent.mkdir(parents=True, exist_ok=True)
            LOGIN_FILE.write_text(f"admin\n{password}\n")
            LOGIN_FILE.chmod(0o600)
        username, password = LOGIN_FILE.read_text().split()[:2]
        self.stdout.write(
            self.style.SUCCESS(
                "\n  Admin: http://127.0.0.1:8000/admin/\n"
                f"  Login: {username} / {password}\n"
            )
        )
