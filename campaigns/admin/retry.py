"""Admin: retry a finished campaign's failed recipients in a follow-up draft.

GET shows the failed recipients by class and reason code with what each
means, and who would be left out; POST creates the follow-up draft
(campaigns.tracking.follow_up_campaigns) and opens it. Permanent failures are
only included when the user ticks the box. For those who may add campaigns
(Marketing, Sender).
"""

from django.contrib import messages
from django.contrib.auth import get_permission_codename
from django.core.exceptions import PermissionDenied
from django.http import HttpResponseNotAllowed
from django.shortcuts import get_object_or_404, redirect
from django.template.response import TemplateResponse

from campaigns import transitions
from campaigns.admin.refusals import refusal
from campaigns.models import Campaign
from campaigns.tracking import follow_up_campaigns
from campaigns.tracking.failures import PERMANENT, TRANSIENT

TEMPLATE = "admin/campaigns/campaign/retry.html"
URL_NAME = "campaigns_campaign_retry"


def can_retry(user, opts) -> bool:
    return user.has_perm(f"{opts.app_label}.{get_permission_codename('add', opts)}")


class RetryFailedAdminMixin:
    """Adds `retry_view` to the campaign admin (wire it in get_urls)."""

    def retry_view(self, request, pk):
        if request.method not in ("GET", "POST"):
            return HttpResponseNotAllowed(["GET", "POST"])
        campaign = get_object_or_404(Campaign.objects.select_related("template"), pk=pk)
        if not can_retry(request.user, self.opts):
            raise PermissionDenied(
                refusal("campaigns.add_campaign", "retry a campaign's failures")
            )
        if request.method == "POST":
            include_permanent = request.POST.get("include_permanent") == "on"
            try:
                draft = follow_up_campaigns.create_retry_campaign(
                    campaign, request.user, include_permanent=include_permanent
                )
            except follow_up_campaigns.RetryRefused as exc:
                self.message_user(request, str(exc), messages.ERROR)
                return redirect(f"admin:{URL_NAME}", pk=campaign.pk)
            people = draft.lists.get().memberships.count()
            self.message_user(
                request,
                f"Follow-up draft “{draft}” created for {people:,} "
                f"{'person' if people == 1 else 'people'}. Run its pre-send "
                "check and launch it when ready; consent is checked again then.",
                messages.SUCCESS,
            )
            if include_permanent:
                self.message_user(
                    request,
                    "It includes permanent failures: they will most likely fail "
                    "again unless their cause was fixed.",
                    messages.WARNING,
                )
            return redirect("admin:campaigns_campaign_change", draft.pk)

        found = follow_up_campaigns.failed_recipients(campaign)
        return TemplateResponse(
            request,
            TEMPLATE,
            {
                **self.admin_site.each_context(request),
                "title": f"Retry failed recipients: {campaign}",
                "opts": self.opts,
                "original": campaign,
                "refusal": follow_up_campaigns.refusal(campaign),
                "allowed": transitions.allowed(campaign),
                "found": found,
                "transient": follow_up_campaigns.failed_recipients(
                    campaign, (TRANSIENT,)
                ),
                "with_permanent": found,
                "permanent_count": found.by_class.get(PERMANENT, 0),
                "sections": [
                    ("Transient failures", "retry-transient", found.transient_groups),
                    ("Permanent failures", "retry-permanent", found.permanent_groups),
                ],
                "template_changed": follow_up_campaigns.template_changed_since_launch(
                    campaign
                ),
                "follow_ups": campaign.retries.order_by("created_at"),
            },
        )
