"""System checks for the Sinch settings."""

from django.conf import settings
from django.core.checks import Error, Info, register

CREDENTIALS = ("SINCH_PROJECT_ID", "SINCH_KEY_ID", "SINCH_KEY_SECRET", "SINCH_APP_ID")


@register()
def check_sinch_settings(app_configs=None, **kwargs):
    missing = [name for name in CREDENTIALS if not getattr(settings, name)]
    if len(missing) == len(CREDENTIALS):
        return [
            Info(
                "No Sinch credentials are configured: sends go to the local "
                "Sinch simulator.",
                hint="Set SINCH_PROJECT_ID, SINCH_KEY_ID, SINCH_KEY_SECRET and "
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
    return []
