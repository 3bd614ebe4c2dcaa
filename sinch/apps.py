from django.apps import AppConfig


class SinchConfig(AppConfig):
    name = "sinch"
    verbose_name = "Sinch"

    def ready(self) -> None:
        from sinch import checks  # noqa: F401  (registers the Sinch system checks)
