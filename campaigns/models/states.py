"""The state tables, as data: status groups and precedence rules.

Every module that asks "is this campaign dispatching?", "is this batch done at
Sinch?" or "may this receipt move the recipient?" reads the answer here
instead of spelling the statuses out again. Which transitions exist and from
which states is in campaigns.transitions.
"""

from datetime import UTC, datetime

from django.db import models

from campaigns.models.campaign import Campaign
from campaigns.models.sending import Recipient
from sinch import variants, wire

S = Campaign.Status
R = Recipient.Status

# --- campaigns ----------------------------------------------------------------

# Due batches are submitted.
DISPATCHING = (S.SCHEDULED, S.SUBMITTING)
# Batches may be claimed: also while the launch still freezes recipients
# (its sealed batches go out meanwhile).
CLAIMABLE = (*DISPATCHING, S.LAUNCHING)
# Launched and not finished: dispatch or Sinch may still move its recipients.
ACTIVE = (S.LAUNCHING, S.SCHEDULED, S.SUBMITTING, S.PAUSED, S.SUBMITTED)
# Nothing more will be submitted.
FINISHED = (S.SUBMITTED, S.COMPLETED, S.CANCELLED, S.FAILED)
# Over: every message has its outcome, or none will (a test send tests nothing).
ENDED = (S.COMPLETED, S.CANCELLED, S.FAILED)


# `not_before` of a batch still being filled by the freeze: never claimable.
FILLING = datetime(9999, 12, 31, tzinfo=UTC)
# `not_before` of an A/B test's remainder batch, held until the winner is
# picked (campaigns.tracking.ab_winner); not FILLING, which a resumed freeze
# deletes.
HELD_FOR_WINNER = datetime(9999, 12, 30, tzinfo=UTC)

# --- batches at Sinch ---------------------------------------------------------


class RemoteBatchStatus(models.TextChoices):
    """A batch's status as Sinch reports it (Batch.remote_status).

    READY, SCHEDULED, PROCESSED and CANCELLED are the Batch API's status
    enum; COMPLETED, PARTIAL and FAILED are what Sinch's event docs show a
    batch status update saying (sinch.wire). Another string Sinch sends is
    stored as it came. Empty means not read yet.
    """

    READY = "READY", "Ready"
    SCHEDULED = "SCHEDULED", "Scheduled"
    PROCESSED = "PROCESSED", "Processed"
    COMPLETED = "COMPLETED", "Completed"
    PARTIAL = "PARTIAL", "Partial"
    FAILED = "FAILED", "Failed"
    CANCELLED = "CANCELLED", "Cancelled"


RB = RemoteBatchStatus
# Final: no longer occupies Sinch's queue, and a later status never moves it
# back (the precedence is sinch.wire.BATCH_STATUS_RANK, applied by
# sinch.variants.batch_status_may_replace).
REMOTE_DONE = frozenset(RB(s) for s in wire.BATCH_FINAL_STATUSES)
REMOTE_FINAL = REMOTE_DONE
# Expanded into messages: receipts are due.
REMOTE_PROCESSED = frozenset(RB(s) for s in wire.BATCH_PROCESSED_STATUSES)
# Not sent yet at Sinch.
REMOTE_EARLY = frozenset({RB.READY, RB.SCHEDULED})
may_replace = variants.batch_status_may_replace
statuses_not_replaced_by = variants.statuses_not_replaced_by


# --- recipients ---------------------------------------------------------------

# The failure code of a recipient whose batch was given up because the worker
# submitting it kept dying (Sinch did not have it: safe to send again).
SUBMISSION_GIVEN_UP = "SUBMISSION_GIVEN_UP"

# The order delivery receipts move a recipient along (FAILED apart): a
# receipt never moves a recipient to a lower rank.
RECEIPT_RANK = {
    R.PENDING: 0,
    R.SUBMITTED: 0,
    R.CANCELLED: 0,
    R.QUEUED_ON_CHANNEL: 1,
    R.DELIVERED: 2,
    R.READ: 3,
}
# Statuses reached on the way to delivery, in order.
ALONG = (R.QUEUED_ON_CHANNEL, R.DELIVERED, R.READ)
# Delivered (a failure after these does not undo them).
SUCCESS = frozenset({R.DELIVERED, R.READ})
# Handed to Sinch and still waiting for a final receipt.
WAITING = (R.SUBMITTED, R.QUEUED_ON_CHANNEL)
