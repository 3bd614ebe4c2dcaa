"""Pause, resume and cancel a launched campaign: what the Sender's buttons do.

- **Pause** stops submitting further batches (a batch in flight finishes);
  batches already scheduled at Sinch stay scheduled there. **Resume**
  continues with the next batch not yet submitted.
- **Cancel**: nothing not yet submitted is sent, batches scheduled at Sinch
  are cancelled there (campaigns.dispatch.cancellation: asked, then confirmed
  by Sinch, asked again by the tick until confirmed or the send time passes),
  and the receipt says what was prevented, what is requested and not yet
  confirmed, and what had already gone.

The status changes are campaigns.transitions'; every action is audited. A
None user means the system acted (e.g. the automatic pause).
"""

from django.db import transaction

from campaigns import transitions
from campaigns.dispatch import cancellation, drain
from campaigns.models import Batch, Campaign
from config.lib.wording import counted
from contacts.models import AuditEvent

BatchStatus = Batch.Status


class ControlError(ValueError):
    """The action does not apply to the campaign in its current state."""


def pause(campaign: Campaign, user, *, reason: str = "") -> bool:
    """Stop submitting further batches. False if it was not dispatching."""
    paused = transitions.pause(campaign, user, reason or f"Paused by {user}.")
    if paused:
        campaign.refresh_from_db()
    return paused


def resume(campaign: Campaign, user) -> None:
    """Continue a paused campaign with its next batch not yet submitted."""
    with transaction.atomic():
        if not transitions.resume(campaign, user):
            raise ControlError("Only a paused campaign can be resumed.")
        drain.start(campaign.pk)
    campaign.refresh_from_db()


def cancel(campaign: Campaign, user) -> dict:
    """Cancel everything of the campaign that has not gone yet; the receipt."""
    if not transitions.cancel(campaign, user):
        raise ControlError(
            f"A {campaign.get_status_display().lower()} campaign cannot be cancelled."
        )
    campaign.refresh_from_db()
    cancellation.cancel_unsubmitted(campaign)
    # All asked first, then confirmed together (Sinch cancels asynchronously;
    # what is not confirmed within the wait is read again by the tick).
    cancellation.cancel_at_sinch(
        Batch.objects.filter(
            campaign=campaign, is_test=False, status=BatchStatus.ACCEPTED
        ).order_by("sequence")
    )
    receipt = cancellation.save_receipt(campaign)
    transitions.audit(
        campaign,
        user,
        AuditEvent.Action.CANCEL,
        f"Cancelled {campaign}: {counted(receipt['prevented'], 'message')} prevented, "
        f"{receipt['already_sent']:,} already gone",
        **receipt,
    )
    return receipt
