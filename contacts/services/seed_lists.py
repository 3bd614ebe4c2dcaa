"""Marking a contact list as a seed list: the only lists test sends go to.

Marketing may build a list, but only those allowed to send (a Sender) or
Compliance may mark it as a seed list: a test send then reaches only people
who agreed to receive tests. Who marked it and when is kept on the list and
in the audit trail.
"""

from django.core.exceptions import PermissionDenied
from django.utils import timezone

from contacts.models import AuditEvent, ContactList
from contacts.roles import refusal
from contacts.services.audit import record_audit

PERMISSION = "contacts.mark_seed_list"


def may_mark_seed_lists(user) -> bool:
    return user.has_perm(PERMISSION)


def set_seed_list(contact_list: ContactList, *, seed: bool, actor) -> bool:
    """Mark (or unmark) `contact_list` as a seed list; True when it changed.

    Raises PermissionDenied for a user who may not mark seed lists.
    """
    if not may_mark_seed_lists(actor):
        raise PermissionDenied(refusal(PERMISSION, "mark a list as a seed list"))
    stored = ContactList.objects.filter(pk=contact_list.pk).values_list(
        "is_seed_list", flat=True
    )
    if bool(contact_list.pk and stored.first()) == seed:
        return False
    contact_list.is_seed_list = seed
    contact_list.seed_marked_by = actor
    contact_list.seed_marked_at = timezone.now()
    contact_list.save()
    record_audit(
        actor=actor,
        action=AuditEvent.Action.LIST_CHANGE,
        target_type="contact list",
        target_id=contact_list.pk,
        summary=(
            f"Marked the list {contact_list} as a seed list for test sends"
            if seed
            else f"The list {contact_list} is no longer a seed list"
        ),
        details={"seed_list": seed},
    )
    return True
