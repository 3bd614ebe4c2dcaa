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
import os
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from django.conf import settings
from django.utils import timezone

from campaigns import estimates, sms, suspicious
from campaigns.models import Campaign
from campaigns.rendering import render_for_contact
from contacts.models import ChannelIdentity, ConsentState, Contact, ListMembership
from contacts.phones import InvalidIdentity, normalise_identity
from sinch.channels import Channel
from sinch.placeholders import strings

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

# What rendering and the examples read of a contact.
CONTACT_FIELDS = (
    "first_name",
    "last_name",
    "language",
    "time_zone",
    "attributes",
    "external_id",
    "erased_at",
)

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

    def add(self, contact: Contact, detail: str = "") -> None:
        self.count += 1
        if len(self.examples) < EXAMPLES:
            self.examples.append(
                {"contact_id": contact.pk, "name": str(contact), "detail": detail}
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


def run_presend_check(
    campaign: Campaign, chunk_size: int = CHUNK_SIZE
) -> PresendResult:
    """Check every audience member, store the summary on `campaign`, write the CSV."""
    template = campaign.template
    parameters = list(template.parameters.all())
    values = campaign.campaign_values or {}
    channel = campaign.channel
    consent_field = f"{campaign.purpose.lower()}_consent"
    is_sms = channel == Channel.SMS
    result = PresendResult(max_parts=_max_parts(campaign))
    list_ids = list(campaign.lists.values_list("pk", flat=True))
    seen: set[str] = set()

    path = csv_path(campaign)
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_suffix(".csv.part")
    with open(partial, "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(CSV_HEADER)
        last = 0
        while list_ids:
            ids = list(
                ListMembership.objects.filter(
                    contact_list_id__in=list_ids, contact_id__gt=last
                )
                .order_by("contact_id")
                .values_list("contact_id", flat=True)
                .distinct()[:chunk_size]
            )
            if not ids:
                break
            last = ids[-1]
            contacts = Contact.objects.only(*CONTACT_FIELDS).in_bulk(ids)
            # (identity, consent state) of each member, oldest first.
            identities: dict[int, list[tuple[str, str]]] = {}
            for contact_id, identity, consent in (
                ChannelIdentity.objects.filter(contact_id__in=ids, channel=channel)
                .order_by("contact_id", "id")
                .values_list("contact_id", "identity", consent_field)
            ):
                identities.setdefault(contact_id, []).append((identity, consent))
            for pk in ids:
                row = _check_one(
                    result,
                    contacts[pk],
                    identities.get(pk, []),
                    seen=seen,
                    template=template,
                    parameters=parameters,
                    values=values,
                    channel=channel,
                    is_sms=is_sms,
                )
                writer.writerow(row)
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


def _check_one(
    result: PresendResult,
    contact: Contact,
    identities: list[tuple[str, str]],
    *,
    seen: set[str],
    template,
    parameters,
    values,
    channel: str,
    is_sms: bool,
) -> list[Any]:
    """Classify one member, update `result`, return its CSV row."""
    result.audience += 1
    label = Channel(channel).label

    def exclude(key: str, text: str, identity: str = "", detail: str = ""):
        result.excluded += 1
        result.problem(key, EXCLUDED, text).add(contact, detail)
        return [contact.pk, identity, EXCLUDED, text, "", "", ""]

    def block(key: str, text: str, identity: str = "", detail: str = ""):
        result.blocking += 1
        result.problem(key, BLOCKING, text).add(contact, detail)
        return [contact.pk, identity, BLOCKING, text, "", "", ""]

    if contact.erased_at is not None:
        return exclude(ERASED, "contact erased")
    if not identities:
        return block(NO_IDENTITY, f"no {label} identity")
    # Several identities on the channel: the first recorded one is used.
    identity, consent = identities[0]
    try:
        canonical = normalise_identity(channel, identity)
    except InvalidIdentity as exc:
        return block(
            INVALID_IDENTITY,
            f"invalid {label} identity",
            identity,
            f"{identity}: {exc}",
        )
    if consent == ConsentState.OPTED_OUT:
        return exclude(OPTED_OUT, "opted out", canonical)
    if consent != ConsentState.OPTED_IN:
        return exclude(NO_CONSENT, "no consent record", canonical)
    if canonical in seen:
        return exclude(
            DUPLICATE, "duplicate identity", canonical, f"{canonical} already used"
        )
    seen.add(canonical)

    rendering = render_for_contact(
        template, contact, campaign_values=values, parameters=parameters
    )
    if rendering.missing:
        result.blocking += 1
        for name in rendering.missing:
            result.problem(
                f"missing:{name}",
                BLOCKING,
                f"no value for ${{{name}}} and no default",
            ).add(contact, canonical)
        missing = ", ".join("${" + n + "}" for n in rendering.missing)
        return [contact.pk, canonical, BLOCKING, f"no value for {missing}", "", "", ""]

    for name, value in rendering.parameters.items():
        for reason in suspicious.problems(value):
            result.problem(
                f"suspicious:{name}:{reason}",
                WARNING,
                f"${{{name}}}: {reason}",
            ).add(contact, repr(value))

    text = "\n".join(strings(rendering.rendered))
    reasons: list[str] = []
    encoding, segments = "", ""
    if is_sms:
        info = sms.analyse(text, result.max_parts)
        encoding, segments = info.encoding, info.segments
        result.encodings[info.encoding] += 1
        result.segments[info.segments] += 1
        result.segments_by_region[estimates.region_of(canonical)] += info.segments
        if info.ucs2_chars:
            result.ucs2_chars.update(info.ucs2_chars)
            chars = " ".join(info.ucs2_chars)
            result.problem(UCS2, WARNING, "sent as UCS-2").add(contact, chars)
            reasons.append(f"UCS-2 because of {chars}")
        if info.too_long:
            result.problem(
                TOO_LONG, WARNING, f"more than {result.max_parts} SMS parts"
            ).add(contact, f"{info.segments} parts")
            reasons.append(f"{info.segments} parts, more than {result.max_parts}")
    result.ok += 1
    return [contact.pk, canonical, OK, "; ".join(reasons), encoding, segments, text]


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
    changed = [campaign.updated_at, campaign.template.updated_at]
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
