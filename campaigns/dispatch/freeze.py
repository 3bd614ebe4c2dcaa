"""Freezing a launched campaign's recipients into batches, and dispatching them.

`freeze_recipients` walks the audience (campaigns.authoring.audience), applying
the rule now, and writes one Recipient row per member: PENDING in a batch of
at most wire.MAX_RECIPIENTS (with its identities on the campaign's fallback
channels, campaigns.authoring.fallback_identities), or EXCLUDED with the
reason. Batches are sealed as they fill, and the drain loops
(campaigns.dispatch.drain) start submitting sealed batches while the freeze
goes on. A freeze interrupted by a dead worker resumes after its last sealed
batch; its lease on the campaign, and what happens when an error or a
vanished worker interrupts it, are campaigns.dispatch.launch_recovery's.
"""

import json
from datetime import datetime, timedelta
from json.encoder import encode_basestring

from django.conf import settings
from django.db import transaction
from django.db.models import Max, Min, Q
from django.utils import timezone

from campaigns import counters, transitions
from campaigns.authoring import audience, channel_rules, members, variants
from campaigns.compliance import send_times
from campaigns.dispatch import (
    ab_split,
    batch_request,
    cancellation,
    drain,
    ingress,
    launch_recovery,
)
from campaigns.models import Batch, Campaign, CampaignCount, Recipient
from campaigns.models.states import FILLING
from config.lib.bulk import TableWriter
from config.lib.collector import frozen_heap
from contacts.models import AuditEvent
from sinch import wire
from sinch.wire import SEND_AFTER_MAX_AHEAD

Status = Campaign.Status
# Sinch schedules at most this far ahead; a margin covers its rounding up to
# the next 5 minutes and clock differences.
SINCH_HORIZON = SEND_AFTER_MAX_AHEAD - timedelta(minutes=15)


def schedule_horizon() -> timedelta:
    """How far ahead of the send time batches are handed to Sinch
    (SINCH_SCHEDULE_AHEAD_HOURS, at most Sinch's window). Further out, they
    wait here: a late opt-out then costs nothing (the re-check at release
    drops the person), while one after the hand-over costs a cancel and a
    replacement batch (campaigns.dispatch.late_optouts)."""
    ahead = timedelta(hours=settings.SINCH_SCHEDULE_AHEAD_HOURS)
    return min(ahead, SINCH_HORIZON)


def hold_until(campaign: Campaign, send_at: datetime | None = None) -> datetime | None:
    """Until when the batches (of the wave at `send_at`, default the first)
    wait here: they go to Sinch once their send time is within the
    scheduling horizon. None: submit now."""
    send_at = send_at or campaign.send_at
    if send_at is None:
        return None
    return send_at - schedule_horizon()


def _record_segments(campaign: Campaign, used: list[dict]) -> None:
    """Keeps which segments, with which definitions, made the audience: on
    the campaign and in the audit trail, once (a resumed freeze keeps the
    first record)."""
    if not used or campaign.frozen_segments is not None:
        return
    with transaction.atomic():
        updated = Campaign.objects.filter(
            pk=campaign.pk, frozen_segments__isnull=True
        ).update(frozen_segments=used)
        if updated:
            names = "; ".join(
                f"“{s['name']}” ({s['description']}): {s['matched']:,} matched"
                for s in used
            )
            transitions.audit(
                campaign,
                None,
                AuditEvent.Action.LAUNCH,
                f"Segments evaluated for the recipients: {names}"[:500],
                segments=used,
            )
    campaign.frozen_segments = used


