"""The pre-send check of a campaign's whole audience.

`run_presend_check` walks the distinct audience members (contacts of the
campaign's lists) in contact-id order, CHUNK_SIZE at a time, with three
queries per chunk (member ids, their contacts, their identities on the
campaign's channel). Each member is classified:

- excluded (not sent, not a problem to fix): erased contact, opted out, no
  consent record for the campaign's purpose on its channel, duplicate identity
  (an identity already seen for an earlier contact: the later one is dropped);
- blocking (must be fixed before launch): no identity on the channel, an
  invalid identity, a placeholder with no value and no default;
- ok, possibly with warnings: UCS-2 after substitution, too many SMS parts,
  suspicious parameter values.

One CSV row per member is streamed to MEDIA_ROOT/presend/campaign-<id>.csv;
the campaign keeps only a summary (counts, the first EXAMPLES examples per
problem, the segment histogram and the estimates) in `presend`.

Memory: per chunk, plus the set of identities seen so far (needed to find
duplicates across chunks; about 100 bytes per recipient).
"""

import csv
import json
import logging
import os
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from django.conf import settings
from django.db import connection, transaction
from django.utils import timezone
from django_q.tasks import async_task

from campaigns.authoring import estimates, sms, suspicious
from campaigns.authoring.rendering import MessagePlan
from campaigns.models import Campaign, TemplateParameter
from contacts.models import ChannelIdentity, ConsentState, Contact, ListMembership
from contacts.phones import PHONE_CHANNELS, InvalidIdentity, normalise_identity
from sinch.channels import Channel

logger = logging.getLogger(__name__)

CHUNK_SIZE = 5000
EXAMPLES = 100

OK, BLOCKING, EXCLUDED = "OK", "BLOCKING", "EXCLUDED"
WARNING = "WARNING"

# Problem keys and labels; a missing placeholder adds "missing:<name>".
ERASED = "erased"
OPTED_OUT = "opted_out"
NO_CONSENT = "no_consent"
DUPLICATE = "duplicate"
NO_IDENTITY = "no_identity"
INVALID_IDENTITY = "invalid_identity"
UCS2 = "ucs2"
TOO_LONG = "too_long"

CSV_HEADER = [
    "contact_id",
    "identity",
    "status",
    "reason",
    "encoding",
    "segments",
    "rendered_text",
]


@dataclass
class Problem:
    kind: str  # BLOCKING, EXCLUDED or WARNING
    label: str
    count: int = 0
    examples: list[dict[str, Any]] = field(default_factory=list)

    def add(self, member: tuple, detail: str = "") -> None:
        """Count one audience member (a row of `_member_rows`)."""
        self.count += 1
        if len(self.examples) < EXAMPLES:
            self.examples.append(
                {"contact_id": member[0], "name": _name(member), "detail": detail}
            )


@dataclass
class PresendResult:
    audience: int = 0
    ok: int = 0
    blocking: int = 0
    excluded: int = 0
    problems: dict[str, Problem] = field(default_factory=dict)
    encodings: Counter = field(default_factory=Counter)
    ucs2_chars: Counter = field(default_factory=Counter)
    segments: Counter = field(default_factory=Counter)
    segments_by_region: Counter = field(default_factory=Counter)
    max_parts: int | None = None
    csv_path: str = ""
    summary: dict[str, Any] = field(default_factory=dict)

    def problem(self, key: str, kind: str, label: str) -> Problem:
        found = self.problems.get(key)
        if found is None:
            found = self.problems[key] = Problem(kind, label)
        return found

    @property
    def can_launch(self) -> bool:
        return self.blocking == 0 and self.ok > 0


def csv_path(campaign: Campaign) -> Path:
    return Path(settings.MEDIA_ROOT) / "presend" / f"campaign-{campaign.pk}.csv"


def audience_size(campaign: Campaign) -> int:
    """The number of distinct audience members (one COUNT query)."""
    return (
        ListMembership.objects.filter(contact_list__in=campaign.lists.all())
        .values("contact_id")
        .distinct()
        .count()
    )


