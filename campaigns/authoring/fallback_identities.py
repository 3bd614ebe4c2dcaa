"""Fallback channels: the identity each recipient has on them, if any.

A campaign's `channel_priority_order` lists its channel, then the channels
Sinch falls back to. Sinch falls back only to a channel for which the request
names an identity (`identified_by.channel_identities`; the Batch API has no
contact record to look others up in), so every recipient carries, after its
identity on the first channel, one identity per fallback channel it may be
sent on, in the priority order.

The rule (only people who consented get a message): a fallback channel is
used for a person only through their own live (not retired) identity on that
channel, valid for it, that passes the same erasure and consent rule as the
first channel (campaigns.authoring.consent_rule.consent_problem: opted in
for the campaign's purpose, not opted out, number not erased). Consent is
recorded per identity, and an identity belongs to one channel (a ConsentEvent
names its identity and that identity's channel): an SMS opt-in says nothing
about WhatsApp, RCS or Viber. So a phone number is never reused on another
phone channel by itself: the number a person gave for SMS reaches them on
WhatsApp only when they also have a WhatsApp identity with that number and
its own opt-in (import it with the channel column, or add it on the contact
and record the opt-in). Without one, that fallback is left out for them (the
pre-send check counts who, per channel and reason) and they are sent on the
channels they have.

Fallback identities are read in bulk, one query per chunk of members on the
(channel, contact) index, only for campaigns that have fallback channels; a
single-channel campaign reads and writes nothing more.
"""

from collections import Counter

from django.db import connection

from campaigns.authoring.consent_rule import (
    ERASED,
    NO_CONSENT,
    NO_IDENTITY,
    OPTED_OUT,
    consent_column,
    consent_problem,
)
from campaigns.models import Campaign
from config.lib.lookups import id_lists
from contacts.models import ChannelIdentity, ConsentState
from contacts.phones import InvalidIdentity, normalise_identity
from sinch.channels import Channel

INVALID = "invalid_identity"
# Key prefix of the pre-send summary's fallback problems: "fallback:SMS:opted_out".
KEY = "fallback:"
# After launch: why a frozen fallback identity is left out of the request.
AFTER_LAUNCH = {
    ERASED: "number erased after launch",
    NO_IDENTITY: "identity removed after launch",
    OPTED_OUT: "opted out after launch",
    NO_CONSENT: "consent withdrawn after launch",
}


def fallback_channels(campaign: Campaign) -> list[str]:
    """The campaign's fallback channels, in priority order (its own channel,
    first in the order, is not one)."""
    order = campaign.channel_priority_order or []
    return [channel for channel in order[1:] if channel != campaign.channel]


def label(channel: str) -> str:
    try:
        return Channel(channel).label
    except ValueError:
        return channel


def reason_text(channel: str, key: str) -> str:
    """Why a member has no identity to send on `channel`, in words."""
    name = label(channel)
    return {
        NO_IDENTITY: f"no {name} identity",
        OPTED_OUT: f"opted out on {name}",
        NO_CONSENT: f"no consent record on {name}",
        ERASED: f"{name} number erased (suppressed)",
        INVALID: f"invalid {name} identity",
    }[key]


def candidates(campaign: Campaign, contact_ids, erased_among) -> dict[int, tuple]:
    """{contact id: ((channel, identity, consent, suppressed), ...)} on the
    fallback channels, in priority order: each contact's oldest live identity
    per channel, with its consent for the campaign's purpose; `suppressed`
    (its number erased) is looked up, with `erased_among(channel,
    identities)`, for the opted-in ones only. Contacts with none are absent.
    """
    channels = fallback_channels(campaign)
    ids = sorted(set(contact_ids))
    if not channels or not ids:
        return {}
    table = connection.ops.quote_name(ChannelIdentity._meta.db_table)
    marks = ", ".join(["%s"] * len(channels))
    found: dict[int, dict[str, tuple]] = {}
    with connection.cursor() as cursor:
        for params, condition in id_lists(ids):
            cursor.execute(
                f"SELECT contact_id, channel, identity, {consent_column(campaign)} "
                f"FROM {table} WHERE contact_id {condition} "
                f"AND channel IN ({marks}) AND retired_at IS NULL "
                "ORDER BY contact_id, id",
                [*params, *channels],
            )
            for contact_id, channel, identity, consent in cursor.fetchall():
                found.setdefault(contact_id, {}).setdefault(
                    channel, (identity, consent)
                )
    erased = {
        channel: erased_among(
            channel,
            [
                mine[channel][0]
                for mine in found.values()
                if channel in mine and mine[channel][1] == ConsentState.OPTED_IN
            ],
        )
        for channel in channels
    }
    return {
        contact_id: tuple(
            (c, mine[c][0], mine[c][1], mine[c][0] in erased[c])
            for c in channels
            if c in mine
        )
        for contact_id, mine in found.items()
    }


class FallbackChecker:
    """Which fallback identities one member may be sent on.

    `check(found)` takes the member's candidates (as `candidates` gives them)
    and returns ([[channel, identity], ...] to send, in priority order, and
    [(channel, reason key), ...] for the fallback channels left out).
    `sent_on` counts, per channel, the members given an identity there.
    """

    def __init__(self, campaign: Campaign) -> None:
        self.channels = fallback_channels(campaign)
        self.sent_on: Counter = Counter()

    def check(self, found: tuple) -> tuple[list[list[str]], list[tuple[str, str]]]:
        mine = {entry[0]: entry for entry in found}
        pairs: list[list[str]] = []
        left: list[tuple[str, str]] = []
        for channel in self.channels:
            entry = mine.get(channel)
            if entry is None:
                left.append((channel, NO_IDENTITY))
                continue
            _, identity, consent, suppressed = entry
            problem = consent_problem(suppressed, identity, consent)
            if problem is not None:
                left.append((channel, problem))
                continue
            try:
                canonical = normalise_identity(channel, identity)
            except InvalidIdentity:
                left.append((channel, INVALID))
                continue
            pairs.append([channel, canonical])
            self.sent_on[channel] += 1
        return pairs, left


def summary(checker: FallbackChecker | None, ok: int) -> list[dict]:
    """The pre-send summary's fallback section: per fallback channel, how many
    of the `ok` recipients have an identity to fall back to there."""
    if checker is None:
        return []
    return [
        {
            "channel": channel,
            "label": label(channel),
            "with": checker.sent_on[channel],
            "without": ok - checker.sent_on[channel],
        }
        for channel in checker.channels
    ]
