"""Admin: the home page at /admin/ (what each role needs first), its live
progress endpoint, the notifications' "mark read" and the e-mail preference
page. The facts come from campaigns.tracking.home and .calendar and from
campaigns.notifications; config/urls.py routes these views. The admin's
list of every table stays at /admin/data/ ("All data").
"""

from django import forms
from django.contrib import admin, messages
from django.http import HttpResponseRedirect, JsonResponse
from django.shortcuts import redirect
from django.template.response import TemplateResponse
from django.urls import reverse
from django.utils import timezone
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.http import require_GET, require_POST

from campaigns import notifications
from campaigns.tracking import calendar, home


@require_GET
def home_view(request):
    user = request.user
    sections = home.sections_for(user)
    context = {
        **admin.site.each_context(request),
        "title": "Home",
        "sections": sections,
        "inbox": notifications.inbox(user),
    }
    if sections.campaigns:
        view, anchor = calendar.parse(
            request.GET.get("view"), request.GET.get("day"), timezone.localdate()
        )
        running = home.running_campaigns()
        context |= {
            "running": home.progress(running),
            "calendar": calendar.build(view, anchor),
            "drafts": home.waiting_drafts(),
            "results": home.recent_results(),
            "totals": home.counts_by_status(),
        }
    if sections.approvals:
        context["launch_requests"] = home.launch_requests()
    if sections.replies:
        context["pending_review"] = home.replies_to_review()
    if sections.compliance:
        context |= {
            "imports": home.recent_imports(),
            "opt_outs": home.recent_opt_outs(),
            "erasures": home.recent_erasures(),
            "exemptions": home.cap_exemptions(),
        }
    if sections.operations:
        context["health"] = home.health_summary()
    return TemplateResponse(request, "admin/home.html", context)


@require_GET
def progress_view(request):
    """The running campaigns' figures, polled by the home page."""
    if not home.sections_for(request.user).campaigns:
        return JsonResponse({"error": "Not allowed."}, status=403)
    return JsonResponse(
        {
            "campaigns": home.progress(home.running_campaigns()),
            "at": timezone.now().isoformat(),
        }
    )


@require_POST
def mark_read_view(request):
    """Mark one notification (`id`) or all of the user's read."""
    raw = request.POST.get("id", "")
    if raw and not raw.isdigit():
        messages.error(request, "No such notification.")
        ids = []
    else:
        ids = [int(raw)] if raw else None
    done = notifications.mark_read(request.user, ids)
    if ids is None:
        messages.success(
            request, f"{done} notification{'s' if done != 1 else ''} marked read."
        )
    target = request.POST.get("next") or reverse("admin:index")
    if not url_has_allowed_host_and_scheme(
        target, {request.get_host()}, require_https=request.is_secure()
    ):
        target = reverse("admin:index")
    return HttpResponseRedirect(target)


class PreferenceForm(forms.Form):
    email = forms.BooleanField(
        label="E-mail me my notifications",
        required=False,
        help_text="Campaigns you created or launched finishing, failing or "
        "paused automatically; delivery reports stalling; replies waiting for "
        "your review. They always show on your home page.",
    )


def preferences_view(request):
    user = request.user
    if request.method == "POST":
        form = PreferenceForm(request.POST)
        if form.is_valid():
            notifications.set_email_preference(user, form.cleaned_data["email"])
            messages.success(
                request,
                "Notifications will be e-mailed to you."
                if form.cleaned_data["email"]
                else "Notifications will no longer be e-mailed to you; they "
                "still show on your home page.",
            )
            return redirect("notification-preferences")
    else:
        form = PreferenceForm(initial={"email": notifications.wants_email(user)})
    return TemplateResponse(
        request,
        "admin/notification_preferences.html",
        {
            **admin.site.each_context(request),
            "title": "Notification preferences",
            "form": form,
            "address": user.email,
            "mail_configured": notifications.email_configured(),
        },
    )


@require_GET
def all_data_view(request):
    """Django's list of every table, as the admin index showed it."""
    return admin.site.index(request, extra_context={"title": "All data"})


# Wrapped for the admin's login redirect; config/urls.py routes them.
home_page = admin.site.admin_view(home_view)
progress_endpoint = admin.site.admin_view(progress_view)
mark_read = admin.site.admin_view(mark_read_view)
preferences_page = admin.site.admin_view(preferences_view)
all_data_page = admin.site.admin_view(all_data_view)
