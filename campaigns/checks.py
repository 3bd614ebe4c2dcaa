"""System checks for the campaigns' settings (registered in apps.py)."""

from django.conf import settings
from django.core.checks import Error, register
from django.core.exceptions import ImproperlyConfigured

from campaigns.compliance import quiet_hours
from campaigns.compliance.footer import footer_settings
from contacts import time_zones


@register()
def check_compliance_footer(app_configs=None, **kwargs):
    """A malformed footer setting is reported at start-up, not at the first
    pre-send check."""
    try:
        footer_settings()
    except ImproperlyConfigured as exc:
        return [
            Error(
                str(exc),
                hint="See COMPLIANCE_FOOTER_* in .env.example.",
                id="campaigns.E001",
            )
        ]
    return []


@register()
def check_compliance_settings(app_configs=None, **kwargs):
    """QUIET_HOURS* parse, and DEFAULT_RECIPIENT_TIME_ZONE is a known zone."""
    errors = []
    try:
        quiet_hours.policy()
    except ImproperlyConfigured as exc:
        errors.append(
            Error(
                str(exc),
                hint="See the quiet hours section of .env.example.",
                id="campaigns.E002",
            )
        )
    name = settings.DEFAULT_RECIPIENT_TIME_ZONE
    if name and not time_zones.known_zone(name):
        errors.append(
            Error(
                f"DEFAULT_RECIPIENT_TIME_ZONE: {name!r} is not a known time zone.",
                hint="Use an IANA name such as Europe/Berlin, or leave it empty.",
                id="campaigns.E003",
            )
        )
    return errors
