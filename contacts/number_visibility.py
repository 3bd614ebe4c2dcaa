"""Who sees whole phone numbers in per-recipient downloads.

The pre-send check and the results CSV list a campaign's recipients. Those
who may export contacts (contacts.export_contacts: Compliance) get the numbers
as stored; everyone else who may download them (Marketing, Sender) gets them
masked as audit rows name them (config.lib.redaction.mask_number:
"+1415•••0101"), enough to tell rows apart, not to dial or copy the audience.
"""

from config.lib.redaction import mask_number

EXPORT_PERMISSION = "contacts.export_contacts"


def may_see_numbers(user) -> bool:
    return user.has_perm(EXPORT_PERMISSION)


def shown_number(identity: str, *, full: bool) -> str:
    """`identity` whole, or masked; an empty identity stays empty."""
    if full or not identity:
        return identity
    return mask_number(identity)


def masked_note(full: bool) -> str:
    """The audit summary's note on what the download showed."""
    return "" if full else " (phone numbers masked)"
