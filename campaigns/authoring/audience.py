"""Who may receive a campaign, and with which values: the one rule.

Every path that decides whether a person gets a campaign reads it here: the
preview (`member_statuses`), the pre-send check and the launch freeze
(`MemberChecker`), the test send, and the re-check just before each batch
goes to Sinch (campaigns.authoring.recheck). The consent and erasure part of
the rule is `consent_problem` (campaigns.authoring.consent_rule); the checker
adds what only a whole-audience walk can see (a valid identity, values for
every placeholder, duplicates). A recipient's identities on the campaign's
fallback channels follow the same rule (campaigns.authoring.fallback_identities).

A member is:

- excluded (not sent, not a problem to fix): erased contact or number, opted
  out, no consent for the purpose on its channel, outside WhatsApp's window,
  duplicate identity (an identity seen for an earlier contact: dropped), over
  the frequency cap (campaigns.compliance.frequency; marketing only);
- blocking (must be fixed before launch): no identity on the channel, an
  invalid identity, a placeholder with no value and no default;
- ok, possibly with warnings: UCS-2 after substitution, too many SMS parts,
  suspicious parameter values.

Members are read in contact-id order, a chunk at a time, with one query per
chunk (`member_rows`). Memory: per chunk, plus the set of identities seen so
far (needed to find duplicates across chunks; about 100 bytes per recipient).
"""

from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from operator import itemgetter
from typing import Any

from django.db import connection

from campaigns.authoring import (
    channel_rules,
    estimates,
    members,
    sms,
    stored_attributes,
    suspicious,
    variants,
)
from campaigns.authoring import fallback_identities as fallbacks
from campaigns.authoring.consent_rule import (
    ERASED,
    NO_CONSENT,
    NO_IDENTITY,
    OPTED_OUT,
    consent_column,
    consent_problem,
)
from campaigns.authoring.rendering import MessagePlan
from campaigns.compliance import frequency
from campaigns.compliance.footer import FooterTally
from campaigns.models import Campaign, TemplateParameter
from campaigns.placeholders import FOOTER_PARAMETER
from contacts import phones
from contacts.models import ChannelIdentity, ConsentState, Contact, ListMembership
from contacts.phones import PHONE_CHANNELS, InvalidIdentity, normalise_identity
from contacts.services.suppression import ErasedNumbers, erased_numbers
from sinch.channels import Channel

CHUNK_SIZE = 5000
EXAMPLES = 100

OK, BLOCKING, EXCLUDED, WARNING = "OK", "BLOCKING", "EXCLUDED", "WARNING"
FALLBACK = "FALLBACK"  # a fallback channel left out for a recipient

# Problem keys and labels; a missing placeholder adds MISSING + its name.
MISSING = "missing:"
ERASED_NUMBER = "erased_number"
DUPLICATE = "duplicate"
INVALID_IDENTITY = "invalid_identity"
UCS2 = "ucs2"
TOO_LONG = "too_long"


@dataclass
class Problem:
    kind: str  # BLOCKING, EXCLUDED or WARNING
    label: str
    count: int = 0
    examples: list[dict[str, Any]] = field(default_factory=list)

    def add(self, member: tuple, detail: str = "") -> None:
        """Count one audience member (a row of `member_rows`)."""
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


# A member row: the contact's columns, then its identity and consent on the
# campaign's channel (None when it has none), then whether its number is erased,
# then the frequency-cap rule it would break (None: within the cap, or not
# capped), then (campaigns with fallback channels only) its fallback candidates.
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

LANGUAGE = CONTACT_COLUMNS.index("language")
TIME_ZONE = CONTACT_COLUMNS.index("time_zone")
IDENTITY, CONSENT, SUPPRESSED, CAPPED, FALLBACKS = (
    len(CONTACT_COLUMNS) + n for n in range(5)
)
# A replaced (retired) number is never sent to; the filter costs no index.
LIVE_IDENTITY = "ON i.contact_id = c.id AND i.channel = %s AND i.retired_at IS NULL "


