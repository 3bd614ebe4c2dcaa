"""The fields that make a contact list a seed list (ContactList inherits them).

Test sends go only to seed lists; only a Compliance user or a Sender marks one
(contacts.services.seed_lists), and who did it, and when, is kept.
"""

from django.conf import settings
from django.db import models


class SeedListMarking(models.Model):
    is_seed_list = models.BooleanField(
        "seed list",
        default=False,
        help_text="Test sends of campaigns may go to this list (colleagues' "
        "phones). Only a Compliance user or a Sender can mark it.",
    )
    seed_marked_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        editable=False,
        on_delete=models.SET_NULL,
        related_name="+",
        verbose_name="seed list marked by",
    )
    seed_marked_at = models.DateTimeField(
        "seed list marked at", null=True, blank=True, editable=False
    )

    class Meta:
        abstract = True
        permissions = [
            ("mark_seed_list", "Can mark a list as a seed list for test sends"),
        ]
