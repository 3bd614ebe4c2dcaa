"""Who may have lost the right to a message since a given time.

A person frozen into a campaign can drop out of it for three reasons only
(campaigns.authoring.consent_rule): their consent changed (every change of a
consent state appends a ConsentEvent, whoever makes it: the admin, a STOP
reply, an import), their identity was replaced (retired), or they were
erased. `changed_since` reads the three from indexed columns, so the
periodic re-check of batches scheduled at Sinch (campaigns.dispatch.
late_optouts) looks only at the batches holding those people.

An erasure also suppresses the erased person's numbers for everyone else
(contacts.services.suppression), and the number is only kept hashed, so its
other holders cannot be named: any erasure in the window makes `everyone`
true, and the caller re-checks everything (erasures are rare).
"""

from dataclasses import dataclass, field
from datetime import datetime

from contacts.models import ChannelIdentity, ConsentEvent, Contact


@dataclass
class Changes:
    contact_ids: set[int] = field(default_factory=set)
    # Someone was erased: every frozen number must be checked again.
    everyone: bool = False

    def __bool__(self) -> bool:
        return self.everyone or bool(self.contact_ids)


def changed_since(since: datetime) -> Changes:
    """Contacts whose consent or identities changed at or after `since`."""
    if Contact.objects.filter(erased_at__gte=since).exists():
        return Changes(everyone=True)
    consent = ChannelIdentity.objects.filter(
        pk__in=ConsentEvent.objects.filter(recorded_at__gte=since).values("identity_id")
    ).values_list("contact_id", flat=True)
    retired = ChannelIdentity.objects.filter(retired_at__gte=since).values_list(
        "contact_id", flat=True
    )
    return Changes(contact_ids=set(consent) | set(retired))
