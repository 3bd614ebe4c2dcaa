from django.contrib import admin
from django.urls import path
from django.views.generic import RedirectView

admin.site.site_header = "Sinch campaign manager"
admin.site.site_title = "Campaign manager"
admin.site.index_title = "Contacts, consent and campaigns"

urlpatterns = [
    path("", RedirectView.as_view(url="/admin/", permanent=False)),
    path("admin/", admin.site.urls),
]
