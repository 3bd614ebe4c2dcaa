"""Admin for message templates and campaigns."""

from campaigns.admin import (  # noqa: F401 (registers)
    batches,
    campaign,
    health,
    inbound,
    links,
    notifications,
    recipients,
    segments,
    templates,
)
