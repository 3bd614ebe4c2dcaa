"""The Batch API request for one Batch of a campaign (test sends and dispatch).

`build_batch_request` turns a Batch and its Recipient rows into the
`SendBatchRequest` the client submits. Everything Sinch later echoes back to
us is named here, once:

- `batch_metadata` (stored by Sinch on the batch, searchable with
  `batches_by_metadata`): BATCH_KEY -> Batch.metadata_key, unique per batch,
  the key to settle an uncertain submission by; plus the campaign id and
  whether it is a test send.
- `message_metadata` (echoed, as a JSON string, in every delivery receipt,
  merged with Sinch's `_batch_id`): CAMPAIGN_KEY at request level and
  RECIPIENT_KEY -> the Recipient row id per recipient, so a receipt finds its
  row without knowing Sinch's batch id (which an uncertain submission lacks).

Sinch reserves `_batch_id` and every metadata value is a string (spec §3.1,
§9.4, §9.6): the key names below never start with "_", values are str().
"""

import json
import uuid
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from typing import Any

from campaigns.authoring.rendering import MessagePlan
from campaigns.dispatch import short_links
from campaigns.models import Batch, Campaign, Recipient
from sinch import wire
from sinch.payloads import (
    AppMessage,
    ChannelIdentity,
    EncodedParameters,
    SendBatchRequest,
    encoded_parameters,
)
from sinch.payloads import Recipient as SinchRecipient

# --- metadata key names (the one place they are spelled) ---

# batch_metadata
BATCH_KEY = "cm_batch"  # Batch.metadata_key
CAMPAIGN_KEY = "cm_campaign"  # Campaign.pk (also in message_metadata)
TEST_KEY = "cm_test"  # "1" for a test send; absent otherwise
# message_metadata, per recipient
RECIPIENT_KEY = "cm_recipient"  # Recipient.pk

METADATA_KEYS = (BATCH_KEY, CAMPAIGN_KEY, TEST_KEY, RECIPIENT_KEY)


def new_metadata_key(campaign_id: int, sequence: int) -> str:
    """A fresh, unique Batch.metadata_key (a replacement batch gets its own:
    Sinch must never take it for the batch it replaces)."""
    return f"c{campaign_id}-b{sequence}-{uuid.uuid4().hex[:12]}"


class BatchRequestError(ValueError):
    """The Batch or its rows cannot make a valid request (a bug, not user input)."""


def campaign_message(campaign: Campaign) -> dict[str, Any]:
    """The Sinch `message` object of the campaign: the frozen snapshot once
    launched, else the template as it is now (placeholders left in)."""
    return MessagePlan.for_campaign(campaign).message


def app_message(message: Mapping[str, Any]) -> AppMessage:
    """A wire `message` dict (one kind key, optional override keys) as AppMessage."""
    kinds = [key for key in message if key in wire.MESSAGE_KINDS]
    if len(kinds) != 1:
        raise BatchRequestError(
            f"a message has exactly one kind of {wire.MESSAGE_KINDS}; got {kinds}"
        )
    extras = {k: v for k, v in message.items() if k != kinds[0]}
    unknown = sorted(set(extras) - set(wire.MESSAGE_EXTRA_KEYS))
    if unknown:
        raise BatchRequestError(f"unknown message keys: {', '.join(unknown)}")
    return AppMessage(kinds[0], message[kinds[0]], extras)


def batch_metadata(campaign: Campaign, batch: Batch) -> dict[str, str]:
    data = {BATCH_KEY: batch.metadata_key, CAMPAIGN_KEY: str(campaign.pk)}
    if batch.is_test:
        data[TEST_KEY] = "1"
    return data


