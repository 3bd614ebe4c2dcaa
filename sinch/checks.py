"""System checks for the Sinch settings."""

from django.conf import settings
from django.core.checks import Error, Info, Warning, register

from sinch.config import CREDENTIAL_SETTINGS, sinch_settings


@register()
def check_sinch_settings(app_configs=None, **kwargs):
    missing = [name for name in CREDENTIAL_SETTINGS if not getattr(settings, name)]
    if len(missing) == len(CREDENTIAL_SETTINGS):
        conf = sinch_settings()
        return [
            Info(
                "No Sinch credentials are configured: sends go to the local "
                f"Sinch simulator at {conf.batch_api_url}.",
                hint="Start it with `manage.py sinch_simulator` (make run does). "
                "Set SINCH_PROJECT_ID, SINCH_KEY_ID, SINCH_KEY_SECRET and "
                "SINCH_APP_ID to send through Sinch.",
                id="sinch.I001",
            )
        ]
    if missing:
        return [
            Error(
                f"Sinch is partly configured; missing: {', '.join(missing)}.",
                hint="Set all four Sinch credentials, or none to use the simulator.",
                id="sinch.E001",
            )
        ]
    if not settings.SINCH_WEBHOOK_SECRET:
        return [
            Warning(
                "SINCH_WEBHOOK_SECRET is not set: no Sinch callback can be "
                "verified, so every callback will be refused.",
                hint="Set it to the secret of the app's webhook in the Sinch "
                "dashboard.",
                id="sinch.W001",
            )
        ]
    return []
