"""What campaigns forget when a contact is erased.

A recipient row keeps the identity a message went to and the values put into
it; on erasure both go: the identity becomes the same keyed hash the contact's
identity becomes (contacts.services.erasure), the values are emptied. Counts,
statuses and failure codes stay, so campaign figures do not change.
"""

from campaigns.models import Recipient
from contacts.services.erasure import ERASED_PREFIX, erased_identity


def forget_recipient_data(sender, *, contact_id: int, **kwargs) -> None:
    rows = Recipient.objects.filter(contact_id=contact_id).select_related("campaign")
    for recipient in rows.only("pk", "identity", "campaign__channel"):
        if recipient.identity.startswith(ERASED_PREFIX):
            continue
        Recipient.objects.filter(pk=recipient.pk).update(
            identity=erased_identity(recipient.campaign.channel, recipient.identity),
            parameters={},
        )
