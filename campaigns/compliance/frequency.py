"""The frequency cap: how many marketing messages a person gets across campaigns.

FREQUENCY_CAP (default ``2/7d,1/1d``; campaigns.compliance.cap_rules) says
how many marketing messages a person may get in any rolling window. A
marketing campaign's member is excluded, with the broken rule as the reason
("frequency cap: 2 marketing messages in 7 days"), when a message at the
campaign's send time would break a rule, counting the messages of *other*
marketing campaigns that Sinch accepted:

- a recipient counts when its batch was accepted by Sinch (`submitted_at`
  set), is not a test send, and the recipient was handed over (SUBMITTED and
  every delivery status after it, FAILED included: a message that failed on
  the handset was still sent). EXCLUDED, PENDING and CANCELLED rows never
  went out and do not count;
- each message counts at its send time: the batch's `send_after` when it was
  scheduled, else when Sinch accepted it; scheduled messages after the send
  time count as well as earlier ones;
- this campaign's message counts at the recipient's own send time: sent in
  each recipient's local time or held by quiet hours, it may reach Tokyo a
  day before New York (campaigns.compliance.send_times), and the rolling day
  is checked around the time it reaches each of them;
- transactional campaigns neither count nor are capped; a campaign exempted
  by a Compliance user (campaigns.compliance.cap_exemption) is not capped
  but its messages count for the others; a retry of failed recipients
  (`Campaign.parent`) does not count its own original.

The rule is applied by campaigns.authoring.audience (preview, pre-send check
and launch freeze) through `cap_for` and `CapCheck.over`: one query on the
batches near the send time when built, then one query per chunk of members,
on the recipients of that chunk's contact ids in those batches (the
recipient table's (contact, batch) index).
"""

from collections import defaultdict
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.db import connection
from django.db.models.functions import Coalesce
from django.utils import timezone

from campaigns.compliance import send_times as send_times_of
from campaigns.compliance.cap_rules import CapRule, parse_cap
from campaigns.models import Batch, Campaign, Recipient
from contacts.models import Purpose

R = Recipient.Status
# Statuses of a recipient whose message Sinch accepted (FAILED only in an
# accepted batch: a batch Sinch refused has no `submitted_at`).
COUNTED = (R.SUBMITTED, R.QUEUED_ON_CHANNEL, R.DELIVERED, R.READ, R.FAILED)
# Batch ids listed in the per-chunk query, at most (SQLite takes 32,766
# parameters); beyond, the chunk's recipients are filtered here instead.
MAX_LISTED = 20_000
# How far a recipient's own send time may be from the campaign's: a local
# time is at most about a day off, and quiet hours (with a holiday or two)
# hold a recipient for at most a few days.
SPREAD = timedelta(days=4)
KEY_PREFIX = "frequency_cap:"
# Answers (messages' times, send time) remembered at most by `CapCheck`.
MAX_ANSWERS = 50_000
REASON_PREFIX = "frequency cap:"


def configured_rules() -> list[CapRule]:
    """The rules of FREQUENCY_CAP (checked at start-up by config.settings)."""
    return parse_cap(settings.FREQUENCY_CAP)


def is_capped(campaign: Campaign) -> bool:
    """Whether the cap applies to the campaign's members: a marketing
    campaign, not exempt, with the cap on."""
    return (
        campaign.purpose == Purpose.MARKETING
        and campaign.cap_exempt_at is None
        and bool(configured_rules())
    )


def send_time(campaign: Campaign, now: datetime | None = None) -> datetime:
    """The time the cap is checked at: the send time, or now when the
    campaign goes when launched (or its send time has passed)."""
    now = now or timezone.now()
    return max(campaign.send_at or now, now)


def cap_for(campaign: Campaign, now: datetime | None = None) -> "CapCheck | None":
    """The cap the campaign's members are held to, or None (not capped)."""
    if not is_capped(campaign):
        return None
    at = send_time(campaign, now)
    per_recipient = send_times_of.SendTimes(campaign, now)
    if not (campaign.send_in_local_time or per_recipient.quiet):
        per_recipient = None  # everyone at `at`
    return CapCheck(campaign, configured_rules(), at, per_recipient)


