"""What campaigns add to a contact's timeline (contacts.history): every
campaign (and test send) they were in, with the message's status, their
replies and their clicks on tracked links. Registered from
CampaignsConfig.ready().

Each source reads one contact's rows through an index: recipients by
(contact, batch), replies by (contact, received_at), clicks by
(recipient, clicked_at) for the contact's recipients.
"""

from datetime import timedelta

from django.db.models import F
from django.db.models.functions import Coalesce
from django.urls import reverse
from django.utils import timezone

from campaigns.models import Click, InboundMessage, Recipient
from campaigns.tracking.clicks import people_clicks
from config.lib.redaction import mask_number
from contacts.history import HistoryEntry

STATUS_CHANGE = timedelta(minutes=1)


def _when(moment) -> str:
    return timezone.localtime(moment).strftime("%Y-%m-%d %H:%M")


class CampaignMessages:
    """One entry per Recipient row: the campaign, its status and times. The
    time on the timeline is when the message's batch went to Sinch, or, not
    sent yet (or left out), when the person was frozen into the campaign."""

    kind = "campaign"

    def _rows(self, contact):
        return Recipient.objects.filter(contact_id=contact.pk)

    def count(self, contact):
        return self._rows(contact).count()

    def keys(self, contact, limit):
        rows = self._rows(contact).annotate(
            at=Coalesce(F("batch__submitted_at"), F("created_at"))
        )
        return list(rows.order_by("-at", "-pk").values_list("at", "pk")[:limit])

    def entries(self, contact, ids):
        rows = (
            Recipient.objects.filter(pk__in=list(ids))
            .select_related("campaign", "batch")
            .only(
                "pk",
                "is_test",
                "identity",
                "status",
                "reason",
                "failure_code",
                "delivered_channel",
                "created_at",
                "updated_at",
                "campaign__id",
                "campaign__name",
                "campaign__channel",
                "batch__submitted_at",
            )
        )
        return {row.pk: self._entry(contact, row) for row in rows}

    def _entry(self, contact, row: Recipient) -> HistoryEntry:
        sent = row.batch.submitted_at if row.batch else None
        at = sent or row.created_at
        details = []
        if sent:
            details.append(f"Sent {_when(sent)}")
        # When the status last moved (a receipt), if not when it was sent.
        if row.updated_at and row.updated_at - at > STATUS_CHANGE:
            details.append(f"Status since {_when(row.updated_at)}")
        if row.reason:
            details.append(f"Reason: {row.reason}")
        if row.failure_code:
            details.append(f"Failure code: {row.failure_code}")
        channel = row.delivered_channel or row.campaign.channel
        if not contact.erased_at and row.identity:
            # Erasure turns the identity into a keyed hash: never shown.
            channel = f"{channel} {mask_number(row.identity)}"
        details.append(f"To {channel}")
        return HistoryEntry(
            at=at,
            kind=self.kind,
            label="Test send" if row.is_test else "Campaign",
            title=row.campaign.name,
            status=row.get_status_display(),
            details=tuple(details),
            url=reverse("admin:campaigns_campaign_dashboard", args=[row.campaign.pk]),
        )


class Replies:
    """The messages the person sent us (linked to the contact)."""

    kind = "reply"

    def _rows(self, contact):
        return InboundMessage.objects.filter(contact_id=contact.pk)

    def count(self, contact):
        return self._rows(contact).count()

    def keys(self, contact, limit):
        rows = self._rows(contact).order_by("-received_at", "-pk")
        return list(rows.values_list("received_at", "pk")[:limit])

    def entries(self, contact, ids):
        rows = InboundMessage.objects.filter(pk__in=list(ids)).select_related(
            "campaign"
        )
        return {row.pk: self._entry(contact, row) for row in rows.defer("identity")}

    def _entry(self, contact, row: InboundMessage) -> HistoryEntry:
        details = []
        if row.campaign_id:
            inferred = " (inferred)" if row.campaign_inferred else ""
            details.append(f"To campaign {row.campaign.name}{inferred}")
        if row.review:
            details.append(row.get_review_display())
        # Erasure empties the texts; one that came in later from the erased
        # number is not shown either.
        text = "Text erased" if contact.erased_at else row.text or "(no text)"
        return HistoryEntry(
            at=row.received_at,
            kind=self.kind,
            label="Reply",
            title=text if len(text) <= 160 else text[:159] + "…",
            status=f"{row.channel} · {row.get_keyword_display()}",
            details=tuple(details),
            url=reverse("admin:campaigns_inboundmessage_change", args=[row.pk]),
        )


class LinkClicks:
    """The person's clicks on their short links (preview fetchers left
    out: a messaging app drawing a preview is not the person)."""

    kind = "click"

    def _rows(self, contact):
        mine = Recipient.objects.filter(contact_id=contact.pk).values("pk")
        return people_clicks(mine)

    def count(self, contact):
        return self._rows(contact).count()

    def keys(self, contact, limit):
        rows = self._rows(contact).order_by("-clicked_at", "-pk")
        return list(rows.values_list("clicked_at", "pk")[:limit])

    def entries(self, contact, ids):
        rows = (
            Click.objects.filter(pk__in=list(ids))
            .select_related("link__campaign")
            .only(
                "pk",
                "clicked_at",
                "is_test",
                "agent",
                "link__target",
                "link__campaign__id",
                "link__campaign__name",
            )
        )
        return {row.pk: self._entry(row) for row in rows}

    def _entry(self, row: Click) -> HistoryEntry:
        campaign = row.link.campaign
        return HistoryEntry(
            at=row.clicked_at,
            kind=self.kind,
            label="Link click (test send)" if row.is_test else "Link click",
            title=row.link.target,
            status=row.agent,
            details=(f"Campaign {campaign.name}",),
            url=reverse("admin:campaigns_campaign_dashboard", args=[campaign.pk]),
        )
