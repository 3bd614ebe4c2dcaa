"""System checks for the campaigns' settings (registered in apps.py)."""

from django.core.checks import Error, register
from django.core.exceptions import ImproperlyConfigured

from campaigns.compliance.footer import footer_settings


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
