"""Notifications: who is told about what, in the app and by e-mail.

One function, `notify`, records an event for the people concerned; the
domain code calls it where the event happens (campaigns.transitions for a
campaign that finished, failed or was paused automatically,
campaigns.tracking.reconciliation for delivery reports that stopped,
campaigns.tracking.replies for replies that need review). Each user is told
about an event once (Notification.key is unique per user); e-mails go
through Django's e-mail backend once the event is committed, only when a
mail server is configured (EMAIL_URL), only to users with an address who
did not turn them off (NotificationPreference), and at most once per
notification (`emailed_at` is claimed before sending).

Texts name campaigns and counts only: never a contact's number, name or
message text.
"""

import functools
import logging
from collections.abc import Iterable

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.mail import send_mass_mail
from django.db import transaction
from django.db.models import Q
from django.urls import NoReverseMatch, reverse
from django.utils import timezone

from campaigns import counters
from campaigns.models import (
    Campaign,
    InboundMessage,
    Notification,
    NotificationPreference,
    Recipient,
)
from config.lib.login_throttling import PERMISSION_BACKEND

logger = logging.getLogger(__name__)
Kind = Notification.Kind
# Who may resume a paused campaign (the Sender role).
SENDER_PERM = "campaigns.pause_campaign"
# Who may record an opt-out from a reply (contacts.roles: Compliance).
REVIEW_PERM = "contacts.record_consent"
# Operators: superusers and those given this by hand (campaigns.tracking.health).
OPERATOR_PERM = "django_q.view_ormq"
SHOWN = 8


# --- who is concerned -----------------------------------------------------------


def _active(users):
    return users.filter(is_active=True)


def with_perm(perm: str, *, superusers: bool = True):
    return (
        get_user_model()
        .objects.with_perm(
            perm,
            is_active=True,
            include_superusers=superusers,
            backend=PERMISSION_BACKEND,
        )
        .order_by("pk")
    )


def campaign_people(campaign: Campaign) -> list:
    """The campaign's creator and launcher (active ones), each once."""
    ids = {campaign.created_by_id, campaign.launched_by_id} - {None}
    return list(_active(get_user_model().objects.filter(pk__in=ids)).order_by("pk"))


def senders() -> list:
    return list(with_perm(SENDER_PERM, superusers=False))


def reviewers() -> list:
    return list(with_perm(REVIEW_PERM))


def operators() -> list:
    User = get_user_model()
    return list(
        _active(
            User.objects.filter(
                Q(is_superuser=True) | Q(pk__in=with_perm(OPERATOR_PERM).values("pk"))
            )
        ).order_by("pk")
    )


def _unique(users: Iterable) -> list:
    return list({u.pk: u for u in users}.values())


def campaign_link(campaign_id: int) -> str:
    try:
        return reverse("admin:campaigns_campaign_dashboard", args=[campaign_id])
    except NoReverseMatch:  # the admin is not wired (a worker-only process)
        return f"/admin/campaigns/campaign/{campaign_id}/change/"


# --- the one function ---------------------------------------------------------------


def notify(
    kind: str,
    *,
    users: Iterable,
    key: str,
    text: str,
    link: str = "",
    campaign: Campaign | None = None,
) -> list[int]:
    """Tell each of `users` about the event `key` once: a notification on
    their home page and, after commit, an e-mail (see the module docstring).
    Returns the ids of the notifications created now (none for users told
    before)."""
    users = _unique(u for u in users if u is not None and u.is_active)
    if not users:
        return []
    told = set(
        Notification.objects.filter(
            key=key, recipient_id__in=[u.pk for u in users]
        ).values_list("recipient_id", flat=True)
    )
    new = [
        Notification(
            recipient=u,
            kind=kind,
            campaign=campaign,
            key=key[:100],
            text=text[:500],
            link=link[:300],
        )
        for u in users
        if u.pk not in told
    ]
    if not new:
        return []
    Notification.objects.bulk_create(new, ignore_conflicts=True)
    ids = list(
        Notification.objects.filter(
            key=key[:100],
            recipient_id__in=[n.recipient_id for n in new],
            emailed_at__isnull=True,
        ).values_list("pk", flat=True)
    )
    if ids and email_configured():
        transaction.on_commit(lambda: _queue_mail(ids))
    return ids