@frozen_heap()
def freeze_recipients(campaign_id: int, chunk_size: int = audience.CHUNK_SIZE) -> str:
    """Write the campaign's recipients and batches, and dispatch as they come.

    Members are frozen a chunk per transaction. A batch is created FILLING
    (not claimable: `not_before` is FILLING) and sealed when it is full or the
    freeze ends, in the transaction that wrote its last recipient; the drain
    loops, started after the first sealed batch, submit sealed batches while
    the freeze goes on. A freeze a dead worker left half done resumes: sealed
    batches and what came before them stay (they may be at Sinch already),
    the unsealed rest is removed and frozen again.
    """
    campaign = Campaign.objects.select_related("template").get(pk=campaign_id)
    if campaign.status != Status.LAUNCHING:
        return f"campaign {campaign_id} is {campaign.status}: nothing to freeze"
    lease = launch_recovery.take_lease(campaign_id)
    if lease is None:
        return f"campaign {campaign_id}: being frozen by another worker"
    # The launch refuses these already; a campaign launched before a rule
    # existed is stopped here, unless part of it is frozen (and maybe sent).
    refused = channel_rules.campaign_problems(campaign)
    if refused and not Batch.objects.filter(campaign=campaign).exists():
        transitions.nobody_to_send(campaign, "Not sent: " + " ".join(refused))
        return f"campaign {campaign_id}: refused by the channels' rules"
    try:
        members.usable_segments(campaign)
    except members.SegmentError as error:
        if not Batch.objects.filter(campaign=campaign).exists():
            transitions.nobody_to_send(campaign, f"Not sent: {error}")
            return f"campaign {campaign_id}: {error}"
        raise
    checker = audience.MemberChecker(campaign, render=False)
    now = timezone.now()
    times = send_times.SendTimes(campaign, now)
    resume_after, sequence, skip, in_group = _resume_point(campaign, checker)

    # A campaign with fallback channels writes each recipient's fallback
    # identities too; a single-channel one leaves the column at its default.
    with_fallbacks = checker.fallback is not None
    columns = ["batch_id", "index", "contact_id", "identity", "parameters"]
    columns += ["status", "reason"]
    if with_fallbacks:
        columns.append("fallback_identities")
    # An A/B test: each recipient's variant (campaigns.authoring.variants),
    # and batches per variant, since a batch carries one message.
    split = variants.Split.of(campaign)
    if split is not None:
        columns.append("variant")
    writer = TableWriter(
        Recipient, columns, {"campaign_id": campaign.pk, "is_test": False}, now=now
    )
    # One batch being filled per send instant (send groups: local time, quiet
    # hours), and per A/B variant ((send instant, label) keys), as _Filling;
    # batches are numbered across groups.
    filling: dict = {}
    releases: set[datetime] = set()  # when held batches come due
    dispatching = False
    # Plain strings: the COPY writes them as they are (no lookup per row).
    pending, excluded = Recipient.Status.PENDING.value, Recipient.Status.EXCLUDED.value
    member_rows = audience.member_rows(
        campaign,
        chunk_size,
        start_after=resume_after,
        on_segments=lambda used: _record_segments(campaign, used),
    )
    for rows in member_rows:
        launch_recovery.renew_lease(campaign.pk, lease)  # LeaseLost: taken over
        # The checks run before the chunk's transaction: on SQLite its first
        # write locks the database until the commit, and the drain loops
        # submitting sealed batches meanwhile need to write too.
        out = []  # the rows, a _Filling in place of the batch id
        sealed: list[_Filling] = []
        created: list[_Filling] = []
        for row in rows:
            if skip and row[audience.ID] in skip:
                continue  # frozen for good before an interruption
            contact_id, identity, status, reason = checker.check(row)[:4]
            if status != audience.OK:
                row_out = (
                    None,
                    None,
                    contact_id,
                    identity or "",
                    "{}",
                    excluded,
                    _reason(status, reason),
                )
                if with_fallbacks:
                    row_out += ("[]",)
                out.append(row_out if split is None else (*row_out, ""))
                continue
            send_time = times.of(row[audience.TIME_ZONE], identity)
            if split is None:
                label, at = "", send_time.at
            else:
                label = split.label(contact_id)
                at = (send_time.at, label)
            open_batch = filling.get(at)
            if open_batch is None or open_batch.size == wire.MAX_RECIPIENTS:
                if open_batch is not None:
                    sealed.append(open_batch)
                sequence += 1
                key = send_times.group_key(send_time.at)
                in_group[key] = in_group.get(key, 0) + 1
                open_batch = filling[at] = _Filling(
                    sequence, send_time, in_group[key], label
                )
                created.append(open_batch)
            row_out = (
                open_batch,
                open_batch.size,
                contact_id,
                identity,
                _values_json(checker.values),
                pending,
                "",
            )
            if with_fallbacks:
                row_out += (_pairs_json(checker.fallbacks),)
            if split is not None:
                row_out += (label,)
            out.append(row_out)
            open_batch.size += 1
        with transaction.atomic():
            _create_batches(campaign, created, split is not None)
            writer.insert([_with_batch_id(r) for r in out])
            ok = sum(1 for r in out if r[5] == pending)
            counters.add(campaign.pk, {pending: ok, excluded: len(out) - ok})
            due_now = _seal(campaign, sealed, now, releases)
        if due_now and not dispatching:
            drain.start(campaign.pk)  # submits sealed batches meanwhile
            dispatching = True
    if filling:
        _seal(campaign, list(filling.values()), now, releases)
    ingress.record_frozen(campaign)

    result = checker.result
    if not Batch.objects.filter(campaign=campaign, is_test=False).exists():
        transitions.nobody_to_send(
            campaign,
            "Nobody could receive the campaign when its recipients "
            f"were frozen: {result.excluded:,} excluded, {result.blocking:,} "
            "with a problem. See the excluded recipients.",
        )
        return f"campaign {campaign_id}: nobody to send to"
    if not transitions.recipients_frozen(campaign):  # cancelled while freezing
        campaign.refresh_from_db()
        if campaign.status == Status.CANCELLED:
            cancellation.cancel_unsubmitted(campaign)
            cancellation.save_receipt(campaign)
        return f"campaign {campaign_id}: {campaign.status} while freezing"
    for when in sorted(releases):
        drain.schedule_release(campaign.pk, when)
    if split is not None:
        ab_split.test_started(campaign)
    # Loops submit what is due now and finish the campaign once all is sent.
    if (
        Batch.objects.filter(campaign=campaign, is_test=False)
        .filter(Q(not_before__isnull=True) | Q(not_before__lte=now))
        .exists()
    ):
        drain.start(campaign.pk)
    return (
        f"campaign {campaign_id}: {result.ok:,} recipients in {sequence:,} "
        f"batches, {result.excluded + result.blocking:,} excluded"
    )


