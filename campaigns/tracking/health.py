"""The operator health page's facts: is the machinery working?

Queue depth and oldest waiting task (django-q2's broker: ORM or Redis), the
last Sinch callback, callbacks waiting to be processed, orphans, batches
stuck in an uncertain state or in a submission past its lease, cancels Sinch
has not confirmed (or not in time, see campaigns.dispatch.late_optouts), Sinch's last
refusal of our credentials (sinch.models.AuthFailure), campaigns whose
receipts stopped arriving, failed background tasks, and whether the product
talks to the simulator or to Sinch. Every figure is one indexed or capped
query; nothing here contacts Sinch.
"""

from dataclasses import dataclass, field
from datetime import datetime, timedelta

from django.conf import settings
from django.db.models import Min
from django.utils import timezone

from campaigns.dispatch import cancellation
from campaigns.models import Batch, Campaign, WebhookEvent
from campaigns.models.states import CLAIMABLE
from sinch.config import sinch_settings

OK, WARN, BAD, INFO = "ok", "warn", "bad", "info"
COUNT_CAP = 100_000
LISTED = 20
QUEUE_WARN = timedelta(minutes=5)
QUEUE_BAD = timedelta(minutes=30)
INBOX_WARN = timedelta(minutes=1)
INBOX_BAD = timedelta(minutes=10)
TOKEN_BAD = timedelta(hours=1)
TOKEN_WARN = timedelta(hours=24)
# The permission (besides superusers) that opens the page: given by hand to
# operators; no role holds it.
PERMISSION = "django_q.view_ormq"


@dataclass
class Check:
    key: str
    label: str
    value: str
    level: str = OK
    detail: str = ""
    rows: list = field(default_factory=list)


def can_view(user) -> bool:
    return user.is_active and (user.is_superuser or user.has_perm(PERMISSION))


def _capped(queryset) -> tuple[int, str]:
    n = queryset.order_by()[: COUNT_CAP + 1].count()
    return n, (f"{COUNT_CAP:,}+" if n > COUNT_CAP else f"{n:,}")


def ago(then: datetime | None, now: datetime) -> str:
    """'3 minutes ago' style, for an instant in the past."""
    if then is None:
        return "never"
    seconds = int((now - then).total_seconds())
    if seconds < 2:
        return "just now"
    for size, unit in ((86400, "day"), (3600, "hour"), (60, "minute")):
        if seconds >= size:
            n = seconds // size
            return f"{n} {unit}{'s' if n != 1 else ''} ago"
    return f"{seconds} second{'s' if seconds != 1 else ''} ago"


def _stamp(then: datetime | None, now: datetime) -> str:
    if then is None:
        return ""
    return f"{timezone.localtime(then):%Y-%m-%d %H:%M:%S %Z} ({ago(then, now)})"


# --- the queue ----------------------------------------------------------------


def queue_facts(broker=None, now: datetime | None = None) -> dict:
    """Tasks waiting in the broker, the oldest one's enqueue time, and the kind."""
    from django_q.brokers import get_broker
    from django_q.brokers.orm import ORM
    from django_q.models import OrmQ
    from django_q.signing import SignedPackage

    now = now or timezone.now()
    broker = broker or get_broker()
    if isinstance(broker, ORM):
        waiting = OrmQ.objects.filter(key=broker.list_key, lock__lte=now)
        oldest = waiting.aggregate(at=Min("lock"))["at"]
        return {
            "kind": "database (django-q2 ORM broker)",
            "size": waiting.count(),
            "running": OrmQ.objects.filter(key=broker.list_key, lock__gt=now).count(),
            "oldest": oldest,
        }
    size = broker.queue_size() or 0
    oldest = None
    connection = getattr(broker, "connection", None)
    if size and connection is not None and hasattr(connection, "lindex"):
        raw = connection.lindex(broker.list_key, 0)
        try:
            oldest = SignedPackage.loads(raw).get("started") if raw else None
        except Exception:
            oldest = None
    return {"kind": "Redis", "size": size, "running": None, "oldest": oldest}


