"""What the home page shows each role: plain reads, each bounded.

Campaign people (Viewer, Marketing, Sender): running campaigns with live
figures (campaigns.tracking.dashboard.figures, two small queries each, for
at most RUNNING_SHOWN campaigns), drafts waiting for a pre-send check or an
approval, recent results with the delivered share (one grouped query over
the kept counts), replies waiting for review. Compliance: recent imports,
opt-outs, erasures and frequency-cap exemptions. Operators: the health
summary (campaigns.tracking.health). Nothing here counts recipients row by
row: every list is capped and read from indexed or kept figures.
"""

from dataclasses import dataclass

from django.db.models import Exists, OuterRef, Q, Sum
from django.utils import timezone

from campaigns.models import Campaign, CampaignCount, LaunchApproval, Recipient
from campaigns.models.states import ACTIVE
from campaigns.tracking import dashboard, health
from campaigns.tracking.reply_review import replies_needing_review
from config.lib.redaction import mask_number
from contacts import roles
from contacts.models import AuditEvent, ConsentEvent, ImportJob, Purpose

S = Campaign.Status
R = Recipient.Status
RUNNING_SHOWN = 8
DRAFTS_SHOWN = 8
RESULTS_SHOWN = 6
COMPLIANCE_SHOWN = 6
CAMPAIGN_ROLES = {roles.VIEWER, roles.MARKETING, roles.SENDER}
# Sending now: launched, and not waiting for a send time in the future.
RUNNING = (S.LAUNCHING, S.SUBMITTING, S.SUBMITTED)


@dataclass(frozen=True)
class Sections:
    """Which parts of the home page a user sees."""

    campaigns: bool
    compliance: bool
    operations: bool
    new_campaign: bool
    approvals: bool
    replies: bool
    roles: tuple[str, ...]


def sections_for(user) -> Sections:
    names = tuple(
        sorted(
            set(user.groups.values_list("name", flat=True)) & set(roles.ROLES),
            key=roles.ROLES.index,
        )
    )
    everything = user.is_superuser
    return Sections(
        campaigns=everything or bool(CAMPAIGN_ROLES & set(names)),
        compliance=everything or roles.COMPLIANCE in names,
        operations=health.can_view(user),
        new_campaign=user.has_perm("campaigns.add_campaign"),
        approvals=user.has_perm("campaigns.launch_campaign"),
        replies=user.has_perm("campaigns.view_inboundmessage"),
        roles=names,
    )


# --- campaign people -----------------------------------------------------------


def running_campaigns(now=None) -> list[Campaign]:
    """Campaigns sending now (scheduled ones whose send time has come too)."""
    now = now or timezone.now()
    due = Q(status__in=RUNNING) | Q(
        status=S.SCHEDULED, send_at__lte=now
    )  # scheduled: its batches go out meanwhile
    return list(
        Campaign.objects.filter(due)
        .order_by("-launched_at", "-pk")
        .only("pk", "name", "status", "channel", "launched_at", "send_at")[
            :RUNNING_SHOWN
        ]
    )


def progress(campaigns: list[Campaign]) -> list[dict]:
    """Live figures of each campaign, for the page and its JSON endpoint."""
    rows = []
    for c in campaigns:
        f = dashboard.figures(c)
        rows.append(
            {
                "id": c.pk,
                "name": c.name,
                "status": c.get_status_display(),
                "percent": f["percent_complete"],
                "delivered": f["counts"]["delivered"],
                "failed": f["counts"]["failed"],
                "expected": f["expected"],
                "complete": f["complete"],
                "segments": [
                    {"key": s["key"], "label": s["label"], "width": s["width"]}
                    for s in f["progress"]
                    if s["count"]
                ],
                "summary": f"{f['counts']['delivered']:,} delivered, "
                f"{f['counts']['failed']:,} failed of {f['expected']:,}",
            }
        )
    return rows


def waiting_drafts() -> list[dict]:
    """Drafts with a send decision pending: a pre-send check to run (never
    run, or stale), an approval to give, or ready to launch."""
    waiting = LaunchApproval.objects.filter(
        campaign=OuterRef("pk"),
        withdrawn_at__isnull=True,
        decision=LaunchApproval.Decision.PENDING,
    )
    drafts = (
        Campaign.objects.filter(status=S.DRAFT)
        .annotate(awaiting=Exists(waiting))
        .select_related("template", "created_by")
        .only(
            "pk",
            "name",
            "updated_at",
            "presend_at",
            "presend_state",
            "created_by__username",
            "template__updated_at",
            "template__name",
        )
        .order_by("-updated_at", "-pk")[:DRAFTS_SHOWN]
    )
    rows = []
    for c in drafts:
        if c.awaiting:
            state, text = "approval", "waiting for a second Sender's approval"
        elif c.presend_state in (
            Campaign.PresendState.QUEUED,
            Campaign.PresendState.RUNNING,
        ):
            state, text = "running", "pre-send check running"
        elif c.presend_at is None:
            state, text = "check", "pre-send check not run yet"
        elif max(c.updated_at, c.template.updated_at) > c.presend_at:
            state, text = "check", "changed since its pre-send check: run it again"
        else:
            state, text = "ready", "pre-send check done: ready to launch"
        rows.append({"campaign": c, "state": state, "text": text})
    return rows


