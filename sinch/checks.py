"""System checks for the Sinch settings."""

from django.conf import settings
from django.core.checks import Error, Info, Warning, register

from sinch.config import (
    CREDENTIAL_SETTINGS,
    SIMULATOR_WEBHOOK_SECRET,
    sinch_settings,
    webhook_secrets,
)


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
    return []


@register()
def check_webhook_secret(app_configs=None, **kwargs):
    """With DEBUG off, callbacks are verified only with a real secret: the
    simulator's development secret is public and never accepted there."""
    configured = settings.SINCH_WEBHOOK_SECRET
    if settings.DEBUG:
        if configured or sinch_settings().simulated:
            return []
        return [
            Warning(
                "SINCH_WEBHOOK_SECRET is not set: no Sinch callback can be "
                "verified, so every callback will be refused.",
                hint="Set it to the secret of the app's webhook in the Sinch "
                "dashboard.",
                id="sinch.W001",
            )
        ]
    if webhook_secrets(configured, debug=False):
        return []
    why = (
        f"is the simulator's public development secret {SIMULATOR_WEBHOOK_SECRET!r}"
        if configured
        else "is not set"
    )
    return [
        Error(
            f"SINCH_WEBHOOK_SECRET {why} and DEBUG is off: the webhook refuses "
            "every Sinch callback (delivery receipts, STOP replies, opt-ins).",
            hint="Set SINCH_WEBHOOK_SECRET to the secret of the app's webhook in "
            "the Sinch dashboard (with the simulator: any long random value, "
            "which the simulator then signs with).",
            id="sinch.E002",
        )
    ]
