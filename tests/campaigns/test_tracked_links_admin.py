"""Marketing and Compliance see a campaign's tracked links and clicks, read-only."""

import pytest
from django.urls import reverse

from campaigns.dispatch import launching
from campaigns.models import ShortLink
from campaigns.tracking import click_buffer, redirect
from contacts.models import AuditEvent


@pytest.fixture
def clicked(
    settings,
    make_audience,
    make_template,
    make_campaign,
    sender,
    sinch,
    client,
    monkeypatch,
    django_capture_on_commit_callbacks,
):
    """A tracked campaign sent to two people; one clicked, WhatsApp previewed."""
    settings.SHORT_LINK_BASE_URL = "http://go.example.com"
    monkeypatch.setattr(click_buffer, "_start", lambda: None)
    redirect.forget_links()
    people = make_audience("Buyers", 2, phone="+1415555{:04d}")
    template = make_template("Sale", "Sale at https://shop.example.com/spring now")
    campaign = make_campaign(
        template, [people], "Sale", checked=True, track_links=True, utm_source="sms"
    )
    with django_capture_on_commit_callbacks(execute=True):
        launching.launch(campaign, sender)
    code = ShortLink.objects.first().text
    client.get(f"/l/{code}", HTTP_USER_AGENT="Mozilla/5.0 (iPhone) Mobile Safari")
    client.get(f"/l/{code}", HTTP_USER_AGENT="WhatsApp/2.23.20")
    click_buffer.flush()
    client.logout()
    return campaign


def test_the_launch_audits_the_frozen_links_and_their_targets(clicked):
    event = AuditEvent.objects.get(summary__startswith="Tracked links frozen")
    assert event.target_id == str(clicked.pk)
    assert (
        "https://shop.example.com/spring → https://shop.example.com/spring?utm_source=sms"
        in event.summary
    )
    assert event.details["links"][0]["parameter"] == "cm_link_1"


@pytest.mark.parametrize("persona", ["marketer", "compliance_admin", "viewer"])
def test_links_and_clicks_are_shown_read_only(clicked, client, persona, request):
    client.force_login(request.getfixturevalue(persona))
    page = client.get(reverse("admin:campaigns_campaign_change", args=[clicked.pk]))
    assert "1 tracked link(s)" in page.content.decode()
    links = client.get(
        reverse("admin:campaigns_trackedlink_changelist"),
        {"campaign__id__exact": clicked.pk},
    )
    text = links.content.decode()
    assert links.status_code == 200
    assert "https://shop.example.com/spring?utm_source=sms" in text
    clicks = client.get(
        reverse("admin:campaigns_click_changelist"), {"campaign_id": clicked.pk}
    )
    assert clicks.status_code == 200
    assert "WhatsApp" in clicks.content.decode()
    assert "mobile browser" in clicks.content.decode()
    # Nobody adds, changes or deletes them.
    assert client.get(reverse("admin:campaigns_click_add")).status_code == 403
    assert client.get(reverse("admin:campaigns_trackedlink_add")).status_code == 403