class _Filling:
    """A batch being filled in a chunk: its Batch row is created (`batch`)
    in the chunk's transaction, with the chunk's recipients."""

    __slots__ = ("batch", "in_group", "label", "send_time", "sequence", "size")

    def __init__(self, sequence: int, send_time, in_group: int, label="") -> None:
        self.sequence, self.send_time, self.in_group = sequence, send_time, in_group
        self.label = label  # the A/B variant ("": none, or the held remainder)
        self.size = 0
        self.batch: Batch | None = None


def _with_batch_id(row: tuple) -> tuple:
    """A recipient row with its batch's id in place of its _Filling."""
    filling = row[0]
    return row if filling is None else (filling.batch.id, *row[1:])


def _seal(
    campaign: Campaign,
    batches: list[_Filling],
    now: datetime,
    releases: set[datetime],
) -> bool:
    """Make complete batches claimable, or held until their wave's send time
    is within the horizon (added to `releases`). True if one is due now.
    One UPDATE per (size, not_before): usually one for the chunk."""
    due_now = False
    sealing: dict[tuple, list[int]] = {}
    for filling in batches:
        batch = filling.batch
        not_before = hold_until(campaign, batch.wave_at)
        if batch.ab_remainder:
            not_before = ab_split.HELD  # until the A/B test's winner is picked
        elif not_before is not None and not_before > now:
            releases.add(not_before)
        else:
            due_now = True
        sealing.setdefault((filling.size, not_before), []).append(batch.pk)
    for (size, not_before), pks in sealing.items():
        Batch.objects.filter(pk__in=pks).update(size=size, not_before=not_before)
    return due_now


def _create_batches(
    campaign: Campaign, fillings: list[_Filling], ab_test: bool
) -> None:
    """The chunk's new batches, in one INSERT (`filling.batch` for each):
    being filled (not claimable), each of its send time's group, number
    `in_group` in it, at its wave's send time (campaigns.dispatch.ingress);
    of A/B variant `label`, or held for the winner (label "" in an A/B test)."""
    batches = [
        Batch(
            campaign=campaign,
            variant=f.label,
            ab_remainder=ab_test and f.label == variants.REMAINDER,
            sequence=f.sequence,
            metadata_key=batch_request.new_metadata_key(campaign.pk, f.sequence),
            not_before=FILLING,
            wave_at=ingress.wave_for(
                campaign,
                f.in_group,
                send_times.group_key(f.send_time.at),
                start=f.send_time.at,
                rules=f.send_time.rules,
            ),
        )
        for f in fillings
    ]
    created = Batch.objects.bulk_create(batches)
    for filling, batch in zip(fillings, created, strict=True):
        filling.batch = batch