def _queue_mail(ids: list[int]) -> None:
    from django_q.tasks import async_task

    async_task(
        "campaigns.tasks.send_notification_mail",
        ids,
        task_name=f"notification-mail-{ids[0]}-{len(ids)}",
    )


# --- the events ---------------------------------------------------------------------


def _never_in_the_way(event):
    """A notification that cannot be recorded is logged, never raised: the
    transition that called it stands (the savepoint keeps its transaction
    usable)."""

    @functools.wraps(event)
    def guarded(*args, **kwargs) -> list[int]:
        try:
            with transaction.atomic():
                return event(*args, **kwargs)
        except Exception:
            logger.exception("notification %s%r not recorded", event.__name__, args)
            return []

    return guarded


@_never_in_the_way
def campaign_finished(campaign_id: int) -> list[int]:
    campaign = Campaign.objects.filter(pk=campaign_id).first()
    if campaign is None:
        return []
    kept = counters.counts(campaign_id)
    R = Recipient.Status
    delivered = kept.get(R.DELIVERED, 0) + kept.get(R.READ, 0)
    failed = kept.get(R.FAILED, 0)
    sent = delivered + failed
    share = f" ({delivered / sent:.0%})" if sent else ""
    return notify(
        Kind.FINISHED,
        users=campaign_people(campaign),
        key=f"finished:{campaign_id}",
        campaign=campaign,
        link=campaign_link(campaign_id),
        text=f"“{campaign.name}” finished: {delivered:,} of {sent:,} "
        f"messages delivered{share}, {failed:,} failed.",
    )


@_never_in_the_way
def campaign_failed(campaign_id: int) -> list[int]:
    campaign = Campaign.objects.filter(pk=campaign_id).first()
    if campaign is None:
        return []
    return notify(
        Kind.FAILED,
        users=campaign_people(campaign) or senders(),
        key=f"failed:{campaign_id}",
        campaign=campaign,
        link=campaign_link(campaign_id),
        text=f"“{campaign.name}” failed: {campaign.status_reason or 'see its page'}",
    )


@_never_in_the_way
def campaign_auto_paused(campaign_id: int, reason: str, event_id: int) -> list[int]:
    """`event_id`: the pause's audit row, so a later pause is a new event."""
    campaign = Campaign.objects.filter(pk=campaign_id).first()
    if campaign is None:
        return []
    return notify(
        Kind.AUTO_PAUSED,
        users=[*campaign_people(campaign), *senders()],
        key=f"paused:{campaign_id}:{event_id}",
        campaign=campaign,
        link=campaign_link(campaign_id),
        text=f"“{campaign.name}” was paused automatically. {reason} "
        "A Sender resumes it once the cause is fixed.",
    )


@_never_in_the_way
def receipts_stalled(campaign_id: int, reason: str) -> list[int]:
    """Delivery reports stopped: the operators and the launcher are told,
    once per stall (a stall cleared and flagged again is a new one)."""
    campaign = Campaign.objects.filter(pk=campaign_id).first()
    if campaign is None:
        return []
    since = campaign.last_receipt_at or campaign.launched_at
    stamp = f"{since:%Y%m%d%H%M%S}" if since else "never"
    launcher = [campaign.launched_by] if campaign.launched_by_id else []
    return notify(
        Kind.RECEIPTS_STALLED,
        users=[*operators(), *launcher],
        key=f"stalled:{campaign_id}:{stamp}",
        campaign=campaign,
        link=campaign_link(campaign_id),
        text=f"“{campaign.name}”: delivery reports stopped arriving. {reason}",
    )