def run_presend_check(
    campaign: Campaign,
    chunk_size: int = CHUNK_SIZE,
    progress: Callable[[int], None] | None = None,
) -> PresendResult:
    """Check every audience member, store the summary on `campaign`, write the CSV.

    `progress`, if given, is called with the number of members checked so far
    after each chunk.
    """
    checker = MemberChecker(campaign)
    result = checker.result
    path = csv_path(campaign)
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_suffix(".csv.part")
    with open(partial, "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(CSV_HEADER)
        for rows in _member_rows(campaign, checker.consent_column, chunk_size):
            writer.writerows([checker.check(row) for row in rows])
            if progress is not None:
                progress(result.audience)
    os.replace(partial, path)
    result.csv_path = str(path)
    result.summary = _summary(result, campaign)
    # update(), not save(): the check is not an edit (updated_at stays).
    campaign.presend = result.summary
    campaign.presend_at = timezone.now()
    Campaign.objects.filter(pk=campaign.pk).update(
        presend=campaign.presend, presend_at=campaign.presend_at
    )
    return result


# A member row: the contact's columns, then its identity and consent on the
# campaign's channel (None when it has none).
ID, FIRST_NAME, LAST_NAME, EXTERNAL_ID, ERASED_AT, ATTRIBUTES = range(6)
CONTACT_COLUMNS = (
    "id",
    "first_name",
    "last_name",
    "external_id",
    "erased_at",
    "attributes",
    "language",
    "time_zone",
)
IDENTITY, CONSENT = len(CONTACT_COLUMNS), len(CONTACT_COLUMNS) + 1


def _member_rows(
    campaign: Campaign, consent_column: str, chunk_size: int, start_after: int = 0
):
    """Lists of member rows in contact-id order, about `chunk_size` at a time.

    Each chunk is a range of contact ids holding at least `chunk_size` members
    of one of the lists (found by an OFFSET on each list's (list, contact)
    index), read with one query joining contact and identity. A contact with
    several identities on the channel appears once, with the oldest.
    """
    list_ids = list(campaign.lists.values_list("pk", flat=True))
    if not list_ids:
        return
    membership = ListMembership._meta.db_table
    marks = ", ".join(["%s"] * len(list_ids))
    columns = ", ".join(f"c.{name}" for name in CONTACT_COLUMNS)
    rows_sql = (
        f"SELECT {columns}, i.identity, i.{consent_column} "
        f"FROM {Contact._meta.db_table} c "
        f"LEFT JOIN {ChannelIdentity._meta.db_table} i "
        "ON i.contact_id = c.id AND i.channel = %s "
        "WHERE c.id > %s AND c.id <= %s AND c.id IN ("
        f"SELECT m.contact_id FROM {membership} m "
        f"WHERE m.contact_list_id IN ({marks}) "
        "AND m.contact_id > %s AND m.contact_id <= %s) "
        "ORDER BY c.id, i.id"
    )
    bound_sql = (
        f"SELECT contact_id FROM {membership} WHERE contact_list_id = %s "
        "AND contact_id > %s ORDER BY contact_id LIMIT 1 OFFSET %s"
    )
    last = start_after
    while True:
        # A cursor per chunk, closed before the chunk is handed over: the
        # caller may queue tasks meanwhile, and django-q2's ORM broker closes
        # the connection to do that.
        with connection.cursor() as cursor:
            bounds = []
            for list_id in list_ids:
                cursor.execute(bound_sql, [list_id, last, chunk_size - 1])
                found = cursor.fetchone()
                if found:
                    bounds.append(found[0])
            upper = min(bounds) if bounds else LAST_ID
            cursor.execute(
                rows_sql, [campaign.channel, last, upper, *list_ids, last, upper]
            )
            rows = _first_identity(cursor.fetchall())
        if rows:
            yield rows
        if upper == LAST_ID:
            return
        last = upper


LAST_ID = 2**62


def rows_of(campaign: Campaign, contact_ids, consent_column: str) -> list[tuple]:
    """Member rows (as `_member_rows` yields them) of the given contacts."""
    ids = sorted(contact_ids)
    if not ids:
        return []
    columns = ", ".join(f"c.{name}" for name in CONTACT_COLUMNS)
    marks = ", ".join(["%s"] * len(ids))
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT {columns}, i.identity, i.{consent_column} "
            f"FROM {Contact._meta.db_table} c "
            f"LEFT JOIN {ChannelIdentity._meta.db_table} i "
            "ON i.contact_id = c.id AND i.channel = %s "
            f"WHERE c.id IN ({marks}) ORDER BY c.id, i.id",
            [campaign.channel, *ids],
        )
        return _first_identity(cursor.fetchall())


def _first_identity(rows) -> list[tuple]:
    """One row per contact: the first, which holds its oldest identity."""
    kept, previous = [], None
    for row in rows:
        if row[ID] != previous:
            kept.append(row)
            previous = row[ID]
    return kept


