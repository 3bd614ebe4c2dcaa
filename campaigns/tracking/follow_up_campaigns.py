"""Retry failed recipients: a follow-up draft for those whose delivery failed.

`failed_recipients` counts a finished campaign's failed recipients (test sends
never count) by failure class and reason code (campaigns.tracking.failures), and how
many would be left out. `create_retry_campaign` makes the follow-up: a new
DRAFT campaign with the same message settings, sent "when launched", whose
audience is a new contact list holding each failed person once, minus those
erased or opted out since. It goes through the normal pre-send check and
launch, which check consent again.

Only transient failures are retried unless a person explicitly includes the
permanent ones (`include_permanent=True`); nothing here runs on its own.
"""

from dataclasses import dataclass, field

from django.db import transaction
from django.db.models import Count
from django.utils import timezone

from campaigns.authoring.rendering import MessagePlan
from campaigns.models import Campaign, Recipient
from campaigns.models.states import FINISHED
from campaigns.tracking import failures
from campaigns.tracking.failures import PERMANENT, TRANSIENT, FailureKind
from contacts.models import (
    AuditEvent,
    ChannelIdentity,
    ConsentState,
    Contact,
    ContactList,
    ListMembership,
)
from contacts.services.audit import record_audit

Status = Campaign.Status
# A campaign is finished once nothing more will be submitted for it.
CHUNK = 1000
REASONS_SHOWN = 5


class RetryRefused(ValueError):
    """No follow-up can be made; the message says why, for the user."""


@dataclass
class FailureGroup:
    """The failed recipients of one reason code."""

    kind: FailureKind
    recipients: int
    # For a failed batch (no code): Sinch's messages, most frequent first.
    reasons: list[tuple[str, int]] = field(default_factory=list)


@dataclass
class FailedRecipients:
    """Failed recipients of the chosen classes, and who a retry would reach."""

    groups: list[FailureGroup]
    by_class: dict[str, int]  # failed recipients per class
    people: int  # distinct contacts among them
    erased: int  # ... since erased: left out
    opted_out: int  # ... opted out since (not erased): left out

    @property
    def total(self) -> int:
        return sum(self.by_class.values())

    @property
    def retryable(self) -> int:
        """How many people a follow-up would hold."""
        return self.people - self.erased - self.opted_out

    def groups_of(self, failure_class: str) -> list[FailureGroup]:
        return [g for g in self.groups if g.kind.failure_class == failure_class]

    @property
    def transient_groups(self) -> list[FailureGroup]:
        return self.groups_of(TRANSIENT)

    @property
    def permanent_groups(self) -> list[FailureGroup]:
        return self.groups_of(PERMANENT)


def classes_for(include_permanent: bool) -> tuple[str, ...]:
    return (TRANSIENT, PERMANENT) if include_permanent else (TRANSIENT,)


def refusal(campaign: Campaign) -> str:
    """Why no follow-up can be made of the campaign now ("" when one can)."""
    if campaign.status not in FINISHED:
        return (
            f"The campaign is {campaign.get_status_display().lower()}: failed "
            "recipients can be retried once it has finished (submitted, "
            "completed, cancelled or failed)."
        )
    return ""


def _failed(campaign: Campaign, classes):
    return Recipient.objects.filter(
        campaign=campaign, is_test=False, status=Recipient.Status.FAILED
    ).filter(failures.recipient_filter(classes))


def _opted_out_contacts(campaign: Campaign):
    """Contacts with an identity on the campaign's channel opted out for its purpose."""
    return ChannelIdentity.objects.filter(
        channel=campaign.channel,
        **{f"{campaign.purpose.lower()}_consent": ConsentState.OPTED_OUT},
    ).values("contact_id")


def _people(campaign: Campaign, classes):
    return Contact.objects.filter(
        pk__in=_failed(campaign, classes)
        .filter(contact__isnull=False)
        .values("contact_id")
    )


def _retry_audience(campaign: Campaign, classes):
    """The contacts a follow-up holds: failed once, not erased, not opted out."""
    return (
        _people(campaign, classes)
        .filter(erased_at__isnull=True)
        .exclude(pk__in=_opted_out_contacts(campaign))
    )


def failed_recipients(
    campaign: Campaign, classes=(TRANSIENT, PERMANENT)
) -> FailedRecipients:
    """The campaign's failed recipients of `classes`, by class and code."""
    failed = _failed(campaign, classes)
    groups: dict[str, FailureGroup] = {}
    for row in failed.values("failure_code").annotate(n=Count("pk")):
        kind = failures.describe(row["failure_code"])
        group = groups.setdefault(kind.code, FailureGroup(kind, 0))
        group.recipients += row["n"]
    batch = groups.get(failures.BATCH_FAILED)
    if batch is not None:
        reasons = (
            failed.filter(failure_code="")
            .values("reason")
            .annotate(n=Count("pk"))
            .order_by("-n", "reason")
        )
        batch.reasons = [(r["reason"], r["n"]) for r in reasons[:REASONS_SHOWN]]
    ordered = sorted(
        groups.values(),
        key=lambda g: (not g.kind.is_transient, -g.recipients, g.kind.code),
    )
    by_class = {c: 0 for c in classes}
    for group in ordered:
        by_class[group.kind.failure_class] += group.recipients
    people = _people(campaign, classes)
    return FailedRecipients(
        groups=ordered,
        by_class=by_class,
        people=people.count(),
        erased=people.filter(erased_at__isnull=False).count(),
        opted_out=people.filter(erased_at__isnull=True)
        .filter(pk__in=_opted_out_contacts(campaign))
        .count(),
    )