def recent_results() -> list[dict]:
    """The latest finished campaigns with their delivered share."""
    finished = list(
        Campaign.objects.filter(status__in=(S.COMPLETED, S.CANCELLED, S.FAILED))
        .order_by("-updated_at", "-pk")
        .only("pk", "name", "status", "updated_at")[:RESULTS_SHOWN]
    )
    counts: dict[int, dict[str, int]] = {c.pk: {} for c in finished}
    for row in (
        CampaignCount.objects.filter(campaign_id__in=list(counts))
        .values("campaign_id", "status")
        .annotate(n=Sum("count"))
    ):
        counts[row["campaign_id"]][row["status"]] = row["n"]
    rows = []
    for c in finished:
        kept = counts[c.pk]
        delivered = kept.get(R.DELIVERED, 0) + kept.get(R.READ, 0)
        sent = delivered + kept.get(R.FAILED, 0)
        rows.append(
            {
                "campaign": c,
                "delivered": delivered,
                "sent": sent,
                "percent": round(100 * delivered / sent) if sent else None,
            }
        )
    return rows


def launch_requests() -> list[LaunchApproval]:
    return list(
        LaunchApproval.objects.filter(
            withdrawn_at__isnull=True,
            decision=LaunchApproval.Decision.PENDING,
            campaign__status=S.DRAFT,
        )
        .select_related("campaign", "requested_by")
        .order_by("requested_at")[:DRAFTS_SHOWN]
    )


def replies_to_review() -> int:
    return replies_needing_review()


def counts_by_status() -> dict[str, int]:
    """Campaigns launched and not finished, for the headline figures."""
    return {
        "active": Campaign.objects.filter(status__in=ACTIVE).count(),
        "drafts": Campaign.objects.filter(status=S.DRAFT).count(),
    }


# --- compliance ----------------------------------------------------------------


def recent_imports() -> list[ImportJob]:
    return list(
        ImportJob.objects.select_related("target_list", "created_by")
        .defer("headers", "mapping", "sample_errors")
        .order_by("-created_at", "-pk")[:COMPLIANCE_SHOWN]
    )


def recent_opt_outs() -> list[dict]:
    """The latest opt-outs from the ledger; numbers masked."""
    events = (
        ConsentEvent.objects.filter(kind=ConsentEvent.Kind.OPT_OUT)
        .select_related("identity")
        .only(
            "pk",
            "channel",
            "purpose",
            "source",
            "occurred_at",
            "actor_label",
            "identity__identity",
            "identity__contact_id",
        )
        .order_by("-occurred_at", "-pk")[:COMPLIANCE_SHOWN]
    )
    return [
        {
            "event": e,
            "who": mask_number(e.identity.identity) if e.identity_id else "",
            "contact_id": e.identity.contact_id if e.identity_id else None,
        }
        for e in events
    ]


def recent_erasures() -> list[AuditEvent]:
    return list(
        AuditEvent.objects.filter(action=AuditEvent.Action.ERASURE).order_by(
            "-at", "-pk"
        )[:COMPLIANCE_SHOWN]
    )


def cap_exemptions() -> list[dict]:
    """Marketing drafts where the frequency cap is a pending decision: the
    pre-send check left people out for it, or an exemption is in force and
    the launch has not happened yet."""
    drafts = (
        Campaign.objects.filter(status=S.DRAFT, purpose=Purpose.MARKETING)
        .filter(
            Q(cap_exempt_at__isnull=False) | Q(presend__frequency_cap__excluded__gt=0)
        )
        .select_related("cap_exempt_by")
        .only(
            "pk",
            "name",
            "cap_exempt_at",
            "cap_exempt_reason",
            "cap_exempt_by__username",
        )
        .order_by("-updated_at", "-pk")[:COMPLIANCE_SHOWN]
    )
    excluded = dict(
        Campaign.objects.filter(pk__in=[c.pk for c in drafts]).values_list(
            "pk", "presend__frequency_cap__excluded"
        )
    )
    return [{"campaign": c, "excluded": excluded.get(c.pk) or 0} for c in drafts]


# --- operators -----------------------------------------------------------------


def health_summary() -> dict:
    checks = health.checks()
    worst = next(
        (
            level
            for level in (health.BAD, health.WARN)
            if any(c.level == level for c in checks)
        ),
        health.OK,
    )
    return {
        "worst": worst,
        "problems": [c for c in checks if c.level in (health.BAD, health.WARN)],
        "checks": checks,
    }
