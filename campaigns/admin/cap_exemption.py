"""Admin: the frequency cap on the campaign page, and its exemption.

The campaign page shows whether the cap applies (the rules, or why not) and
the exemption (who, when, why). Users with `campaigns.exempt_frequency_cap`
(Compliance) see a form to exempt a marketing draft, with a required reason,
or to withdraw its exemption; the form POSTs to `cap_exemption_view`, which
calls campaigns.compliance.cap_exemption (the rules and the audit are there).
"""

from django.contrib import messages
from django.core.exceptions import PermissionDenied
from django.shortcuts import get_object_or_404, redirect
from django.urls import path
from django.utils.decorators import method_decorator
from django.views.decorators.http import require_POST

from campaigns.admin.refusals import refusal
from campaigns.compliance import cap_exemption, frequency
from campaigns.models import Campaign
from contacts.models import Purpose

URL_NAME = "campaigns_campaign_cap_exemption"


def cap_context(campaign: Campaign, user) -> dict:
    """What the campaign page shows about the cap, and what `user` may do."""
    rules = frequency.configured_rules()
    marketing = campaign.purpose == Purpose.MARKETING
    draft = campaign.status == Campaign.Status.DRAFT
    may = cap_exemption.can_exempt(user) and draft
    return {
        "rules": ", ".join(rule.describe() for rule in rules),
        "on": bool(rules),
        "marketing": marketing,
        "exempt": campaign.cap_exempt_at is not None,
        "can_exempt": may and marketing and campaign.cap_exempt_at is None,
        "can_withdraw": may and campaign.cap_exempt_at is not None,
        "reason_max": cap_exemption.REASON_MAX,
    }


class CapExemptionAdminMixin:
    """Adds the cap panel to the campaign page and the exemption view."""

    def cap_exemption_urls(self):
        return [
            path(
                "<int:pk>/frequency-cap-exemption/",
                self.admin_site.admin_view(self.cap_exemption_view),
                name=URL_NAME,
            )
        ]

    def change_view(self, request, object_id, form_url="", extra_context=None):
        extra_context = dict(extra_context or {})
        campaign = (
            Campaign.objects.select_related("cap_exempt_by")
            .filter(pk=object_id)
            .first()
        )
        if campaign is not None:
            extra_context["cap"] = cap_context(campaign, request.user)
        return super().change_view(request, object_id, form_url, extra_context)

    @method_decorator(require_POST)
    def cap_exemption_view(self, request, pk):
        campaign = get_object_or_404(Campaign, pk=pk)
        if not (
            self.has_view_permission(request, campaign)
            and cap_exemption.can_exempt(request.user)
        ):
            raise PermissionDenied(
                refusal(
                    cap_exemption.PERMISSION,
                    "exempt a campaign from the frequency cap or withdraw it",
                )
            )
        reason = request.POST.get("reason", "")
        try:
            if request.POST.get("action") == "withdraw":
                cap_exemption.withdraw_exemption(campaign, request.user, reason)
                done = "The frequency-cap exemption is withdrawn: the cap applies."
            else:
                cap_exemption.exempt_from_cap(campaign, request.user, reason)
                done = "The campaign is exempt from the frequency cap."
        except cap_exemption.ExemptionRefused as exc:
            self.message_user(request, str(exc), messages.ERROR)
        else:
            self.message_user(
                request,
                f"{done} Run the pre-send check again before the launch.",
                messages.SUCCESS,
            )
        return redirect("admin:campaigns_campaign_change", campaign.pk)
