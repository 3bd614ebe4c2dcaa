from django.contrib import admin
from django.urls import path
from django.views.generic import RedirectView

from campaigns.admin.health import health_page
from campaigns.tracking.webhook import sinch_webhook

admin.site.site_header = "Sinch campaign manager"
admin.site.site_title = "Campaign manager"
admin.site.index_title = "Contacts, consent and campaigns"

urlpatterns = [
    path("", RedirectView.as_view(url="/admin/", permanent=False)),
    # The operator health page (superusers and operators; campaigns.tracking.health).
    path("admin/health/", health_page, name="operator-health"),
    path("admin/", admin.site.urls),
    # Sinch callbacks (signed; the only view exempt from CSRF).
    path("webhooks/sinch", sinch_webhook, name="sinch-webhook"),
]
