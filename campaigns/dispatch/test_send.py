"""Test send: the campaign's message to its seed list, now, as one real batch.

`plan_test_send` checks the seed list's members with the pre-send check's own
rules (campaigns.authoring.audience): erased, no or invalid identity on the campaign's
channel, not opted in for the campaign's purpose there (an opted-out person
never gets a test either), duplicate identity, a placeholder without a value.
Those are excluded and reported, never sent.

`send_test` records the intent (a Batch with `is_test`, one Recipient row per
member, EXCLUDED ones with their reason) and commits it BEFORE calling Sinch,
then records what Sinch answered: accepted, refused (with Sinch's message), or
uncertain (the answer was lost and Sinch may have the batch: it is never
resent blindly; look it up by its batch_metadata first).

Test batches and recipients carry `is_test=True`: every statistic of the
campaign counts `is_test=False` rows only (campaigns.counters).
"""

import uuid
from collections import Counter
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.db import transaction
from django.db.models import Max
from django.utils import timezone

from campaigns.authoring import audience, channel_rules
from campaigns.dispatch import batch_request
from campaigns.models import Batch, Campaign, Recipient
from contacts.models import AuditEvent, Contact, ContactList, ListMembership
from contacts.services.audit import record_audit
from sinch import client as sinch_client
from sinch import wire
from sinch.channels import Channel
from sinch.errors import SinchError, SinchUncertainOutcomeError

# A test send is one batch: a seed list is a handful of colleagues' phones.
MAX_SEED_LIST = wire.MAX_RECIPIENTS
RATE_WINDOW = timedelta(hours=1)


def max_recipients() -> int:
    """The most members a seed list may have (TEST_SEND_MAX_RECIPIENTS)."""
    return min(settings.TEST_SEND_MAX_RECIPIENTS, MAX_SEED_LIST)


AUDIT_ACTION = AuditEvent.Action.TEST_SEND

SEND, EXCLUDED = "SEND", "EXCLUDED"
ACCEPTED, FAILED, UNCERTAIN = "ACCEPTED", "FAILED", "UNCERTAIN"
REASON_MAX = Recipient._meta.get_field("reason").max_length


class SendTestRefused(ValueError):
    """Nothing was sent; the message says why and what to do (user-facing)."""


class NoSeedList(SendTestRefused):
    pass


class EmptySeedList(SendTestRefused):
    pass


class NotASeedList(SendTestRefused):
    """The campaign's list is not marked as a seed list
    (contacts.services.seed_lists)."""


class TooManyTestSends(SendTestRefused):
    """The user made TEST_SEND_MAX_PER_HOUR test sends in the last hour."""


class SeedListTooLarge(SendTestRefused):
    pass


class NobodySendable(SendTestRefused):
    pass


class ChannelRulesBroken(SendTestRefused):
    """The message cannot be sent on the campaign's channels (a channel
    template elsewhere than its channel, free-form text on WhatsApp)."""


class SentMeanwhile(SendTestRefused):
    """Another test send was made since the page was shown (a double submit)."""


@dataclass(frozen=True)
class Member:
    """A seed list member as checked: sent (SEND) or EXCLUDED with a reason."""

    contact: Contact
    status: str
    identity: str = ""
    reason: str = ""
    parameters: dict[str, str] = field(default_factory=dict)
    text: str = ""  # what the person will see, placeholders filled
    warnings: str = ""  # e.g. "UCS-2 because of ë"
    # [[channel, identity], ...] on the campaign's fallback channels.
    fallbacks: list[list[str]] = field(default_factory=list)

    @property
    def name(self) -> str:
        return str(self.contact)


@dataclass
class SendTestPlan:
    campaign: Campaign
    seed_list: ContactList
    message: dict[str, Any]
    members: list[Member]

    @property
    def sendable(self) -> list[Member]:
        return [m for m in self.members if m.status == SEND]

    @property
    def excluded(self) -> list[Member]:
        return [m for m in self.members if m.status == EXCLUDED]

    @property
    def excluded_by_reason(self) -> dict[str, int]:
        return dict(Counter(m.reason for m in self.excluded).most_common())

    def refusal(self) -> str:
        """Why nothing can be sent ("" when something can)."""
        if self.sendable:
            return ""
        return (
            f"Nobody on the seed list “{self.seed_list}” can receive this test: "
            f"all {len(self.members)} member{_s(len(self.members))} are excluded "
            "(see the reasons). Give them consent and an identity on the "
            f"{Channel(self.campaign.channel).label} channel, or fill in the "
            "missing values."
        )


