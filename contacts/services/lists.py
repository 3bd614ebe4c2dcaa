"""List membership changes made by people in the admin."""

from contacts.models import AuditEvent, ContactList, ListMembership
from contacts.services.audit import record_audit


def add_to_list(*, contacts, contact_list: ContactList, actor) -> int:
    """Add `contacts` to `contact_list`; existing members are left as they are."""
    ids = list(contacts.filter(erased_at__isnull=True).values_list("pk", flat=True))
    existing = set(
        ListMembership.objects.filter(
            contact_list=contact_list, contact_id__in=ids
        ).values_list("contact_id", flat=True)
    )
    new = [
        ListMembership(
            contact_list=contact_list, contact_id=pk, source=ListMembership.Source.ADMIN
        )
        for pk in ids
        if pk not in existing
    ]
    ListMembership.objects.bulk_create(new, ignore_conflicts=True, batch_size=1000)
    record_audit(
        actor=actor,
        action=AuditEvent.Action.LIST_CHANGE,
        target_type="list",
        target_id=contact_list.pk,
        summary=f"Added {len(new)} contacts to list {contact_list.name!r}",
        details={"contact_ids": [m.contact_id for m in new][:1000]},
    )
    return len(new)


def remove_from_list(*, contacts, contact_list: ContactList, actor) -> int:
    """Remove `contacts` from `contact_list`; returns how many were members."""
    removed, _ = ListMembership.objects.filter(
        contact_list=contact_list, contact__in=contacts
    ).delete()
    record_audit(
        actor=actor,
        action=AuditEvent.Action.LIST_CHANGE,
        target_type="list",
        target_id=contact_list.pk,
        summary=f"Removed {removed} contacts from list {contact_list.name!r}",
    )
    return removed
