"""The consent and erasure part of the audience rule, for one identity.

Every send path asks `consent_problem` about the identity it would send to:
the campaign's first channel (campaigns.authoring.audience), each fallback
channel (campaigns.authoring.fallback_identities) and the re-check before a
batch goes to Sinch (campaigns.authoring.recheck).
"""

from campaigns.models import Campaign
from contacts.models import ConsentState

# Problem keys (also the keys of the pre-send summary's problems).
ERASED = "erased"
OPTED_OUT = "opted_out"
NO_CONSENT = "no_consent"
NO_IDENTITY = "no_identity"


def consent_column(campaign: Campaign) -> str:
    """The identity column holding consent for the campaign's purpose."""
    return f"{campaign.purpose.lower()}_consent"


def consent_problem(erased: bool, identity: str | None, consent: str | None):
    """Why a person may not receive a campaign as far as erasure and consent
    go (ERASED, NO_IDENTITY, OPTED_OUT or NO_CONSENT), or None if they may.

    `identity` and `consent` are their identity on the channel and its
    consent state for the campaign's purpose (None: no identity). Only an
    explicit opt-in lets a message through; erasure and opt-out come first.
    """
    if erased:
        return ERASED
    if identity is None:
        return NO_IDENTITY
    if consent == ConsentState.OPTED_OUT:
        return OPTED_OUT
    if consent != ConsentState.OPTED_IN:
        return NO_CONSENT
    return None