def member_rows(campaign: Campaign, chunk_size: int, start_after=0, on_segments=None):
    """Lists of member rows in contact-id order, about `chunk_size` at a time.
    With segments: campaigns.authoring.members.id_chunks (`on_segments`).

    Each chunk is a range of contact ids holding at least `chunk_size` members
    of one of the lists (found by an OFFSET on each list's (list, contact)
    index), read with one query joining contact and live identity. A contact with
    several live identities on the channel appears once, with the oldest.
    """
    if members.has_segments(campaign):
        erased, cap = ErasedNumbers(), frequency.cap_for(campaign)
        for ids in members.id_chunks(campaign, chunk_size, start_after, on_segments):
            yield _rows_of_ids(campaign, ids, erased.among, cap)
        return
    list_ids = list(campaign.lists.values_list("pk", flat=True))
    if not list_ids:
        return
    consent = consent_column(campaign)
    membership = ListMembership._meta.db_table
    marks = ", ".join(["%s"] * len(list_ids))
    columns = ", ".join(f"c.{name}" for name in CONTACT_COLUMNS)
    rows_sql = (
        f"SELECT {columns}, i.identity, i.{consent} "
        f"FROM {Contact._meta.db_table} c "
        f"LEFT JOIN {ChannelIdentity._meta.db_table} i "
        f"{LIVE_IDENTITY}"
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
    last, erased = start_after, ErasedNumbers()
    cap = frequency.cap_for(campaign)
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
            yield _with_suppression(rows, campaign, erased.among, cap)
        if upper == LAST_ID:
            return
        last = upper


LAST_ID = 2**62


def rows_of(campaign: Campaign, contact_ids, *, capped: bool = True) -> list[tuple]:
    """Member rows (as `member_rows` yields them) of the given contacts;
    `capped=False` leaves the frequency cap out (a test send)."""
    cap = frequency.cap_for(campaign) if capped else None
    return _rows_of_ids(campaign, sorted(contact_ids), erased_numbers, cap)


def _rows_of_ids(campaign: Campaign, ids: list[int], erased_among, cap) -> list:
    if not ids:
        return []
    columns = ", ".join(f"c.{name}" for name in CONTACT_COLUMNS)
    marks = ", ".join(["%s"] * len(ids))
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT {columns}, i.identity, i.{consent_column(campaign)} "
            f"FROM {Contact._meta.db_table} c "
            f"LEFT JOIN {ChannelIdentity._meta.db_table} i "
            f"{LIVE_IDENTITY}"
            f"WHERE c.id IN ({marks}) ORDER BY c.id, i.id",
            [campaign.channel, *ids],
        )
        rows = _first_identity(cursor.fetchall())
    return _with_suppression(rows, campaign, erased_among, cap)


def _with_suppression(rows: list[tuple], campaign, erased_among, cap) -> list[tuple]:
    """`rows` with SUPPRESSED (looked up for those who would otherwise pass),
    CAPPED (one query when `cap` is on) and FALLBACKS (fallback channels)."""
    yes = ConsentState.OPTED_IN
    ok = (r[IDENTITY] for r in rows if r[CONSENT] == yes and not r[ERASED_AT])
    erased = erased_among(campaign.channel, ok)
    ids = [row[ID] for row in rows]
    over = {}
    if cap is not None and cap.active:
        where = None  # everyone's send time is the campaign's
        if cap.send_times is not None:
            where = dict(zip(ids, map(_zone_and_identity, rows), strict=True))
        over = cap.over(ids, where)
    suppressed = [r[IDENTITY] in erased for r in rows] if erased else [False] * len(ids)
    tails = [suppressed, list(map(over.get, ids))]
    if fallbacks.fallback_channels(campaign):
        found = fallbacks.candidates(campaign, ids, erased_among)
        tails.append([found.get(i, ()) for i in ids])
    return list(map(tuple.__add__, rows, zip(*tails, strict=True)))


