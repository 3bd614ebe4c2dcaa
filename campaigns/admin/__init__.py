"""Admin for message templates and campaigns."""

from campaigns.admin import batches, campaign, templates  # noqa: F401 (registers)