def queue_check(now: datetime, broker=None) -> Check:
    try:
        facts = queue_facts(broker, now)
    except Exception as exc:
        return Check(
            "queue",
            "Task queue",
            "unreachable",
            BAD,
            f"The task broker could not be read ({type(exc).__name__}): no "
            "background work (sending, receipts, reconciliation) is picked up.",
        )
    age = now - facts["oldest"] if facts["oldest"] else timedelta(0)
    level = BAD if age > QUEUE_BAD else WARN if age > QUEUE_WARN else OK
    value = f"{facts['size']:,} waiting"
    if facts["running"] is not None:
        value += f", {facts['running']:,} being run"
    detail = f"Broker: {facts['kind']}. "
    if facts["oldest"]:
        detail += f"Oldest waiting task queued {_stamp(facts['oldest'], now)}."
        if level != OK:
            detail += " Are the workers (manage.py qcluster) running?"
    else:
        detail += "Nothing waiting."
    return Check("queue", "Task queue", value, level, detail)


def task_failure_check(now: datetime) -> Check:
    from django_q.models import Failure

    since = now - timedelta(hours=24)
    recent = Failure.objects.filter(stopped__gte=since)
    n, text = _capped(recent)
    last = recent.order_by("-stopped").values("name", "func", "stopped").first()
    detail = "No background task failed in the last 24 hours."
    if last:
        detail = (
            f"Last: {last['func']} ({last['name']}) at {_stamp(last['stopped'], now)}."
        )
    return Check("tasks", "Failed tasks (24 h)", text, WARN if n else OK, detail)


# --- Sinch callbacks -----------------------------------------------------------


def webhook_checks(now: datetime) -> list[Check]:
    events = WebhookEvent.objects
    last = events.order_by("-received_at").values_list("received_at", flat=True)[:1]
    last = last[0] if last else None
    stalled = list(
        Campaign.objects.exclude(receipts_stalled="")
        .order_by("-last_receipt_at")
        .values("pk", "name", "receipts_stalled", "last_receipt_at")[:LISTED]
    )
    checks = [
        Check(
            "last_webhook",
            "Last Sinch callback",
            ago(last, now),
            WARN if stalled else (INFO if last is None else OK),
            (
                f"Received {_stamp(last, now)}."
                if last
                else "No callback has been received yet."
            )
            + (
                f" {len(stalled)} campaign{'s' if len(stalled) != 1 else ''} "
                "stopped receiving delivery reports (below)."
                if stalled
                else ""
            ),
            rows=[
                {
                    "pk": c["pk"],
                    "name": c["name"],
                    "text": c["receipts_stalled"],
                    "last": _stamp(c["last_receipt_at"], now) or "no report yet",
                }
                for c in stalled
            ],
        )
    ]
    new = events.filter(state=WebhookEvent.State.NEW)
    n_new, new_text = _capped(new)
    oldest_new = (
        new.order_by("id").values_list("received_at", flat=True).first()
        if n_new
        else None
    )
    age = now - oldest_new if oldest_new else timedelta(0)
    checks.append(
        Check(
            "inbox",
            "Callbacks waiting to be processed",
            new_text,
            BAD if age > INBOX_BAD else WARN if age > INBOX_WARN else OK,
            f"Oldest received {_stamp(oldest_new, now)}."
            if oldest_new
            else "Every stored callback has been processed.",
        )
    )
    n_orphans, orphan_text = _capped(events.filter(state=WebhookEvent.State.ORPHAN))
    n_failed, failed_text = _capped(events.filter(state=WebhookEvent.State.FAILED))
    checks.append(
        Check(
            "orphans",
            "Orphan callbacks",
            orphan_text,
            WARN if n_orphans else OK,
            "Callbacks about messages or batches this product does not know; "
            "reconciliation retries them for a day."
            + (
                f" {failed_text} callback{'s' if n_failed != 1 else ''} could "
                "not be processed (see their error)."
                if n_failed
                else ""
            ),
        )
    )
    if n_failed:
        checks[-1].level = BAD
    checks.append(shape_check(events, now))
    return checks