_zone_and_identity = itemgetter(TIME_ZONE, IDENTITY)


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

    For the preview: who would be excluded or block the launch. A duplicate
    identity cannot be seen from a few contacts; the full check finds those."""
    checker = MemberChecker(campaign)
    statuses = {}
    for row in rows_of(campaign, contact_ids):
        _, _, status, reason, *_ = checker.check(row)
        statuses[row[ID]] = (status, reason)
    return statuses


class MemberChecker:
    """Classifies audience members one row at a time, counting into `result`.

    `check(row)` takes a member row (see `member_rows`, `rows_of`) and
    returns its CSV row: contact id, identity, status, reason, encoding,
    segments, rendered text. Rows must come in contact-id order for the
    duplicate rule (the later of two contacts sharing an identity is out).
    """

    def __init__(self, campaign: Campaign, *, render: bool = True, split=None) -> None:
        """`render=False` skips the rendered text, the SMS analysis and the
        suspicious values' warnings (the launch needs only each member's status
        and values); `split`: an A/B test's (variants.Split), each member's
        text is their variant's."""
        self.render = render
        self.values: dict[str, str] = {}  # the last OK member's values
        self.fallbacks: list[list[str]] = []  # and its fallback identities
        has_fallbacks = fallbacks.fallback_channels(campaign)
        self.fallback = fallbacks.FallbackChecker(campaign) if has_fallbacks else None
        self.plan = MessagePlan.for_campaign(campaign)
        # The held remainder's text (its winner is not known yet): the campaign's.
        self.split = split if render else None
        self.plans = variants.plans_by_label(campaign) if self.split else {}
        self.window = channel_rules.window_for(campaign, self.plan.message)
        self.channel = campaign.channel
        self.channel_label = Channel(campaign.channel).label
        self.is_sms = campaign.channel == Channel.SMS
        self.phone_keys = campaign.channel in PHONE_CHANNELS
        self.result = PresendResult(max_parts=_max_parts(campaign))
        # The compliance footer: a value per member, and what it adds to SMS.
        self.footer = self.plan.footer
        self.footer_tally = (
            FooterTally() if self.footer is not None and self.is_sms else None
        )
        # Identities already used (as ints for phone numbers: less memory).
        self.seen: set[int | str] = set()
        self.getters = [(source, self._getter(source)) for source in self.plan.sources]
        self.suspicious: dict[str, list[str]] = {}  # suspicious.problems per value
        self.attribute_keys = [
            s.attribute_key
            for s in self.plan.sources
            if s.source == TemplateParameter.Source.ATTRIBUTE
        ]
        self.uses_attributes = bool(self.attribute_keys)
        self.attribute_needles = stored_attributes.needles(self.attribute_keys)

    def _getter(self, source) -> Callable[[tuple, dict], str | None]:
        """The member's value (None: missing), from their row and attributes."""
        Source, resolve = TemplateParameter.Source, source.resolve
        if source.source == Source.CONTACT_FIELD:
            index = CONTACT_COLUMNS.index(source.contact_field)
            return lambda row, attributes: resolve(row[index])
        if source.source == Source.ATTRIBUTE:
            key = source.attribute_key
            return lambda row, attributes: resolve(attributes.get(key))
        value = resolve(self.plan.campaign_values.get(source.name))  # one for all
        return lambda row, attributes: value

    def check(self, row: tuple) -> list[Any]:
        """Classify one member, count it, return its CSV row."""
        result = self.result
        result.audience += 1
        pk, identity, consent = row[ID], row[IDENTITY], row[CONSENT]
        label = self.channel_label
        problem = consent_problem(row[ERASED_AT] or row[SUPPRESSED], identity, consent)
        if problem == ERASED:
            if row[ERASED_AT] is not None:
                return self._exclude(row, ERASED, "contact erased")
            return self._exclude(row, ERASED_NUMBER, "number erased (suppressed)")
        if problem == NO_IDENTITY:
            return self._block(row, NO_IDENTITY, f"no {label} identity")
        # Stored numbers are valid as they are (mostly): no clean-up to try.
        canonical = phones.stored_e164(identity) if self.phone_keys else None
        try:
            canonical = canonical or normalise_identity(self.channel, identity)
        except InvalidIdentity as exc:
            return self._block(
                row,
                INVALID_IDENTITY,
                f"invalid {label} identity",
                identity,
                f"{identity}: {exc}",
            )
        if problem == OPTED_OUT:
            return self._exclude(row, OPTED_OUT, "opted out", canonical)
        if problem == NO_CONSENT:
            return self._exclude(row, NO_CONSENT, "no consent record", canonical)
        if self.window and not self.window.allows(pk):
            return self._exclude(row, self.window.KEY, self.window.label, canonical)
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
        capped = row[CAPPED]
        if capped is not None:
            return self._exclude(row, capped.key, capped.label, canonical)

        attributes = (
            stored_attributes.read(row[ATTRIBUTES], self.attribute_needles)
            if self.uses_attributes
            else stored_attributes.EMPTY
        )
        values: dict[str, str] = {}
        missing: list[str] = []
        known = self.suspicious
        for source, getter in self.getters:
            value = getter(row, attributes)
            if value is None:
                missing.append(source.name)
                continue
            values[source.name] = value
            # The launch (render=False) leaves the warnings to the pre-send check.
            reasons = known.get(value) if self.render else ()
            if reasons is None:  # most values repeat: a default, a campaign's
                reasons = suspicious.remember(known, value)
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
                    f"{MISSING}{name}",
                    BLOCKING,
                    f"no value for ${{{name}}} and no default",
                ).add(row, canonical)
            names = ", ".join("${" + n + "}" for n in missing)
            return [pk, canonical, BLOCKING, f"no value for {names}", "", "", ""]

        if self.footer is not None:
            values[FOOTER_PARAMETER] = self.footer.value_for(row[LANGUAGE])
        self.values = values
        notes: list[str] = []
        if self.fallback is not None:
            self.fallbacks = self._fallbacks(row, notes)
        if not self.render:
            result.ok += 1
            return [pk, canonical, OK, "", "", "", ""]
        plan = self.plans.get(self.split.label(pk)) if self.split else None
        text = (plan or self.plan).text(values)
        encoding, segments = "", ""
        if self.is_sms:
            info = sms.analyse(text, result.max_parts)
            encoding, segments = info.encoding, info.segments
            result.encodings[encoding] += 1
            result.segments[segments] += 1
            result.segments_by_region[estimates.region_of(canonical)] += segments
            if self.footer_tally is not None:
                self.footer_tally.add(values[FOOTER_PARAMETER], text, segments)
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

    def _fallbacks(self, row: tuple, notes: list[str]) -> list[list[str]]:
        """The member's fallback identities; counts the channels left out."""
        pairs, left = self.fallback.check(row[FALLBACKS])
        for channel, key in left:
            text = fallbacks.reason_text(channel, key)
            self.result.problem(f"{fallbacks.KEY}{channel}:{key}", FALLBACK, text).add(
                row
            )
            notes.append(f"no {fallbacks.label(channel)} fallback: {text}")
        return pairs

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
