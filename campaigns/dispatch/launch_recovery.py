"""A launch interrupted by an error or a vanished worker: resumed or failed
visibly, never left LAUNCHING.

The freeze (campaigns.dispatch.freeze) holds a lease on the campaign while
it writes the recipients: `take_lease` when it starts (a fresh launch, or a
lease that ran out), `renew_lease` before each chunk. A second freeze of the
same campaign (a resume queued twice) finds the lease taken and does
nothing; a freeze whose lease was taken over stops at its next chunk.

- **An error** (inline in the web request, or on a worker): `interrupted`.
  Nothing sealed yet, so nothing can have reached Sinch: the campaign goes
  back to DRAFT with the reason shown, and can be launched again. Part of it
  sealed: its lease is released, the reason shown, and the tick resumes it.
- **A vanished worker** (killed, out of memory, a web process restarted
  mid-launch): the lease runs out after LAUNCH_LEASE_S; the periodic tick
  (`resume_stalled_launches`) queues the freeze again, which resumes after
  its last sealed batch. After LAUNCH_MAX_RESUMES resumes the launch is
  failed with the reason (what was frozen before goes on being sent).
"""

import logging
import re
import uuid
from datetime import timedelta

from django.conf import settings
from django.db import transaction
from django.db.models import Q
from django.utils import timezone
from django_q.tasks import async_task

from campaigns import transitions
from campaigns.dispatch import cancellation
from campaigns.models import Batch, Campaign, CampaignCount, Recipient
from campaigns.models.states import FILLING

logger = logging.getLogger(__name__)

Status = Campaign.Status
# An error's text is shown on the campaign page: long digit runs (a phone
# number in a database error, say) are left out.
_DIGITS = re.compile(r"\+?\d[\d ()-]{5,}\d")


class LeaseLost(RuntimeError):
    """Another freeze took over this launch (this one was thought dead)."""


def describe(error: BaseException) -> str:
    """The error in a line, for people: its kind and message, no numbers."""
    text = str(error).strip().splitlines()[0] if str(error).strip() else ""
    text = _DIGITS.sub("…", text)[:300]
    return f"{type(error).__name__}: {text}" if text else type(error).__name__


def _lease_expired(now) -> Q:
    return Q(launch_lease_at__isnull=True) | Q(
        launch_lease_at__lt=now - timedelta(seconds=settings.LAUNCH_LEASE_S)
    )


def take_lease(campaign_id: int) -> str | None:
    """Own the freeze of a LAUNCHING campaign: a token, or None when another
    freeze holds a live lease."""
    now = timezone.now()
    token = uuid.uuid4().hex
    taken = (
        Campaign.objects.filter(pk=campaign_id, status=Status.LAUNCHING)
        .filter(Q(launch_owner="") | _lease_expired(now))
        .update(launch_owner=token, launch_lease_at=now)
    )
    return token if taken else None


def renew_lease(campaign_id: int, token: str) -> None:
    """Still ours: renewed; LeaseLost when another freeze took over."""
    if not Campaign.objects.filter(pk=campaign_id, launch_owner=token).update(
        launch_lease_at=timezone.now()
    ):
        raise LeaseLost(f"campaign {campaign_id}: another worker resumed the launch")


def release_lease(campaign_id: int, token: str) -> None:
    Campaign.objects.filter(pk=campaign_id, launch_owner=token).update(launch_owner="")


def _sealed(campaign_id: int) -> bool:
    """Whether any batch of the campaign was sealed (it may be at Sinch)."""
    return (
        Batch.objects.filter(campaign_id=campaign_id, is_test=False)
        .exclude(not_before=FILLING)
        .exists()
    )


def _forget_frozen(campaign_id: int) -> None:
    """Remove what an interrupted freeze wrote (no batch of it was sealed)."""
    with transaction.atomic():
        Recipient.objects.filter(campaign_id=campaign_id, is_test=False).delete()
        Batch.objects.filter(campaign_id=campaign_id, is_test=False).delete()
        CampaignCount.objects.filter(campaign_id=campaign_id).delete()