@dataclass
class SendTestResult:
    batch: Batch
    plan: SendTestPlan
    outcome: str  # ACCEPTED, FAILED or UNCERTAIN
    error: str = ""

    @property
    def ok(self) -> bool:
        return self.outcome == ACCEPTED

    @property
    def sent(self) -> int:
        return len(self.plan.sendable)

    @property
    def message(self) -> str:
        """One sentence for the user."""
        n, seed = self.sent, self.plan.seed_list
        excluded = len(self.plan.excluded)
        skipped = f" {excluded} excluded." if excluded else ""
        if self.outcome == ACCEPTED:
            return (
                f"Test send {self.batch.sequence} accepted by Sinch (batch "
                f"{self.batch.sinch_batch_id}): {n} recipient{_s(n)} of the seed "
                f"list “{seed}”.{skipped}"
            )
        if self.outcome == FAILED:
            return (
                f"Test send {self.batch.sequence} was refused by Sinch; nothing "
                f"was sent. {self.error}"
            )
        return (
            f"Test send {self.batch.sequence}: Sinch's answer was lost, so it may "
            f"or may not have gone out to {n} recipient{_s(n)}. It is recorded as "
            "uncertain; check the phones before sending another. "
            f"({self.error})"
        )


def _s(n: int) -> str:
    return "" if n == 1 else "s"


def campaign_test_batches(campaign: Campaign):
    """The campaign's test batches, newest first."""
    return (
        Batch.objects.filter(campaign=campaign, is_test=True)
        .select_related("requested_by")
        .order_by("-sequence")
    )


def outcome_label(batch: Batch) -> str:
    """A test batch's state in words: one left SUBMITTING with an error is a
    lost answer (see `_uncertain`), not one still being sent."""
    if batch.status == Batch.Status.SUBMITTING and batch.last_error:
        return "Outcome uncertain"
    return batch.get_status_display()


def next_test_sequence(campaign: Campaign) -> int:
    last = Batch.objects.filter(campaign=campaign, is_test=True).aggregate(
        n=Max("sequence")
    )["n"]
    return (last or 0) + 1


def plan_test_send(campaign: Campaign) -> SendTestPlan:
    """Check the seed list; raise SendTestRefused when there is none to check.

    Members that cannot be sent to are in the plan as EXCLUDED; a plan may
    have nobody sendable (see `refusal`).
    """
    seed = campaign.seed_list
    if seed is None:
        raise NoSeedList(
            "This campaign has no seed list: choose one under Audience "
            "(the people who receive test sends), then try again."
        )
    if not seed.is_seed_list:
        raise NotASeedList(
            f"The list “{seed}” is not marked as a seed list, so no test goes to "
            "it: a Compliance user or a Sender can mark it (tick “Seed list” "
            "on the contact list), or choose a seed list under Audience."
        )
    limit = max_recipients()
    ids = list(
        ListMembership.objects.filter(contact_list=seed)
        .order_by("contact_id")
        .values_list("contact_id", flat=True)[: limit + 1]
    )
    if not ids:
        raise EmptySeedList(
            f"The seed list “{seed}” has no members: add the people who should "
            "receive test sends."
        )
    if len(ids) > limit:
        count = ListMembership.objects.filter(contact_list=seed).count()
        raise SeedListTooLarge(
            f"The seed list “{seed}” has {count:,} members; a test send goes to "
            f"at most {limit:,} (TEST_SEND_MAX_RECIPIENTS). Choose a smaller "
            "seed list."
        )

    problems = channel_rules.campaign_problems(campaign)
    if problems:
        raise ChannelRulesBroken(" ".join(problems))

    # The audience rule, one member at a time (as the pre-send check: same
    # order, so of two members sharing an identity the later is out). The
    # frequency cap is left out: a test send reaches the seed list only and
    # never counts as a message.
    checker = audience.MemberChecker(campaign)
    message_plan = checker.plan
    contacts = Contact.objects.in_bulk(ids)
    members = []
    for row in audience.rows_of(campaign, ids, capped=False):
        contact = contacts[row[audience.ID]]
        _, identity, status, reason, *_, text = checker.check(row)
        if status != audience.OK:
            members.append(
                Member(contact, EXCLUDED, identity or "", reason[:REASON_MAX])
            )
            continue
        values, missing = message_plan.values_for(contact)
        if missing:  # the checker found them all: only if the rules diverge
            names = ", ".join("${" + n + "}" for n in missing)
            members.append(Member(contact, EXCLUDED, identity, f"no value for {names}"))
            continue
        members.append(
            Member(
                contact,
                SEND,
                identity,
                parameters=values,
                text=text,
                warnings=reason,
                fallbacks=checker.fallbacks,
            )
        )
    message = message_plan.message
    return SendTestPlan(campaign, seed, message, members)