def build_batch_request(
    campaign: Campaign,
    batch: Batch,
    recipients: Iterable[Recipient],
    *,
    message: Mapping[str, Any] | None = None,
) -> SendBatchRequest:
    """The request submitting `batch`.

    `recipients` are the batch's rows; EXCLUDED rows are skipped, the others
    must be numbered 0..n-1 by `index` (their position in
    recipient_and_params, which Sinch's processing reports refer to).
    `message` defaults to `campaign_message(campaign)`.
    """
    if not batch.metadata_key:
        raise BatchRequestError("the batch has no metadata_key")
    rows = sorted(
        (r for r in recipients if r.status != Recipient.Status.EXCLUDED),
        key=lambda r: -1 if r.index is None else r.index,
    )
    if not 1 <= len(rows) <= wire.MAX_RECIPIENTS:
        raise BatchRequestError(
            f"a batch holds 1 to {wire.MAX_RECIPIENTS} recipients, not {len(rows)}"
        )
    if [r.index for r in rows] != list(range(len(rows))):
        raise BatchRequestError("recipient indexes must be 0..n-1")
    for row in rows:
        if row.pk is None or not row.identity:
            raise BatchRequestError(f"recipient {row.index} is unsaved or anonymous")
        if row.batch_id is not None and row.batch_id != batch.pk:
            raise BatchRequestError(f"recipient {row.pk} belongs to another batch")
    return build_request(
        campaign,
        batch,
        [
            (row.pk, row.identity, row.parameters or {}, row.fallback_identities)
            for row in rows
        ],
        message=app_message(message or campaign_message(campaign)),
    )


def build_request(
    campaign: Campaign,
    batch: Batch,
    entries: Sequence[tuple],
    *,
    message: AppMessage,
    send_after: datetime | None = None,
) -> SendBatchRequest:
    """The request for `entries` (recipient row id, identity, parameters,
    fallback identities [[channel, identity], ...]; more items are ignored),
    in the order given: what dispatch and test sends both submit. Each
    recipient's identities go in the campaign's priority order: its identity
    on the campaign's channel, then its fallback identities (Sinch falls back
    only to channels named in `channel_identities`)."""
    channel = campaign.channel
    key = RECIPIENT_KEY
    # Tracked links: each recipient's short links, made for the whole batch
    # in one INSERT (campaigns.dispatch.short_links); nothing otherwise.
    links = short_links.links_for(
        campaign,
        [entry[0] for entry in entries],
        is_test=batch.is_test,
        variant=batch.variant,
    )
    wire_recipients = []
    append = wire_recipients.append
    # A million recipients per campaign pass here: positional NamedTuples, and
    # the parameters as given when every key and value is already a string
    # (they are, as frozen at launch), else converted with str(). Parameters
    # read from the database as JSON text are sent as that text when its
    # values are all strings (sinch.payloads.encoded_parameters).
    for pk, identity, parameters, fallbacks, *_ in entries:
        if parameters.__class__ is str:
            encoded = None if links else encoded_parameters(parameters)
            parameters = json.loads(parameters) if encoded is None else encoded
        if parameters.__class__ is not EncodedParameters:
            for k, v in parameters.items():
                if k.__class__ is not str or v.__class__ is not str:
                    parameters = {
                        str(k): v if isinstance(v, str) else str(v)
                        for k, v in parameters.items()
                    }
                    break
        if links:
            parameters = {**parameters, **links[pk]}
        identities = (ChannelIdentity(channel, identity),)
        if fallbacks:
            identities += tuple(ChannelIdentity(c, i) for c, i in fallbacks)
        append(SinchRecipient(identities, "", parameters, {key: str(pk)}))
    return SendBatchRequest(
        message=message,
        recipients=wire_recipients,
        batch_metadata=batch_metadata(campaign, batch),
        message_metadata={CAMPAIGN_KEY: str(campaign.pk)},
        send_after=send_after,
        ttl_s=campaign.ttl_seconds,
        channel_priority_order=tuple(campaign.channel_priority_order or ()),
        channel_properties=campaign.sinch_channel_properties(),
    )
