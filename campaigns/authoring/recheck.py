"""The re-check of a batch's frozen recipients just before it goes to Sinch.

Consent can change between the launch and a batch's submission (and Sinch's
own blocklist can lag), so the drain loops, the late-opt-out tick and the
replacement of a batch cancelled at Sinch apply the rule again
(campaigns.authoring.consent_rule.consent_problem) to every frozen identity:
the one on the campaign's channel (a recipient whose identity fails is
dropped) and each fallback identity (a fallback that fails is left out of the
request; the recipient is still sent on the others).
"""

import json
from collections.abc import Sequence
from typing import Any, NamedTuple

from django.db import connection

from campaigns.authoring import fallback_identities as fallbacks
from campaigns.authoring.consent_rule import (
    ERASED,
    NO_CONSENT,
    NO_IDENTITY,
    OPTED_OUT,
    consent_column,
    consent_problem,
)
from campaigns.models import Campaign, Recipient
from contacts.models import ChannelIdentity, Contact
from contacts.services.suppression import erased_numbers

# Why a recipient frozen at launch is dropped at the re-check before its batch
# goes to Sinch, by consent_problem's answer.
AFTER_LAUNCH = {
    ERASED: "erased or identity removed after launch",
    NO_IDENTITY: "erased or identity removed after launch",
    OPTED_OUT: "opted out after launch",
    NO_CONSENT: "consent withdrawn after launch",
}


class Entry(NamedTuple):
    """A recipient who may still receive the batch."""

    pk: int
    identity: str
    parameters: dict[str, Any] | str  # as the database keeps them: JSON text
    # [[channel, identity], ...] still allowed, in priority order.
    fallbacks: Sequence
    # Fallback channels left out now: ["WhatsApp: opted out after launch"].
    lost: Sequence[str]


def _json(value) -> Any:
    return json.loads(value) if isinstance(value, str) else value


def recheck_batch(
    campaign: Campaign, batch_id: int, *, status: str = Recipient.Status.PENDING
) -> tuple[list[Entry], dict[str, list[int]]]:
    """Apply consent_problem now to a batch's recipients in `status` (default PENDING).

    Returns (an Entry for each recipient who may still receive it, in batch
    order; {reason: [recipient ids]} of the others). Consent is read from the
    contact's identity on the channel written exactly as the frozen one (gone
    if retired; else their oldest live one), in one query; fallback
    identities (only for recipients that have some) in one more.
    """
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT r.id, r.identity, r.parameters, c.erased_at, i.identity, "
            f"i.{consent_column(campaign)}, i.retired_at, r.contact_id, "
            "r.fallback_identities "
            f"FROM {Recipient._meta.db_table} r "
            f"LEFT JOIN {Contact._meta.db_table} c ON c.id = r.contact_id "
            f"LEFT JOIN {ChannelIdentity._meta.db_table} i "
            "ON i.contact_id = r.contact_id AND i.channel = %s "
            # By campaign too: Recipient.in_batch says why.
            "WHERE r.campaign_id = %s AND r.batch_id = %s AND r.status = %s "
            'ORDER BY r."index", i.id',
            [campaign.channel, campaign.pk, batch_id, status],
        )
        rows = cursor.fetchall()
    found: dict[int, tuple] = {}
    for pk, identity, parameters, erased_at, theirs, state, retired, *more in rows:
        rank = 0 if theirs == identity else 2 if retired or theirs is None else 1
        theirs, state = (None, None) if retired else (theirs, state)
        if pk not in found or rank < found[pk][0]:
            found[pk] = (rank, identity, parameters, erased_at, theirs, state, *more)
    frozen = [entry[1] for entry in found.values()]
    erased = erased_numbers(campaign.channel, frozen, since=campaign.launched_at)
    entries, dropped, kept = [], {}, []
    for pk, (_, identity, parameters, erased_at, theirs, state, *more) in found.items():
        problem = consent_problem(erased_at or identity in erased, theirs, state)
        if problem is not None:
            dropped.setdefault(AFTER_LAUNCH[problem], []).append(pk)
            continue
        contact_id, frozen_fallbacks = more
        # The parameters as read (JSON text): campaigns.dispatch.batch_request
        # sends them as they are.
        kept.append((pk, identity, parameters, contact_id, frozen_fallbacks))
    allowed = _recheck_fallbacks(campaign, kept)
    new = tuple.__new__  # a million entries per campaign: no per-call overhead
    for pk, identity, parameters, _, _ in kept:
        pairs, lost = allowed.get(pk, NONE)
        entries.append(new(Entry, (pk, identity, parameters, pairs, lost)))
    return entries, dropped


NONE: tuple = ((), ())  # no fallback identities, none lost


def _recheck_fallbacks(campaign: Campaign, kept: list[tuple]) -> dict[int, tuple]:
    """{recipient id: (fallback pairs still allowed, [what was left out])}
    for the recipients in `kept` that have fallback identities."""
    # Most rows hold none ("[]" as stored): only the others are parsed.
    frozen = {
        pk: (contact_id, pairs)
        for pk, _, _, contact_id, raw in kept
        if raw and raw != "[]" and (pairs := _json(raw))
    }
    if not frozen:
        return {}
    contacts = {contact_id for contact_id, _ in frozen.values()}
    channels = {channel for _, pairs in frozen.values() for channel, _ in pairs}
    consent = consent_column(campaign)
    now: dict[tuple[int, str, str], str] = {}  # (contact, channel, identity) -> state
    for identity in ChannelIdentity.objects.filter(
        contact_id__in=contacts, channel__in=channels, retired_at__isnull=True
    ).values_list("contact_id", "channel", "identity", consent):
        now[identity[:3]] = identity[3]
    erased = {
        channel: erased_numbers(
            channel,
            [i for _, pairs in frozen.values() for c, i in pairs if c == channel],
            since=campaign.launched_at,
        )
        for channel in channels
    }
    result = {}
    for pk, (contact_id, pairs) in frozen.items():
        allowed, lost = [], []
        for channel, identity in pairs:
            key = (contact_id, channel, identity)
            state = now.get(key)
            theirs = identity if key in now else None
            problem = consent_problem(identity in erased[channel], theirs, state)
            if problem is None:
                allowed.append([channel, identity])
            else:
                name = fallbacks.label(channel)
                lost.append(f"{name}: {fallbacks.AFTER_LAUNCH[problem]}")
        result[pk] = (allowed, lost)
    return result


def record_lost_fallbacks(entries: list[Entry]) -> int:
    """Write the fallback identities still allowed onto the rows of the
    entries that lost some (few; one UPDATE each), so that a row says what
    was sent. Returns how many rows changed."""
    changed = 0
    for entry in entries:
        if entry.lost:
            changed += Recipient.objects.filter(pk=entry.pk).update(
                fallback_identities=entry.fallbacks
            )
    return changed


def lost_fallbacks(entries: list[Entry]) -> dict[str, list[int]]:
    """{what was left out: [recipient ids]} of the entries that lost a
    fallback identity (e.g. "WhatsApp: opted out after launch")."""
    lost: dict[str, list[int]] = {}
    for entry in entries:
        for what in entry.lost:
            lost.setdefault(what, []).append(entry.pk)
    return lost