def send_test(
    campaign: Campaign, user, *, expected_sequence: int | None = None
) -> SendTestResult:
    """Send the campaign's message to its seed list now, as a test batch.

    Raises SendTestRefused (nothing recorded, nothing sent) when there is no
    seed list, it is empty or too large, nobody on it can be sent to, or
    `expected_sequence` (the test number the user was shown) is stale.
    Sinch's refusal or a lost answer is recorded and returned, not raised.
    """
    check_rate(user)
    plan = plan_test_send(campaign)
    if refusal := plan.refusal():
        raise NobodySendable(refusal)
    with transaction.atomic():
        # One test send of a campaign at a time: the sequence stays unique.
        Campaign.objects.select_for_update().filter(pk=campaign.pk).exists()
        sequence = next_test_sequence(campaign)
        if expected_sequence is not None and expected_sequence != sequence:
            raise SentMeanwhile(
                f"Another test send (number {sequence - 1}) was made since this "
                "page was shown; nothing more was sent. Check the list below "
                "before sending again."
            )
        batch = Batch.objects.create(
            campaign=campaign,
            sequence=sequence,
            is_test=True,
            size=len(plan.sendable),
            metadata_key=f"test-{uuid.uuid4().hex}",
            status=Batch.Status.SUBMITTING,
            attempts=1,
            requested_by=user,
        )
        rows = [
            Recipient(
                campaign=campaign,
                batch=batch,
                index=index,
                contact=m.contact,
                is_test=True,
                identity=m.identity,
                fallback_identities=m.fallbacks,
                parameters=m.parameters,
                status=Recipient.Status.PENDING,
            )
            for index, m in enumerate(plan.sendable)
        ]
        rows += [
            Recipient(
                campaign=campaign,
                batch=batch,
                contact=m.contact,
                is_test=True,
                identity=m.identity,
                status=Recipient.Status.EXCLUDED,
                reason=m.reason,
            )
            for m in plan.excluded
        ]
        Recipient.objects.bulk_create(rows)
        request = batch_request.build_batch_request(
            campaign, batch, rows, message=plan.message
        )
    # Committed: the intent is on record before Sinch hears of it.

    try:
        client = sinch_client.get_sinch_client()
    except Exception as exc:  # misconfigured: the request never left
        _audit(_failed(batch, plan, f"no Sinch client: {exc}"), user)
        raise
    try:
        response = client.send_batch(request)
    except SinchUncertainOutcomeError as exc:
        result = _uncertain(batch, plan, str(exc))
    except SinchError as exc:
        result = _failed(batch, plan, str(exc))
    except Exception as exc:
        # A bug after the request may have left: not known to be unsent.
        _audit(_uncertain(batch, plan, f"unexpected error: {exc!r}"), user)
        raise
    else:
        result = _accepted(batch, plan, response)
    _audit(result, user)
    return result


def recent_test_sends(user, now=None) -> list:
    """When `user`'s test sends of the last hour were made, oldest first."""
    since = (now or timezone.now()) - RATE_WINDOW
    return list(
        Batch.objects.filter(is_test=True, requested_by=user, created_at__gt=since)
        .order_by("created_at")
        .values_list("created_at", flat=True)
    )