def shape_check(events, now: datetime) -> Check:
    """Callbacks in a shape the product does not know (an unknown `batch_*`
    key), and processing reports whose identity names someone other than the
    recipient at that position: kept, never applied."""
    unknown = events.filter(state=WebhookEvent.State.UNKNOWN)
    mismatch = events.filter(state=WebhookEvent.State.MISMATCH)
    n_unknown, unknown_text = _capped(unknown)
    n_mismatch, mismatch_text = _capped(mismatch)
    latest = list(
        (unknown | mismatch)
        .order_by("-id")
        .values("pk", "kind", "state", "error", "received_at")[:LISTED]
    )
    return Check(
        "callback_shapes",
        "Callbacks not understood",
        f"{unknown_text} of an unknown kind, {mismatch_text} naming someone else",
        WARN if n_unknown or n_mismatch else OK,
        "Kept as received and not applied. An unknown batch callback key means "
        "Sinch sends a shape this product does not read yet: add the key to "
        "sinch/wire.py (BATCH_STATUS_UPDATE_KEYS or BATCH_PROCESSING_REPORT_KEYS) "
        "and run `manage.py reprocess_callbacks`. A processing report naming "
        "someone else means the position Sinch reports does not match the batch "
        "as sent: check those recipients at Sinch; `manage.py reprocess_callbacks "
        "--state MISMATCH` tries them again (they are never applied to someone "
        "they do not name).",
        rows=[
            {
                "pk": e["pk"],
                "kind": e["kind"],
                "state": e["state"],
                "error": e["error"],
                "since": _stamp(e["received_at"], now),
            }
            for e in latest
        ],
    )


# --- batches ------------------------------------------------------------------


def batch_check(now: datetime) -> Check:
    lease = timedelta(seconds=settings.DISPATCH_CLAIM_LEASE_S)
    grace = timedelta(seconds=settings.DISPATCH_UNCERTAIN_GRACE_S)
    uncertain = Batch.objects.filter(status=Batch.Status.UNCERTAIN)
    overdue = Batch.objects.filter(
        status=Batch.Status.SUBMITTING, claimed_at__lt=now - lease
    )
    n_uncertain, _ = _capped(uncertain)
    n_overdue, _ = _capped(overdue)
    stuck = list(
        (uncertain | overdue).select_related("campaign").order_by("claimed_at")[:LISTED]
    )
    alert = timedelta(seconds=settings.DISPATCH_UNCERTAIN_ALERT_S)
    old_uncertain = [
        b
        for b in stuck
        if b.uncertain_since and now - b.uncertain_since > min(grace * 5, alert)
    ]
    level = BAD if n_overdue or old_uncertain else WARN if n_uncertain else OK
    value = f"{n_uncertain:,} uncertain, {n_overdue:,} submitting past the lease"
    detail = (
        "An uncertain batch is looked up at Sinch (by its metadata) before it "
        "is ever sent again; one submitting for longer than the lease "
        f"({settings.DISPATCH_CLAIM_LEASE_S} s) lost its worker and is "
        "reconciled by the periodic tick. When the list by metadata finds "
        "nothing or cannot be read, a batch whose Sinch id a callback told is "
        "read by that id; one Sinch is known to have is never sent again. "
        "Still uncertain after a while: look its metadata key up in Sinch's "
        "dashboard, fix the connection to Sinch (credentials, region: see "
        "below), or cancel its campaign to give it up."
    )
    return Check(
        "batches",
        "Batches stuck",
        value,
        level,
        detail,
        rows=[
            {
                "pk": b.pk,
                "campaign_pk": b.campaign_id,
                "campaign": b.campaign.name,
                "sequence": b.sequence,
                "status": b.get_status_display(),
                "since": _stamp(b.uncertain_since or b.claimed_at, now),
                "error": b.last_error,
            }
            for b in stuck
        ],
    )


# A cancel Sinch did not confirm in time is shown for this long after the send time.
NOT_IN_TIME_SHOWN = timedelta(days=7)


def cancel_check(now: datetime) -> Check:
    """Cancels asked of Sinch and not confirmed yet (WARN when the send time
    is within SCHEDULED_OPTOUT_MARGIN_S), and batches sent because Sinch did
    not confirm their cancellation before the send time (BAD)."""
    margin = timedelta(seconds=settings.SCHEDULED_OPTOUT_MARGIN_S)
    waiting = cancellation.unconfirmed_cancels(now)
    late = cancellation.not_in_time(now).filter(send_after__gte=now - NOT_IN_TIME_SHOWN)
    n_waiting, _ = _capped(waiting)
    n_late, _ = _capped(late)
    close = waiting.filter(send_after__lte=now + margin).exists()
    level = BAD if n_late else WARN if close else OK
    value = (
        f"{n_waiting:,} requested and not yet confirmed, {n_late:,} not "
        "confirmed before the send time (last 7 days)"
    )
    detail = (
        "Sinch cancels asynchronously: a cancel (of a cancelled campaign, or of "
        "a batch replaced after late opt-outs) is read and asked again every "
        "minute until Sinch confirms it or the send time passes. A batch whose "
        "cancel was not confirmed in time was sent as scheduled."
    )
    shown = list(
        (late | waiting).select_related("campaign").order_by("send_after")[:LISTED]
    )
    return Check(
        "cancels",
        "Cancellations at Sinch",
        value,
        level,
        detail,
        rows=[
            {
                "pk": b.pk,
                "campaign_pk": b.campaign_id,
                "campaign": b.campaign.name,
                "sequence": b.sequence,
                "status": "sent: not confirmed in time"
                if b.send_after <= now
                else "requested, not yet confirmed",
                "since": _stamp(b.cancel_requested_at, now),
                "error": b.last_error or b.replace_reason,
            }
            for b in shown
        ],
    )