def member_statuses(campaign: Campaign, contact_ids) -> dict[int, tuple[str, str]]:
    """(status, reason) of a few contacts, by the rules of the full check.

    For the preview: shows who would be excluded or block the launch. A
    duplicate identity cannot be seen from a few contacts; the full check
    finds those.
    """
    checker = MemberChecker(campaign)
    statuses = {}
    for row in rows_of(campaign, contact_ids, checker.consent_column):
        _, _, status, reason, *_ = checker.check(row)
        statuses[row[ID]] = (status, reason)
    return statuses


class MemberChecker:
    """Classifies audience members one row at a time, counting into `result`.

    `check(row)` takes a member row (see `_member_rows`, `rows_of`) and
    returns its CSV row: contact id, identity, status, reason, encoding,
    segments, rendered text. Rows must come in contact-id order for the
    duplicate rule (the later of two contacts sharing an identity is out).
    """

    def __init__(self, campaign: Campaign, *, render: bool = True) -> None:
        """`render=False` skips the rendered text and the SMS analysis (the
        launch needs only each member's status and values)."""
        self.render = render
        self.values: dict[str, str] = {}  # the last OK member's values
        self.plan = MessagePlan.for_campaign(campaign)
        self.channel = campaign.channel
        self.channel_label = Channel(campaign.channel).label
        self.consent_column = f"{campaign.purpose.lower()}_consent"
        self.is_sms = campaign.channel == Channel.SMS
        self.phone_keys = campaign.channel in PHONE_CHANNELS
        self.result = PresendResult(max_parts=_max_parts(campaign))
        # Identities already used (as ints for phone numbers: less memory).
        self.seen: set[int | str] = set()
        self.getters = [(source, self._getter(source)) for source in self.plan.sources]
        self.attribute_keys = [
            s.attribute_key
            for s in self.plan.sources
            if s.source == TemplateParameter.Source.ATTRIBUTE
        ]
        self.uses_attributes = bool(self.attribute_keys)

    def _getter(self, source) -> Callable[[tuple, dict], Any]:
        Source = TemplateParameter.Source
        if source.source == Source.CONTACT_FIELD:
            index = CONTACT_COLUMNS.index(source.contact_field)
            return lambda row, attributes: row[index]
        if source.source == Source.ATTRIBUTE:
            key = source.attribute_key
            return lambda row, attributes: attributes.get(key)
        value = self.plan.campaign_values.get(source.name)
        return lambda row, attributes: value

    def check(self, row: tuple) -> list[Any]:
        """Classify one member, count it, return its CSV row."""
        result = self.result
        result.audience += 1
        pk, identity, consent = row[ID], row[IDENTITY], row[CONSENT]
        label = self.channel_label
        if row[ERASED_AT] is not None:
            return self._exclude(row, ERASED, "contact erased")
        if identity is None:
            return self._block(row, NO_IDENTITY, f"no {label} identity")
        try:
            canonical = normalise_identity(self.channel, identity)
        except InvalidIdentity as exc:
            return self._block(
                row,
                INVALID_IDENTITY,
                f"invalid {label} identity",
                identity,
                f"{identity}: {exc}",
            )
        if consent == ConsentState.OPTED_OUT:
            return self._exclude(row, OPTED_OUT, "opted out", canonical)
        if consent != ConsentState.OPTED_IN:
            return self._exclude(row, NO_CONSENT, "no consent record", canonical)
        key = self._key(canonical)
        if key in self.seen:
            return self._exclude(
                row,
                DUPLICATE,
                "duplicate identity",
                canonical,
                f"{canonical} already used",
            )
        self.seen.add(key)

        attributes = (
            _attributes(row[ATTRIBUTES], self.attribute_keys)
            if self.uses_attributes
            else EMPTY
        )
        values: dict[str, str] = {}
        missing: list[str] = []
        for source, getter in self.getters:
            value = source.resolve(getter(row, attributes))
            if value is None:
                missing.append(source.name)
                continue
            values[source.name] = value
            reasons = suspicious.problems(value)
            for reason in reasons:
                result.problem(
                    f"suspicious:{source.name}:{reason}",
                    WARNING,
                    f"${{{source.name}}}: {reason}",
                ).add(row, repr(value))
        if missing:
            result.blocking += 1
            for name in missing:
                result.problem(
                    f"missing:{name}",
                    BLOCKING,
                    f"no value for ${{{name}}} and no default",
                ).add(row, canonical)
            names = ", ".join("${" + n + "}" for n in missing)
            return [pk, canonical, BLOCKING, f"no value for {names}", "", "", ""]

        self.values = values
        if not self.render:
            result.ok += 1
            return [pk, canonical, OK, "", "", "", ""]
        text = self.plan.text(values)
        notes: list[str] = []
        encoding, segments = "", ""
        if self.is_sms:
            info = sms.analyse(text, result.max_parts)
            encoding, segments = info.encoding, info.segments
            result.encodings[encoding] += 1
            result.segments[segments] += 1
            result.segments_by_region[estimates.region_of(canonical)] += segments
            if info.ucs2_chars:
                result.ucs2_chars.update(info.ucs2_chars)
                chars = " ".join(info.ucs2_chars)
                result.problem(UCS2, WARNING, "sent as UCS-2").add(row, chars)
                notes.append(f"UCS-2 because of {chars}")
            if info.too_long:
                result.problem(
                    TOO_LONG, WARNING, f"more than {result.max_parts} SMS parts"
                ).add(row, f"{segments} parts")
                notes.append(f"{segments} parts, more than {result.max_parts}")
        result.ok += 1
        return [pk, canonical, OK, "; ".join(notes), encoding, segments, text]

    def _key(self, canonical: str) -> int | str:
        """How an identity is kept in `seen` (phone numbers as ints: less memory)."""
        if self.phone_keys and canonical[1:].isdigit():
            return int(canonical[1:])
        return canonical

    def remember(self, identities) -> None:
        """Count `identities` as used already (a resumed launch's earlier part)."""
        self.seen.update(self._key(identity) for identity in identities)

    def _exclude(self, row, key: str, text: str, identity: str = "", detail=""):
        self.result.excluded += 1
        self.result.problem(key, EXCLUDED, text).add(row, detail)
        return [row[ID], identity, EXCLUDED, text, "", "", ""]

    def _block(self, row, key: str, text: str, identity: str = "", detail=""):
        self.result.blocking += 1
        self.result.problem(key, BLOCKING, text).add(row, detail)
        return [row[ID], identity, BLOCKING, text, "", "", ""]