def check_rate(user) -> None:
    """Refuse (and record the refusal) past TEST_SEND_MAX_PER_HOUR per user."""
    limit = settings.TEST_SEND_MAX_PER_HOUR
    recent = recent_test_sends(user)
    if len(recent) < limit:
        return
    free_at = timezone.localtime(recent[-limit] + RATE_WINDOW)
    message = (
        f"You made {len(recent)} test send{_s(len(recent))} in the last hour; "
        f"the limit is {limit} per hour (TEST_SEND_MAX_PER_HOUR). Nothing was "
        f"sent. The next test send is possible at {free_at:%H:%M}."
    )
    record_audit(
        actor=user,
        action=AUDIT_ACTION,
        target_type="user",
        target_id=getattr(user, "pk", ""),
        summary=f"Test send refused: {limit} per hour reached",
        details={"test": True, "refused": "rate limit", "limit": limit},
    )
    raise TooManyTestSends(message)


def _accepted(batch: Batch, plan: SendTestPlan, response) -> SendTestResult:
    with transaction.atomic():
        batch.status = Batch.Status.ACCEPTED
        batch.sinch_batch_id = response.batch_id
        batch.send_after = response.send_after
        batch.submitted_at = timezone.now()
        batch.last_error = ""
        batch.save(
            update_fields=[
                "status",
                "sinch_batch_id",
                "send_after",
                "submitted_at",
                "last_error",
                "updated_at",
            ]
        )
        batch.recipients.filter(status=Recipient.Status.PENDING).update(
            status=Recipient.Status.SUBMITTED, updated_at=timezone.now()
        )
    return SendTestResult(batch, plan, ACCEPTED)


def _failed(batch: Batch, plan: SendTestPlan, error: str) -> SendTestResult:
    with transaction.atomic():
        batch.status = Batch.Status.FAILED
        batch.last_error = f"Refused by Sinch: {error}"
        batch.save(update_fields=["status", "last_error", "updated_at"])
        batch.recipients.filter(status=Recipient.Status.PENDING).update(
            status=Recipient.Status.FAILED,
            reason="batch refused by Sinch: not sent",
            updated_at=timezone.now(),
        )
    return SendTestResult(batch, plan, FAILED, error)


def _uncertain(batch: Batch, plan: SendTestPlan, error: str) -> SendTestResult:
    """Keep the batch SUBMITTING (it may be at Sinch) and say so plainly."""
    with transaction.atomic():
        batch.last_error = (
            f"Outcome uncertain: {error}. Sinch may have accepted this batch: "
            "look it up by batch_metadata "
            f"{batch_request.BATCH_KEY}={batch.metadata_key} "
            "before sending it again."
        )
        batch.save(update_fields=["last_error", "updated_at"])
        batch.recipients.filter(status=Recipient.Status.PENDING).update(
            reason="outcome uncertain: may have been sent", updated_at=timezone.now()
        )
    return SendTestResult(batch, plan, UNCERTAIN, error)


def _audit(result: SendTestResult, user) -> None:
    batch, plan = result.batch, result.plan
    outcome = {
        ACCEPTED: f"accepted by Sinch as {batch.sinch_batch_id}",
        FAILED: "refused by Sinch",
        UNCERTAIN: "outcome uncertain",
    }[result.outcome]
    record_audit(
        actor=user,
        action=AUDIT_ACTION,
        target_type="campaign",
        target_id=plan.campaign.pk,
        summary=(
            f"Test send {batch.sequence} of campaign {plan.campaign} to seed list "
            f"{plan.seed_list}: {result.sent} sent, {len(plan.excluded)} excluded, "
            f"{outcome}"
        ),
        details={
            "test": True,
            "batch": batch.pk,
            "sequence": batch.sequence,
            "metadata_key": batch.metadata_key,
            "seed_list": plan.seed_list.pk,
            "sent": result.sent,
            "excluded": len(plan.excluded),
            "excluded_by_reason": plan.excluded_by_reason,
            "outcome": result.outcome,
            "sinch_batch_id": batch.sinch_batch_id,
            "error": result.error,
        },
    )
