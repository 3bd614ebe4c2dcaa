"""Template tags for the admin home: replies waiting for a person's review."""

from django import template

from campaigns.tracking.reply_review import replies_needing_review as pending_count

register = template.Library()


@register.simple_tag
def replies_needing_review() -> int:
    """How many replies read like an opt-out and wait for review."""
    return pending_count()
