"""Admin for message templates and campaigns."""

from campaigns.admin import campaign, templates  # noqa: F401 (registers)