def _resume_point(campaign: Campaign, checker):
    """Clear what an interrupted freeze left unsealed; where to go on from.

    Returns (the contact id to go on after, the last batch sequence, the
    contacts after it already frozen for good, the sealed batches per send
    group). Sealed batches and their recipients stay; the identities they
    hold count as used for the duplicate rule. Batches of several send
    groups fill side by side, so an unsealed batch may hold contacts before
    the last sealed one: the freeze goes on from the first of those, and
    skips the contacts of sealed batches after it.
    """
    batches = Batch.objects.filter(campaign=campaign, is_test=False)
    unsealed = batches.filter(not_before=FILLING)
    sealed = batches.exclude(not_before=FILLING)
    last_contact = (
        Recipient.objects.filter(batch__in=sealed).aggregate(n=Max("contact_id"))["n"]
        or 0
    )
    first_unsealed = Recipient.objects.filter(batch__in=unsealed).aggregate(
        n=Min("contact_id")
    )["n"]
    resume = last_contact
    if first_unsealed is not None and first_unsealed <= last_contact:
        resume = first_unsealed - 1
    with transaction.atomic():
        Recipient.objects.filter(batch__in=unsealed).delete()
        Recipient.objects.filter(
            campaign=campaign, is_test=False, contact_id__gt=resume
        ).exclude(batch__in=sealed).delete()
        unsealed.delete()
        if last_contact:
            counters.recount(campaign.pk)
        else:
            CampaignCount.objects.filter(campaign=campaign).delete()
    skip: set[int] = set()
    if resume < last_contact:
        skip = set(
            Recipient.objects.filter(
                batch__in=sealed, contact_id__gt=resume
            ).values_list("contact_id", flat=True)
        )
    if last_contact:
        checker.remember(
            Recipient.objects.filter(campaign=campaign, is_test=False)
            .exclude(status=Recipient.Status.EXCLUDED)
            .values_list("identity", flat=True)
            .iterator(chunk_size=10_000)
        )
    sequence = batches.aggregate(n=Max("sequence"))["n"] or 0
    return resume, sequence, skip, _sealed_per_group(campaign, sealed)


def _sealed_per_group(campaign: Campaign, sealed) -> dict[str, int]:
    """How many batches of each send group an interrupted freeze sealed (a
    batch's group is its wave's)."""
    groups = {w.at: w.group for w in ingress.waves_of(campaign)}
    counts: dict[str, int] = {}
    for wave_at in sealed.values_list("wave_at", flat=True):
        if wave_at is None:
            key = send_times.NOW
        else:
            key = ingress.group_of(campaign, groups.get(wave_at, ""))
        counts[key] = counts.get(key, 0) + 1
    return counts


def _values_json(values: dict[str, str]) -> str:
    """json.dumps(values, ensure_ascii=False), ten times faster for the usual
    all-string values (a million of them are written by a large launch)."""
    try:
        return (
            "{"
            + ", ".join(
                [
                    encode_basestring(key) + ": " + encode_basestring(value)
                    for key, value in values.items()
                ]
            )
            + "}"
        )
    except TypeError:  # not a string: the general encoder
        return json.dumps(values, ensure_ascii=False)


def _pairs_json(pairs: list[list[str]]) -> str:
    """[[channel, identity], ...] as JSON text (channels and identities are
    plain strings: encode_basestring escapes anything else)."""
    return (
        "["
        + ", ".join(
            [f"[{encode_basestring(c)}, {encode_basestring(i)}]" for c, i in pairs]
        )
        + "]"
    )


def _reason(status: str, reason: str) -> str:
    """An exclusion's reason at the freeze (a blocking problem excludes too)."""
    if status == audience.BLOCKING:
        reason = f"{reason} (found at launch)"
    return reason[:255]
