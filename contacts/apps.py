from django.apps import AppConfig


class ContactsConfig(AppConfig):
    name = "contacts"
    verbose_name = "Contacts and consent"

    def ready(self) -> None:
        from django.db.models.signals import post_migrate

        from config import checks  # noqa: F401  (key strength system checks)
        from contacts.roles import sync_roles_after_migrate

        post_migrate.connect(sync_roles_after_migrate)

        from contacts.segment_indexes import ensure_sqlite_indexes

        post_migrate.connect(
            ensure_sqlite_indexes, sender=self, dispatch_uid="sqlite_segment_indexes"
        )

        from axes.signals import user_locked_out

        from contacts.services.login_lockouts import audit_lockout

        user_locked_out.connect(audit_lockout, dispatch_uid="audit_login_lockout")
