"""Batch status updates, and the last-receipt times of batches and campaigns.

An update sets Batch.remote_status as received, in the precedence of
sinch.wire.BATCH_STATUS_RANK (campaigns.models.states.may_replace): a batch
never moves backwards (a late SCHEDULED or READY never replaces PROCESSED or
COMPLETED, CANCELLED never replaces a processed batch), and the event docs'
COMPLETED / PARTIAL / FAILED are final like PROCESSED. A CANCELLED update
settles the batch as every confirmed cancel is
(campaigns.dispatch.cancellation.settle_cancelled).

An update found by its metadata key for a batch whose Sinch id is not known
yet (its submission's answer was lost: UNCERTAIN) records the Sinch id it
carries, so that settlement can read the batch by id
(campaigns.dispatch.settlement).
"""

from campaigns.dispatch import cancellation
from campaigns.dispatch.batch_request import BATCH_KEY
from campaigns.models import Batch, Campaign
from campaigns.models.states import RemoteBatchStatus, may_replace
from campaigns.tracking.event_chunk import Chunk, Outcome, State, lock_in_order
from config.lib.bulk import bulk_update, db_time

# Batches whose Sinch id a callback may teach us: the submission's answer
# was lost, or is not recorded yet.
UNSETTLED = (Batch.Status.UNCERTAIN, Batch.Status.SUBMITTING)


def apply_batch_statuses(chunk: Chunk) -> None:
    sinch_ids = {u.batch_id for _, u, _ in chunk.statuses if u.batch_id}
    keys = {
        str(u.metadata.get(BATCH_KEY))
        for _, u, _ in chunk.statuses
        if u.metadata.get(BATCH_KEY)
    }
    batches = list(
        Batch.objects.filter(sinch_batch_id__in=sinch_ids).values_list(
            "id", "sinch_batch_id", "metadata_key", "campaign_id", "remote_status"
        )
    ) + list(
        Batch.objects.filter(metadata_key__in=keys).values_list(
            "id", "sinch_batch_id", "metadata_key", "campaign_id", "remote_status"
        )
    )
    by_sinch = {b[1]: b for b in batches if b[1]}
    by_key = {b[2]: b for b in batches}
    remote = {b[0]: b[4] for b in batches}
    final: dict[int, str] = {}
    again: set[int] = set()
    for event_id, update, at in chunk.statuses:
        batch = by_sinch.get(update.batch_id) or by_key.get(
            str(update.metadata.get(BATCH_KEY, ""))
        )
        if batch is not None and not batch[1] and update.batch_id:
            chunk.learnt_sinch_ids[batch[0]] = update.batch_id
        if batch is None:
            chunk.outcomes.append(
                Outcome(
                    event_id,
                    State.ORPHAN,
                    f"no batch with Sinch id {update.batch_id or '?'}",
                    update.kind,
                )
            )
            continue
        batch_id = batch[0]
        current = final.get(batch_id, remote[batch_id])
        status = update.status[:32]
        if may_replace(current, status):
            final[batch_id] = status
        elif status == current == RemoteBatchStatus.CANCELLED:
            again.add(batch_id)
        last = chunk.batch_receipts.get(batch_id)
        if last is None or at > last:
            chunk.batch_receipts[batch_id] = at
        chunk.outcomes.append(
            Outcome(event_id, State.PROCESSED, "", update.kind, batch[3])
        )
    for batch_id, status in final.items():
        chunk.remote_statuses[status].append(batch_id)
    for batch_id in again - set(final):
        # CANCELLED again: the batch may not be settled yet (settling is
        # idempotent).
        chunk.remote_statuses[RemoteBatchStatus.CANCELLED].append(batch_id)


def write_last_receipts(chunk: Chunk) -> None:
    """Batch and campaign rows, locked in id order first (two processors
    touching the same batches would otherwise deadlock on PostgreSQL)."""
    lock_in_order(Batch, chunk.batch_receipts)
    lock_in_order(Campaign, chunk.campaign_receipts)
    for status, ids in sorted(chunk.remote_statuses.items()):
        Batch.objects.filter(pk__in=ids).update(remote_status=status)
    for pk, sinch_id in sorted(chunk.learnt_sinch_ids.items()):
        # Only while nobody recorded it: the submission's own answer wins.
        Batch.objects.filter(pk=pk, sinch_batch_id="", status__in=UNSETTLED).update(
            sinch_batch_id=sinch_id[:64]
        )
    cancelled = chunk.remote_statuses.get(RemoteBatchStatus.CANCELLED)
    if cancelled:
        cancellation.settle_cancelled(cancelled)
    if chunk.batch_receipts:
        bulk_update(
            Batch._meta.db_table,
            [("last_receipt_at", "timestamptz")],
            [(pk, db_time(at)) for pk, at in chunk.batch_receipts.items()],
            newer="last_receipt_at",
        )
    if chunk.campaign_receipts:
        bulk_update(
            Campaign._meta.db_table,
            [("last_receipt_at", "timestamptz")],
            [(pk, db_time(at)) for pk, at in chunk.campaign_receipts.items()],
            newer="last_receipt_at",
        )
        # Receipts arrive again: a "receipts stopped" warning no longer holds.
        Campaign.objects.filter(pk__in=list(chunk.campaign_receipts)).exclude(
            receipts_stalled=""
        ).update(receipts_stalled="")