def interrupted(campaign_id: int, error: BaseException) -> str:
    """Record a launch that an error stopped; returns what became of it.

    Never raises (the database may be what failed: the lease then runs out
    and the tick takes it from there)."""
    reason = describe(error)
    try:
        campaign = Campaign.objects.get(pk=campaign_id)
        if campaign.status != Status.LAUNCHING:
            return campaign.status
        if not _sealed(campaign_id):
            _forget_frozen(campaign_id)
            transitions.launch_failed(
                campaign,
                f"The launch failed ({reason}). Nothing was sent; the campaign "
                "is a draft again: launch it again.",
                frozen=False,
            )
            return Status.DRAFT
        Campaign.objects.filter(pk=campaign_id, status=Status.LAUNCHING).update(
            status_reason=f"The launch was interrupted ({reason}); it resumes "
            "by itself within a few minutes.",
            launch_owner="",
            launch_lease_at=timezone.now()
            - timedelta(seconds=settings.LAUNCH_LEASE_S + 1),
        )
        return Status.LAUNCHING
    except Exception:
        logger.exception(
            "campaign %s: the interrupted launch was not recorded", campaign_id
        )
        return "unrecorded"


def resume_stalled_launches() -> int:
    """For the tick: resume launches whose freeze lost its worker (lease run
    out), or fail them after LAUNCH_MAX_RESUMES; how many were resumed."""
    now = timezone.now()
    resumed = 0
    stalled = Campaign.objects.filter(status=Status.LAUNCHING).filter(
        _lease_expired(now)
    )
    for campaign in stalled:
        # Compare-and-set on the lease: of two ticks, one resumes it.
        won = Campaign.objects.filter(
            pk=campaign.pk,
            status=Status.LAUNCHING,
            launch_lease_at=campaign.launch_lease_at,
        ).update(
            launch_owner="",
            launch_lease_at=now,
            launch_resumes=campaign.launch_resumes + 1,
        )
        if not won:
            continue
        if campaign.launch_resumes >= settings.LAUNCH_MAX_RESUMES:
            _give_up(campaign)
            continue
        since = timezone.localtime(campaign.launch_lease_at or now)
        note = (
            f"The launch's worker stopped (nothing heard since {since:%H:%M}); "
            f"resumed ({campaign.launch_resumes + 1} of "
            f"{settings.LAUNCH_MAX_RESUMES})."
        )
        if campaign.status_reason.startswith("The launch was interrupted"):
            note = f"{campaign.status_reason} {note}"
        Campaign.objects.filter(pk=campaign.pk).update(status_reason=note[:2000])
        transaction.on_commit(
            lambda pk=campaign.pk: async_task(
                "campaigns.tasks.freeze_recipients",
                pk,
                task_name=f"freeze-{pk}-resume-{uuid.uuid4().hex[:8]}",
            )
        )
        resumed += 1
    return resumed


def _give_up(campaign: Campaign) -> None:
    frozen = _sealed(campaign.pk)
    last = campaign.status_reason or "its worker kept stopping"
    if not frozen:
        _forget_frozen(campaign.pk)
        transitions.launch_failed(
            campaign,
            f"The launch failed after {settings.LAUNCH_MAX_RESUMES} resumes "
            f"({last}). Nothing was sent; the campaign is a draft again.",
            frozen=False,
        )
        return
    if transitions.launch_failed(
        campaign,
        f"The launch failed after {settings.LAUNCH_MAX_RESUMES} resumes "
        f"({last}). Batches already handed to Sinch stay sent; the rest is "
        "not sent. Duplicate the campaign to reach the others.",
        frozen=True,
    ):
        campaign.refresh_from_db()
        cancellation.cancel_unsubmitted(campaign)