@_never_in_the_way
def replies_to_review(newest_reply_id: int, waiting: int) -> list[int]:
    """New replies read like an opt-out and wait for a person. A reviewer who
    still has an unread notification about them has it brought up to date
    instead of getting another one."""
    text = (
        f"{waiting:,} repl{'y' if waiting == 1 else 'ies'} read like an opt-out "
        "and wait for review."
    )
    try:
        link = reverse("admin:campaigns_inboundmessage_changelist")
    except NoReverseMatch:
        link = "/admin/campaigns/inboundmessage/"
    link += f"?review__exact={InboundMessage.Review.PENDING}"
    people = reviewers()
    unread = Notification.objects.filter(
        kind=Kind.REPLIES_TO_REVIEW,
        read_at__isnull=True,
        recipient_id__in=[u.pk for u in people],
    )
    still_told = set(unread.values_list("recipient_id", flat=True))
    unread.update(text=text)
    return notify(
        Kind.REPLIES_TO_REVIEW,
        users=[u for u in people if u.pk not in still_told],
        key=f"replies:{newest_reply_id}",
        link=link,
        text=text,
    )


# --- reading and e-mail ---------------------------------------------------------------


def email_configured() -> bool:
    return bool(getattr(settings, "EMAIL_URL", ""))


def wants_email(user) -> bool:
    pref = NotificationPreference.objects.filter(user=user).first()
    return pref is None or pref.email


def set_email_preference(user, email: bool) -> NotificationPreference:
    pref, _ = NotificationPreference.objects.update_or_create(
        user=user, defaults={"email": email}
    )
    return pref


def inbox(user, limit: int = SHOWN) -> dict:
    """The user's notifications for the home page: unread first, then the
    latest read ones; and how many are unread."""
    mine = Notification.objects.filter(recipient=user).select_related("campaign")
    unread = mine.filter(read_at__isnull=True)
    n_unread = unread.count()
    shown = list(unread.order_by("-created_at", "-id")[:limit])
    if len(shown) < limit:
        shown += list(
            mine.filter(read_at__isnull=False).order_by("-created_at", "-id")[
                : limit - len(shown)
            ]
        )
    return {"items": shown, "unread": n_unread}


def mark_read(user, ids: Iterable[int] | None = None) -> int:
    """Mark the user's notifications (these ids, or all) read."""
    mine = Notification.objects.filter(recipient=user, read_at__isnull=True)
    if ids is not None:
        mine = mine.filter(pk__in=list(ids))
    return mine.update(read_at=timezone.now())


def absolute(link: str) -> str:
    """A page's path as a full address when SITE_URL is set."""
    base = getattr(settings, "SITE_URL", "")
    return f"{base}{link}" if base and link.startswith("/") else link


def send_mail_for(ids: list[int]) -> str:
    """The task: e-mail each notification not e-mailed yet to its recipient,
    if they have an address and did not turn e-mails off. Failures are
    logged: the notification stays on the home page."""
    if not email_configured():
        return "notification mail: no mail server configured"
    now = timezone.now()
    messages, claimed = [], []
    rows = Notification.objects.filter(
        pk__in=ids, emailed_at__isnull=True
    ).select_related("recipient")
    for n in rows:
        user = n.recipient
        if not user.is_active or not user.email or not wants_email(user):
            continue
        # Claim it: of two workers running the task, one sends.
        if not Notification.objects.filter(pk=n.pk, emailed_at__isnull=True).update(
            emailed_at=now
        ):
            continue
        claimed.append(n.pk)
        body = f"{n.text}\n\n"
        if n.link:
            body += f"Open it: {absolute(n.link)}\n\n"
        body += (
            "You get these e-mails because of your role in the campaign manager; "
            "turn them off on your notification preferences page (home page, "
            "Notifications)."
        )
        messages.append(
            (
                f"[Campaigns] {n.get_kind_display()}",
                body,
                settings.APPROVAL_EMAIL_FROM,
                [user.email],
            )
        )
    if not messages:
        return "notification mail: nothing to send"
    try:
        sent = send_mass_mail(messages, fail_silently=False)
    except Exception:
        logger.exception("notification mail %s could not be sent", claimed)
        Notification.objects.filter(pk__in=claimed).update(emailed_at=None)
        return "notification mail: failed"
    return f"notification mail: {sent} sent"