# --- Sinch itself --------------------------------------------------------------


def token_check(now: datetime) -> Check:
    from sinch.models import AuthFailure

    failure = AuthFailure.objects.filter(pk=1).first()
    if failure is None:
        return Check(
            "token",
            "Sinch credentials",
            "no refusal recorded",
            OK,
            "Sinch has never refused this product's credentials or token.",
        )
    age = now - failure.last_at
    level = BAD if age < TOKEN_BAD else WARN if age < TOKEN_WARN else OK
    return Check(
        "token",
        "Sinch credentials",
        f"refused {ago(failure.last_at, now)}",
        level,
        f"Last refusal: {failure.message or 'no details'} "
        f"(at {_stamp(failure.last_at, now)}; {failure.count:,} since "
        f"{timezone.localtime(failure.first_at):%Y-%m-%d %H:%M}). Batches wait "
        "and are retried; check SINCH_KEY_ID / SINCH_KEY_SECRET and the "
        "project's access keys.",
    )


def reachability_check(now: datetime) -> Check:
    """Whether Sinch (its API and its auth server) answers, as dispatch last
    found it (sinch.models.Outage)."""
    from campaigns.dispatch import sinch_outage
    from sinch.models import Outage

    outage = sinch_outage.current(now)
    if outage is not None:
        waiting = Campaign.objects.filter(
            status__in=CLAIMABLE,
            batches__status__in=(Batch.Status.PENDING, Batch.Status.UNCERTAIN),
        ).distinct()
        n, shown = _capped(waiting)
        return Check(
            "sinch_reachable",
            "Sinch reachable",
            sinch_outage.reason(outage.down_since),
            BAD,
            f"Last error {ago(outage.last_at, now)}: {outage.last_error} "
            f"({outage.count:,} calls failed since "
            f"{_stamp(outage.down_since, now)}). {shown} campaign"
            f"{'s' if n != 1 else ''} wait; their batches are retried and go "
            "as soon as Sinch answers, without using up their attempts.",
        )
    last = Outage.objects.filter(pk=1).first()
    return Check(
        "sinch_reachable",
        "Sinch reachable",
        "yes",
        OK,
        f"The last outage ended {_stamp(last.back_at, now)}: {last.last_error}"
        if last is not None and last.back_at
        else "No outage recorded.",
    )


def mode_check() -> Check:
    conf = sinch_settings()
    secrets = len(conf.webhook_secrets)
    signing = (
        f"{secrets} webhook secret{'s' if secrets != 1 else ''} configured"
        if settings.SINCH_WEBHOOK_SECRET and conf.webhook_secrets
        else "no SINCH_WEBHOOK_SECRET: the simulator's development secret"
        if conf.webhook_secrets
        else "no usable SINCH_WEBHOOK_SECRET: every callback is refused"
    )
    if conf.simulated:
        return Check(
            "mode",
            "Sinch",
            "simulator",
            INFO,
            f"No Sinch credentials are set: messages go to the local simulator "
            f"at {conf.batch_api_url}; nobody receives them. {signing}.",
        )
    return Check(
        "mode",
        "Sinch",
        "real Sinch",
        OK if settings.SINCH_WEBHOOK_SECRET and conf.webhook_secrets else BAD,
        f"Region {conf.region}, API {conf.batch_api_url}; {signing}.",
    )


def checks(now: datetime | None = None, broker=None) -> list[Check]:
    now = now or timezone.now()
    return [
        mode_check(),
        queue_check(now, broker),
        task_failure_check(now),
        *webhook_checks(now),
        batch_check(now),
        cancel_check(now),
        token_check(now),
        reachability_check(now),
    ]