EMPTY: dict[str, Any] = {}


def _attributes(raw: Any, keys: list[str]) -> dict[str, Any]:
    """A contact's attributes column as read by a raw query (text or decoded).

    JSON text is decoded only when it may hold one of `keys`: a plain ASCII
    key is written as "key" in the stored JSON, so its absence is certain.
    """
    if isinstance(raw, str):
        if all(_plain_key(k) and f'"{k}"' not in raw for k in keys):
            return EMPTY
        raw = json.loads(raw)
    return raw if isinstance(raw, dict) else EMPTY


def _plain_key(key: str) -> bool:
    return key.isascii() and key.isprintable() and '"' not in key and "\\" not in key


def _name(member: tuple) -> str:
    """How a member is named in examples (as Contact.__str__ does)."""
    if member[ERASED_AT] is not None:
        return f"Erased contact #{member[ID]}"
    name = f"{member[FIRST_NAME]} {member[LAST_NAME]}".strip()
    return name or member[EXTERNAL_ID] or f"Contact #{member[ID]}"


def _max_parts(campaign: Campaign) -> int | None:
    raw = (campaign.channel_properties or {}).get("SMS_MAX_NUMBER_OF_MESSAGE_PARTS")
    try:
        return int(raw) if raw not in (None, "") else None
    except (TypeError, ValueError):
        return None


def _summary(result: PresendResult, campaign: Campaign) -> dict[str, Any]:
    by_kind: dict[str, dict[str, Any]] = {BLOCKING: {}, EXCLUDED: {}, WARNING: {}}
    for key, problem in sorted(result.problems.items()):
        by_kind[problem.kind][key] = {
            "label": problem.label,
            "count": problem.count,
            "examples": problem.examples,
        }
    summary: dict[str, Any] = {
        "audience": result.audience,
        "ok": result.ok,
        "blocking": result.blocking,
        "excluded": result.excluded,
        "excluded_by_reason": {
            p["label"]: p["count"] for p in by_kind[EXCLUDED].values()
        },
        "blocking_problems": by_kind[BLOCKING],
        "excluded_problems": by_kind[EXCLUDED],
        "warnings": by_kind[WARNING],
        "channel": campaign.channel,
        "encodings": dict(result.encodings),
        "ucs2_chars": dict(result.ucs2_chars.most_common(50)),
        "histogram": sms.histogram_lines(result.segments.elements())
        if result.segments
        else [],
        "segments": {str(k): v for k, v in sorted(result.segments.items())},
        "max_parts": result.max_parts,
        "time": estimates.delivery_time_text(result.ok),
        "cost": None,
        "cost_total": None,
    }
    if result.segments_by_region:
        cost = estimates.estimate_cost(result.segments_by_region)
        summary["cost"] = cost.text
        summary["cost_total"] = str(cost.total)
    return summary


