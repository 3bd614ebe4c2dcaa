"""Admin: the operator health page (campaigns.tracking.health), at /admin/health/.

For superusers and staff given campaigns.tracking.health.PERMISSION by hand: it shows
the machinery (queues, callbacks, stuck batches, credentials), not people.
"""

from django.contrib import admin
from django.core.exceptions import PermissionDenied
from django.template.response import TemplateResponse
from django.views.decorators.http import require_GET

from campaigns.tracking import health


@require_GET
def health_view(request):
    if not health.can_view(request.user):
        raise PermissionDenied(
            "Only a superuser or an operator (who may see django-q2's queue) "
            "can see the operator health page."
        )
    checks = health.checks()
    worst = next(
        (
            level
            for level in (health.BAD, health.WARN)
            if any(c.level == level for c in checks)
        ),
        health.OK,
    )
    return TemplateResponse(
        request,
        "admin/campaigns/health.html",
        {
            **admin.site.each_context(request),
            "title": "Operator health",
            "checks": checks,
            "worst": worst,
        },
    )


# Wrapped for the admin's login redirect; config/urls.py routes it.
health_page = admin.site.admin_view(health_view)
