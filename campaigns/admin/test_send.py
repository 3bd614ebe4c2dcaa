"""Admin: send the campaign to its seed list now (a test send).

GET shows who on the seed list will receive it and who is excluded and why,
and the campaign's earlier test sends; POST sends and comes back to the page
with the result. Anyone who may change campaigns (Marketing, Sender) may send
a test until the campaign has ended (completed, cancelled or failed): it
reaches only a list marked as a seed list (by Compliance or a Sender), within
TEST_SEND_MAX_RECIPIENTS and TEST_SEND_MAX_PER_HOUR, and never counts in the
campaign's figures. Each
earlier test shows its messages' delivery status, from their receipts.
"""

from django.conf import settings
from django.contrib import messages
from django.contrib.auth import get_permission_codename
from django.core.exceptions import PermissionDenied
from django.db.models import Count, Q
from django.http import HttpResponseNotAllowed
from django.shortcuts import get_object_or_404, redirect
from django.template.response import TemplateResponse

from campaigns.admin import refusals
from campaigns.dispatch import test_send
from campaigns.models import Campaign, Recipient
from campaigns.models.states import ENDED

TEMPLATE = "admin/campaigns/campaign/test_send.html"
URL_NAME = "campaigns_campaign_test_send"
BATCHES_SHOWN = 50


R = Recipient.Status
# A test batch's recipients by what their delivery receipts said.
DELIVERY = {
    "excluded": (R.EXCLUDED,),
    "waiting": (R.PENDING, R.SUBMITTED, R.QUEUED_ON_CHANNEL),
    "delivered": (R.DELIVERED, R.READ),
    "read": (R.READ,),
    "failed": (R.FAILED,),
    "cancelled": (R.CANCELLED,),
}


def delivery_text(batch) -> str:
    """ "1 delivered (1 read), 1 failed, 2 awaiting a receipt": what the
    receipts of the test's messages said so far."""
    parts = []
    if batch.delivered:
        read = f" ({batch.read} read)" if batch.read else ""
        parts.append(f"{batch.delivered} delivered{read}")
    if batch.failed:
        parts.append(f"{batch.failed} failed")
    if batch.cancelled:
        parts.append(f"{batch.cancelled} cancelled")
    if batch.waiting:
        parts.append(f"{batch.waiting} awaiting a receipt")
    return ", ".join(parts) or "—"


def ended_text(campaign: Campaign) -> str:
    return (
        f"This campaign is {campaign.get_status_display().lower()}: a test send "
        "no longer tests anything. Duplicate it to prepare a new send."
    )


def can_send_test(user, opts) -> bool:
    """Change permission on campaigns; no launch permission, any status."""
    return user.has_perm(f"{opts.app_label}.{get_permission_codename('change', opts)}")


class SendTestAdminMixin:
    """Adds `test_send_view` to the campaign admin (wire it in get_urls)."""

    def test_send_view(self, request, pk):
        if request.method not in ("GET", "POST"):
            return HttpResponseNotAllowed(["GET", "POST"])
        campaign = get_object_or_404(
            Campaign.objects.select_related("template", "seed_list"), pk=pk
        )
        if not can_send_test(request.user, self.opts):
            raise PermissionDenied(
                refusals.refusal(refusals.CHANGE_PERM, "send a test of a campaign")
            )
        if request.method == "POST":
            if campaign.status in ENDED:
                self.message_user(request, ended_text(campaign), messages.ERROR)
            else:
                self._send(request, campaign)
            return redirect(f"admin:{URL_NAME}", pk=campaign.pk)

        plan, refusal = None, ""
        try:
            plan = test_send.plan_test_send(campaign)
            refusal = plan.refusal()
        except test_send.SendTestRefused as exc:
            refusal = str(exc)
        if campaign.status in ENDED:
            refusal = ended_text(campaign)
        batches = test_send.campaign_test_batches(campaign).annotate(
            **{
                key: Count("recipients", filter=Q(recipients__status__in=statuses))
                for key, statuses in DELIVERY.items()
            }
        )[:BATCHES_SHOWN]
        for batch in batches:
            batch.outcome = test_send.outcome_label(batch)
            batch.delivery = delivery_text(batch)
        return TemplateResponse(
            request,
            TEMPLATE,
            {
                **self.admin_site.each_context(request),
                "title": f"Send test: {campaign}",
                "opts": self.opts,
                "original": campaign,
                "plan": plan,
                "refusal": refusal,
                "next_sequence": test_send.next_test_sequence(campaign),
                "max_seed_list": test_send.max_recipients(),
                "max_per_hour": settings.TEST_SEND_MAX_PER_HOUR,
                "sends_left": max(
                    0,
                    settings.TEST_SEND_MAX_PER_HOUR
                    - len(test_send.recent_test_sends(request.user)),
                ),
                "batches": batches,
            },
        )

    def _send(self, request, campaign: Campaign) -> None:
        try:
            expected = int(request.POST.get("sequence", ""))
        except ValueError:
            expected = None
        try:
            result = test_send.send_test(
                campaign, request.user, expected_sequence=expected
            )
        except test_send.SendTestRefused as exc:
            self.message_user(request, str(exc), messages.ERROR)
            return
        level = {
            test_send.ACCEPTED: messages.SUCCESS,
            test_send.FAILED: messages.ERROR,
            test_send.UNCERTAIN: messages.WARNING,
        }[result.outcome]
        self.message_user(request, result.message, level)