def campaign_can_launch(campaign: Campaign) -> tuple[bool, list[str]]:
    """Whether the stored pre-send check allows a launch, and what to fix if not."""
    summary = campaign.presend
    if not summary or campaign.presend_at is None:
        return False, ["Run the pre-send check first."]
    reasons = []
    changed = [campaign.updated_at]
    if not campaign.message_snapshot:  # a frozen message ignores template edits
        changed.append(campaign.template.updated_at)
    if any(t is not None and t > campaign.presend_at for t in changed):
        reasons.append(
            "The campaign or its template changed since the last pre-send check: "
            "run it again."
        )
    for key, problem in summary.get("blocking_problems", {}).items():
        names = ", ".join(e["name"] for e in problem["examples"][:5])
        more = " …" if problem["count"] > 5 else ""
        reasons.append(
            f"{problem['count']:,} recipient{'s' if problem['count'] != 1 else ''}: "
            f"{problem['label']} (e.g. {names}{more}) — {_fix(key)}."
        )
    if not summary.get("ok"):
        reasons.append("No recipient can receive this campaign.")
    return not reasons, reasons


def _fix(key: str) -> str:
    """What to do about a blocking problem."""
    if key.startswith("missing:"):
        name = key.removeprefix("missing:")
        return (
            f"give ${{{name}}} a default on the template, or fill in the "
            "value for these contacts"
        )
    return "add or correct their identity on the campaign's channel"


def request_check(campaign: Campaign) -> bool:
    """Run the check now when the audience is small, else queue it for a worker.

    Returns True when it ran inline (the result is stored), False when queued.
    Asking again while a check is queued or running starts nothing new (a
    check left behind by a dead worker may be asked for again after the
    cluster's task timeout).
    """
    State = Campaign.PresendState
    now = timezone.now()
    stale = now - timedelta(seconds=settings.Q_CLUSTER["timeout"])
    busy = (
        campaign.presend_state in (State.QUEUED, State.RUNNING)
        and campaign.presend_requested_at is not None
        and campaign.presend_requested_at > stale
    )
    if busy:
        return False
    total = audience_size(campaign)
    Campaign.objects.filter(pk=campaign.pk).update(
        presend_state=State.QUEUED,
        presend_requested_at=now,
        presend_progress=0,
        presend_total=total,
        presend_error="",
    )
    campaign.refresh_from_db()
    if total <= settings.PRESEND_INLINE_RECIPIENTS:
        run_requested_check(campaign.pk, now.isoformat())
        campaign.refresh_from_db()
        return True
    transaction.on_commit(
        lambda: async_task(
            "campaigns.tasks.presend_check",
            campaign.pk,
            now.isoformat(),
            task_name=f"presend-{campaign.pk}-{now:%Y%m%d%H%M%S%f}",
        )
    )
    return False


def run_requested_check(campaign_id: int, requested_at: str) -> str:
    """Run the check asked for at `requested_at`, unless another run took it.

    The request is claimed with one UPDATE (QUEUED -> RUNNING for this very
    request), so a task delivered twice runs once; progress is written after
    each chunk for the preview page; a failure is recorded, not lost.
    """
    State = Campaign.PresendState
    claimed = Campaign.objects.filter(
        pk=campaign_id,
        presend_state=State.QUEUED,
        presend_requested_at=datetime.fromisoformat(requested_at),
    ).update(presend_state=State.RUNNING)
    if not claimed:
        return f"pre-send check {campaign_id}@{requested_at}: taken or superseded"
    campaign = Campaign.objects.select_related("template").get(pk=campaign_id)

    def progress(checked: int) -> None:
        Campaign.objects.filter(pk=campaign_id).update(presend_progress=checked)

    try:
        result = run_presend_check(campaign, progress=progress)
    except Exception as exc:
        logger.exception("pre-send check of campaign %s failed", campaign_id)
        Campaign.objects.filter(pk=campaign_id).update(
            presend_state=State.FAILED,
            presend_error=f"{type(exc).__name__}: {exc}",
        )
        raise
    Campaign.objects.filter(pk=campaign_id).update(
        presend_state=State.DONE, presend_progress=result.audience
    )
    return (
        f"pre-send check {campaign_id}: {result.ok} ok, {result.blocking} "
        f"blocking, {result.excluded} excluded"
    )