def template_changed_since_launch(campaign: Campaign) -> bool:
    """Whether the template now differs from the message the campaign sent
    (the compliance footer is the settings' part, not the template's)."""
    sent = campaign.message_snapshot
    if not sent:
        return False
    now = MessagePlan.from_template(
        campaign.template, campaign.campaign_values
    ).snapshot()
    ignored = ("version", "footer")
    return {k: v for k, v in now.items() if k not in ignored} != {
        k: v for k, v in sent.items() if k not in ignored
    }


def create_retry_campaign(
    campaign: Campaign, user, *, include_permanent: bool = False
) -> Campaign:
    """A follow-up DRAFT for the campaign's failed recipients; audited.

    Transient failures only, unless `include_permanent` (a person's explicit
    choice). Raises RetryRefused when the campaign has not finished or no one
    of the chosen classes can be retried.
    """
    classes = classes_for(include_permanent)
    what = "failures" if include_permanent else "transient failures"
    with transaction.atomic():
        # One follow-up at a time per campaign: numbers and list names stay unique.
        campaign = (
            Campaign.objects.select_for_update()
            .select_related("template")
            .get(pk=campaign.pk)
        )
        problem = refusal(campaign)
        if problem:
            raise RetryRefused(problem)
        found = failed_recipients(campaign, classes)
        if not found.total:
            raise RetryRefused(
                f"No recipient of this campaign failed with {what}"
                + ("" if include_permanent else " (permanent failures not included)")
                + ": there is nobody to retry."
            )
        if not found.retryable:
            one = found.people == 1
            who = "The one person" if one else f"All {found.people:,} people"
            raise RetryRefused(
                f"{who} whose message failed with {what} "
                f"{'has' if one else 'have'} since opted out "
                f"({found.opted_out:,}) or been erased "
                f"({found.erased:,}): there is nobody to retry."
            )
        number = campaign.retries.count() + 1
        suffix = f" — retry {number}"
        follow_up = Campaign.objects.create(
            name=campaign.name[: 200 - len(suffix)] + suffix,
            template=campaign.template,
            channel=campaign.channel,
            channel_priority_order=campaign.channel_priority_order,
            purpose=campaign.purpose,
            send_at=None,
            send_time_zone=campaign.send_time_zone,
            ttl_seconds=campaign.ttl_seconds,
            sms_sender=campaign.sms_sender,
            channel_properties=campaign.channel_properties,
            campaign_values=campaign.campaign_values,
            seed_list=campaign.seed_list,
            created_by=user,
            parent=campaign,
        )
        audience = _new_list(campaign, follow_up, what, user)
        added = _fill(audience, _retry_audience(campaign, classes))
        follow_up.lists.add(audience)
        record_audit(
            actor=user,
            action=AuditEvent.Action.RETRY,
            target_type="campaign",
            target_id=campaign.pk,
            summary=f"Created follow-up campaign {follow_up} (#{follow_up.pk}) "
            f"for {added:,} people whose message failed with {what} in "
            f"campaign {campaign}"
            + (" (permanent failures included)" if include_permanent else ""),
            details={
                "follow_up": follow_up.pk,
                "list": audience.pk,
                "classes": list(classes),
                "include_permanent": include_permanent,
                "people": added,
                "failed": {g.kind.code: g.recipients for g in found.groups},
                "left_out_erased": found.erased,
                "left_out_opted_out": found.opted_out,
            },
        )
    return follow_up


def _new_list(campaign: Campaign, follow_up: Campaign, what: str, user) -> ContactList:
    name = f"Retry of campaign #{campaign.pk} (follow-up #{follow_up.pk}): "
    name += campaign.name
    return ContactList.objects.create(
        name=name[:200],
        description=f"People whose message failed with {what} in campaign "
        f"{campaign} (#{campaign.pk}), made by {user} on "
        f"{timezone.now():%Y-%m-%d %H:%M} UTC for follow-up campaign "
        f"{follow_up} (#{follow_up.pk}).",
    )


def _fill(contact_list: ContactList, contacts) -> int:
    """Add `contacts` to the new, empty list, a chunk at a time."""
    added = 0
    ids = contacts.order_by("pk").values_list("pk", flat=True)
    chunk: list[int] = []
    for pk in ids.iterator(chunk_size=CHUNK):
        chunk.append(pk)
        if len(chunk) == CHUNK:
            added += _add(contact_list, chunk)
            chunk = []
    return added + _add(contact_list, chunk)


def _add(contact_list: ContactList, ids: list[int]) -> int:
    ListMembership.objects.bulk_create(
        [
            ListMembership(
                contact_list=contact_list,
                contact_id=pk,
                source=ListMembership.Source.ADMIN,
            )
            for pk in ids
        ]
    )
    return len(ids)