class CapCheck:
    """Which members of one campaign a message at `at` would put over a rule.

    Built with one query: the accepted batches of other marketing campaigns
    sent near `at` (a few thousand at most: Sinch takes at most 1000
    recipients a batch), with their send times. `over` then reads only the
    recipients of those batches, by the (contact, batch) index.
    """

    def __init__(
        self,
        campaign: Campaign,
        rules: Sequence[CapRule],
        at: datetime,
        send_times: "send_times_of.SendTimes | None" = None,
    ):
        """`send_times`: each recipient's own send time (None: all at `at`)."""
        self.rules = list(rules)
        self.at = at
        self.send_times = send_times
        reach = max(rule.length for rule in self.rules)
        if send_times is not None:
            reach += SPREAD
        self.since, self.until = at - reach, at + reach
        self.own = _own_campaigns(campaign)
        self.batches: dict[int, datetime] = dict(
            Batch.objects.filter(
                is_test=False,
                submitted_at__isnull=False,
                campaign__purpose=Purpose.MARKETING,
            )
            .exclude(campaign_id__in=self.own)
            .annotate(sent=Coalesce("send_after", "submitted_at"))
            .filter(sent__gt=self.since, sent__lt=self.until)
            .values_list("pk", "sent")
        )
        self.batch_ids = sorted(self.batches)
        self._answers: dict[tuple, CapRule | None] = {}
        self._range_sql: tuple[str, list] | None = None

    @property
    def active(self) -> bool:
        """Whether any other marketing message was sent near `at`."""
        return bool(self.batches)

    def over(
        self,
        contact_ids: Sequence[int],
        where: dict[int, tuple[str | None, str | None]] | None = None,
    ) -> dict[int, CapRule]:
        """{contact id: the first rule a message would break} for the given
        contacts (in any order); one query, none when nothing is near.
        `where`: {contact id: (the contact's time zone, its identity)}, for
        each recipient's own send time."""
        if not self.batches or not contact_ids:
            return {}
        low, high = min(contact_ids), max(contact_ids)
        # A chunk of the walk is a range of ids; a few scattered contacts
        # (the preview) are looked up by id.
        if high - low < 4 * len(contact_ids):
            sql, tail = self._range_statement()
            params = [low, high, *tail]
        else:
            rows = Recipient.objects.filter(
                contact_id__in=list(contact_ids), status__in=COUNTED, is_test=False
            )
            if len(self.batch_ids) <= MAX_LISTED:
                rows = rows.filter(batch_id__in=self.batch_ids)
            # Read as plain tuples: a chunk of a large launch finds thousands,
            # and the ORM's per-row work cost five times the query's.
            query = rows.values_list("contact_id", "batch_id").query
            sql, params = query.sql_with_params()
        with connection.cursor() as cursor:
            cursor.execute(sql, params)
            found_rows = cursor.fetchall()
        times: dict[int, list[datetime]] = defaultdict(list)
        for contact_id, batch_id in found_rows:
            if batch_id in self.batches:
                times[contact_id].append(self.batches[batch_id])
        found = {}
        for contact_id, sent in times.items():
            at = self._time_of(contact_id, where)
            rule = self._broken(tuple(sorted(sent)), at)
            if rule is not None:
                found[contact_id] = rule
        return found

    def _range_statement(self) -> tuple[str, list]:
        """`over`'s query for a range of contact ids (its first two
        parameters), written once per check: the batches listed are the same
        for every chunk of a walk, and compiling their IN list of hundreds
        or thousands of ids each time cost as much as running the query."""
        if self._range_sql is None:
            listed = self.batch_ids if len(self.batch_ids) <= MAX_LISTED else []
            marks = ", ".join(["%s"] * len(COUNTED))
            sql = (
                f"SELECT contact_id, batch_id FROM {Recipient._meta.db_table} "
                "WHERE contact_id >= %s AND contact_id <= %s "
                f"AND status IN ({marks}) AND is_test = %s"
            )
            if listed:
                sql += f" AND batch_id IN ({', '.join(['%s'] * len(listed))})"
            self._range_sql = (sql, [*COUNTED, False, *listed])
        return self._range_sql

    def _broken(self, sent: tuple[datetime, ...], at: datetime) -> CapRule | None:
        """The first rule a message at `at` breaks, given the other messages'
        times (None: none). Memoised: most people got the same batches'
        messages (a campaign's batches go out minutes apart) and share one of
        a few send times, so a million members are a few thousand answers."""
        key = (sent, at)
        if key in self._answers:
            return self._answers[key]
        if len(self._answers) >= MAX_ANSWERS:  # memory stays bounded
            self._answers.clear()
        found = self._answers[key] = next(
            (rule for rule in self.rules if rule.is_broken_by(sent, at)), None
        )
        return found

    def _time_of(self, contact_id: int, where) -> datetime:
        """When this campaign's message reaches the contact."""
        if self.send_times is None or not where or contact_id not in where:
            return self.at
        own = self.send_times.of(*where[contact_id]).at
        return self.at if own is None else max(own, self.at - SPREAD)


def _own_campaigns(campaign: Campaign) -> list[int]:
    """The campaign and the ones it retries (a retry re-sends their message
    to the people it failed for: not a second message)."""
    own = [campaign.pk] if campaign.pk else []
    parent_id = campaign.parent_id
    while parent_id and parent_id not in own:
        own.append(parent_id)
        parent_id = (
            Campaign.objects.filter(pk=parent_id)
            .values_list("parent_id", flat=True)
            .first()
        )
    return own


def is_cap_reason(reason: str) -> bool:
    """Whether an excluded recipient's reason is the frequency cap."""
    return reason.startswith(REASON_PREFIX)


def excluded_count(campaign: Campaign) -> int:
    """The campaign's recipients excluded by the cap at the freeze (in no
    batch, as every excluded one: sought so in the recipient_by_campaign
    index, which holds no status)."""
    return Recipient.objects.filter(
        campaign=campaign,
        batch__isnull=True,
        status=R.EXCLUDED,
        is_test=False,
        reason__startswith=REASON_PREFIX,
    ).count()


def summary(campaign: Campaign, excluded_problems: dict[str, Any]) -> dict[str, Any]:
    """What the pre-send check stores about the cap: its rules in words,
    whether it applies, the exemption, and how many it excluded."""
    rules = configured_rules()
    exempt = None
    if campaign.cap_exempt_at is not None:
        exempt = {
            "by": str(campaign.cap_exempt_by or "a deleted user"),
            "at": campaign.cap_exempt_at.isoformat(),
            "reason": campaign.cap_exempt_reason,
        }
    if campaign.purpose != Purpose.MARKETING:
        state = "not applied: transactional campaigns are not capped"
    elif not rules:
        state = "off (FREQUENCY_CAP is empty)"
    elif exempt:
        state = "not applied: the campaign is exempt"
    else:
        state = "applied"
    return {
        "rules": ", ".join(rule.describe() for rule in rules),
        "applied": state == "applied",
        "state": state,
        "exempt": exempt,
        "excluded": sum(
            p["count"] for k, p in excluded_problems.items() if k.startswith(KEY_PREFIX)
        ),
    }
