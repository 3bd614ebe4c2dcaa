"""Segments: saved, dynamic audiences defined by conditions.

The definition is JSON (campaigns.segments.definition says what it may hold);
it is evaluated when a campaign is frozen, never stored as a list of people.
"""

from django.conf import settings
from django.db import models


class Segment(models.Model):
    """A named set of conditions on contacts, evaluated when it is used."""

    name = models.CharField(max_length=200, unique=True)
    description = models.TextField(blank=True)
    definition = models.JSONField(
        default=dict,
        blank=True,
        help_text="Conditions in AND/OR groups (campaigns.segments.definition).",
    )
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        editable=False,
        related_name="+",
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name
