"""The rules every write of a channel identity follows, wherever it comes
from (a form, a service, a bulk path): a stored identity's value never
changes (erasure's keyed hash is the one exception), and the contact's
segment facts (contacts.segment_facts) follow every change."""

from django.db import models

from contacts import segment_facts


class ImmutableIdentityError(Exception):
    """Raised when code tries to change a stored identity's value: a new number
    is a new identity (contacts.services.identities.replace_identity)."""


def is_erasure_hash(value) -> bool:
    # The one value an identity may take after it is stored: erasure's keyed hash
    # (contacts.services.erasure.ERASED_PREFIX; erasure imports this module).
    return isinstance(value, str) and value.startswith("erased:")


class ChannelIdentityQuerySet(models.QuerySet):
    """Refuses the bulk paths that would rewrite stored identity values."""

    def update(self, **kwargs):
        value = kwargs.get("identity")
        # Expressions (bulk_update's CASE) are checked in bulk_update below.
        if isinstance(value, str) and not is_erasure_hash(value):
            raise ImmutableIdentityError(
                "A stored identity's value never changes; add a new identity."
            )
        touched = set(self.values_list("contact_id", flat=True))
        updated = super().update(**kwargs)
        moved_to = kwargs.get("contact_id", kwargs.get("contact"))
        if moved_to is not None:  # identities moved: their new contact too
            touched.add(getattr(moved_to, "pk", moved_to))
        segment_facts.refresh(touched)
        return updated

    def bulk_update(self, objs, fields, batch_size=None):
        objs = list(objs)
        if "identity" in fields and not all(
            is_erasure_hash(obj.identity) for obj in objs
        ):
            raise ImmutableIdentityError(
                "A stored identity's value never changes; add a new identity."
            )
        updated = super().bulk_update(objs, fields, batch_size=batch_size)
        segment_facts.refresh(obj.contact_id for obj in objs)
        return updated

    def bulk_create(self, objs, *args, **kwargs):
        created = super().bulk_create(objs, *args, **kwargs)
        segment_facts.refresh(obj.contact_id for obj in created)
        return created

    def delete(self):
        touched = set(self.values_list("contact_id", flat=True))
        deleted = super().delete()
        segment_facts.refresh(touched)
        return deleted
