"""Template filters of the home page."""

from django import template
from django.utils import timezone

from campaigns.tracking.health import ago as ago_text

register = template.Library()


@register.filter
def ago(then) -> str:
    """'just now', '3 minutes ago', '2 days ago'."""
    return ago_text(then, timezone.now()) if then else ""
