from django.contrib import admin
from django.urls import path, re_path
from django.views.generic import RedirectView

from campaigns.admin.health import health_page
from campaigns.admin.home import (
    all_data_page,
    home_page,
    mark_read,
    preferences_page,
    progress_endpoint,
)
from campaigns.tracking.redirect import redirect_view
from campaigns.tracking.webhook import sinch_webhook

admin.site.site_header = "Sinch campaign manager"
admin.site.site_title = "Campaign manager"
admin.site.index_title = "Contacts, consent and campaigns"

# Refused requests get an admin page naming the role that may (config.lib.forbidden).
handler403 = "config.lib.forbidden.permission_denied"

urlpatterns = [
    path("", RedirectView.as_view(url="/admin/", permanent=False)),
    # The operator health page (superusers and operators; campaigns.tracking.health).
    path("admin/health/", health_page, name="operator-health"),
    # The home page of each role replaces the admin's index (campaigns.admin.home);
    # the admin's list of tables is "All data".
    path("admin/", home_page, name="home"),
    path("admin/data/", all_data_page, name="all-data"),
    path("admin/home/progress.json", progress_endpoint, name="home-progress"),
    path("admin/notifications/read/", mark_read, name="notifications-read"),
    path(
        "admin/notifications/preferences/",
        preferences_page,
        name="notification-preferences",
    ),
    path("admin/", admin.site.urls),
    # Sinch callbacks (signed; the only view exempt from CSRF).
    path("webhooks/sinch", sinch_webhook, name="sinch-webhook"),
    # Tracked links (config.wsgi answers them before Django under gunicorn).
    re_path(r"^l/(?P<code>.*)$", redirect_view, name="short-link"),
]
