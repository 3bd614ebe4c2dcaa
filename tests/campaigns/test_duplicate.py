"""Duplicate: a marketer copies a campaign as a new draft, to send it again.

The copy keeps the template, audience, channel settings, campaign values and
local-time settings; it leaves the send time, exemptions, approvals, the
pre-send check and every sending state. It is audited and opens as a draft.
"""

from datetime import timedelta

import pytest
from django.contrib.admin import helpers
from django.urls import reverse
from django.utils import timezone

from campaigns.models import Campaign, LaunchApproval
from contacts.models import AuditEvent, Purpose

S = Campaign.Status
CHANGELIST = reverse("admin:campaigns_campaign_changelist")


def duplicate_url(campaign) -> str:
    return reverse("admin:campaigns_campaign_duplicate", args=[campaign.pk])


def change_url(campaign) -> str:
    return reverse("admin:campaigns_campaign_change", args=[campaign.pk])


@pytest.fixture
def original(make_campaign, make_template, make_list, sender):
    """A finished transactional campaign with every setting filled in, an
    exemption, an approval, a pre-send check and its sending record."""
    template = make_template(
        "Delivery notice",
        "Hi ${first_name}, your parcel ${code} arrives today.",
        parameters={"code": {"source": "CAMPAIGN"}},
    )
    customers, vips, seeds = make_list("Customers"), make_list("VIPs"), make_list()
    now = timezone.now()
    campaign = make_campaign(
        template,
        [customers, vips],
        name="Parcel day",
        purpose=Purpose.TRANSACTIONAL,
        channel="SMS",
        channel_priority_order=["SMS", "WHATSAPP"],
        whatsapp_window_only=True,
        ttl_seconds=3600,
        sms_sender="ACME",
        channel_properties={"SMS_FLASH_MESSAGE": "true"},
        campaign_values={"code": "X-42"},
        seed_list=seeds,
        send_at=now + timedelta(days=1),
        send_time_zone="Europe/Berlin",
        send_in_local_time=True,
        fallback_time_zone="Europe/Paris",
        multi_zone_rule=Campaign.MultiZoneRule.EAST,
        quiet_hours_exempt=True,
        quiet_hours_exempted_by=sender,
        quiet_hours_exempted_at=now,
        cap_exempt_at=now,
        cap_exempt_by=sender,
        cap_exempt_reason="Legal notice",
        status=S.COMPLETED,
        presend={"ok": 2, "cost": "EUR 1.00", "cost_total": "1.00"},
        presend_at=now,
        presend_state=Campaign.PresendState.DONE,
        message_snapshot={"message": {"text_message": {"text": "Hi"}}},
        frozen_at=now,
        launched_at=now,
        launched_by=sender,
        status_reason="done",
        last_receipt_at=now,
        ingress_waves=[{"at": now.isoformat(), "recipients": 2, "batches": 1}],
    )
    LaunchApproval.objects.create(
        campaign=campaign,
        requested_by=sender,
        requested_at=now,
        decision=LaunchApproval.Decision.APPROVED,
        fingerprint="f",
        audience=2,
    )
    return campaign


def test_a_marketer_duplicates_a_campaign_from_its_page(client, marketer, original):
    client.force_login(marketer)

    response = client.post(duplicate_url(original), follow=True)

    copy = Campaign.objects.exclude(pk=original.pk).get()
    assert response.redirect_chain[-1][0] == change_url(copy)
    page = response.content.decode()
    assert "Created the draft “Copy of Parcel day”, a copy of “Parcel day”" in page
    assert "Choose its send time" in page
    assert "exemptions were not copied" in page
    assert copy.name == "Copy of Parcel day"
    assert copy.status == S.DRAFT
    assert copy.created_by == marketer


def test_the_copy_keeps_the_template_audience_and_channel_settings(
    client, marketer, original
):
    client.force_login(marketer)
    client.post(duplicate_url(original))

    copy = Campaign.objects.exclude(pk=original.pk).get()
    assert copy.template_id == original.template_id
    assert copy.purpose == Purpose.TRANSACTIONAL
    assert set(copy.lists.all()) == set(original.lists.all())
    assert copy.seed_list_id == original.seed_list_id
    assert copy.channel == "SMS"
    assert copy.channel_priority_order == ["SMS", "WHATSAPP"]
    assert copy.whatsapp_window_only is True
    assert copy.ttl_seconds == 3600
    assert copy.sms_sender == "ACME"
    assert copy.channel_properties == {"SMS_FLASH_MESSAGE": "true"}
    assert copy.campaign_values == {"code": "X-42"}
    assert copy.send_time_zone == "Europe/Berlin"
    assert copy.send_in_local_time is True
    assert copy.fallback_time_zone == "Europe/Paris"
    assert copy.multi_zone_rule == Campaign.MultiZoneRule.EAST


def test_the_copy_has_no_send_time_exemption_approval_check_or_sending_state(
    client, marketer, original
):
    client.force_login(marketer)
    client.post(duplicate_url(original))

    copy = Campaign.objects.exclude(pk=original.pk).get()
    assert copy.send_at is None
    assert copy.quiet_hours_exempt is False
    assert copy.quiet_hours_exempted_by is None
    assert copy.quiet_hours_exempted_at is None
    assert copy.cap_exempt_at is None
    assert copy.cap_exempt_by is None
    assert copy.cap_exempt_reason == ""
    assert not copy.approvals.exists()
    assert copy.presend is None
    assert copy.presend_at is None
    assert copy.presend_state == Campaign.PresendState.NOT_RUN
    assert copy.message_snapshot is None
    assert copy.frozen_at is None
    assert copy.launched_at is None
    assert copy.launched_by is None
    assert copy.status_reason == ""
    assert copy.last_receipt_at is None
    assert copy.ingress_waves == []
    assert copy.parent is None
    assert not copy.recipients.exists()
    assert not copy.counts.exists()


def test_the_original_is_left_as_it_was(client, marketer, original):
    before = Campaign.objects.values().get(pk=original.pk)
    client.force_login(marketer)

    client.post(duplicate_url(original))

    assert Campaign.objects.values().get(pk=original.pk) == before
    assert original.approvals.count() == 1


def test_each_copy_gets_a_name_of_its_own(client, marketer, original):
    client.force_login(marketer)

    for _ in range(3):
        client.post(duplicate_url(original))

    names = set(Campaign.objects.exclude(pk=original.pk).values_list("name", flat=True))
    assert names == {
        "Copy of Parcel day",
        "Copy of Parcel day (2)",
        "Copy of Parcel day (3)",
    }


def test_a_copy_of_a_long_name_still_fits(client, marketer, make_campaign):
    long = make_campaign(name="N" * 200)
    client.force_login(marketer)

    client.post(duplicate_url(long))
    client.post(duplicate_url(long))

    names = sorted(Campaign.objects.exclude(pk=long.pk).values_list("name", flat=True))
    assert [len(n) for n in names] == [200, 200]
    assert names[0].startswith("Copy of NNN")
    assert names[1].endswith(" (2)") or names[0].endswith(" (2)")


def test_a_duplicate_is_audited(client, marketer, original):
    client.force_login(marketer)

    client.post(duplicate_url(original))

    copy = Campaign.objects.exclude(pk=original.pk).get()
    event = AuditEvent.objects.get(action=AuditEvent.Action.DUPLICATE)
    assert event.actor == marketer
    assert event.target_type == "campaign"
    assert event.target_id == str(copy.pk)
    assert "copy of campaign Parcel day" in event.summary
    assert event.details["copy_of"] == original.pk
    assert sorted(event.details["lists"]) == sorted(
        original.lists.values_list("pk", flat=True)
    )


@pytest.mark.parametrize("who", ["viewer", "compliance_admin"])
def test_who_may_not_add_campaigns_is_refused_with_the_roles_that_may(
    client, request, original, who
):
    client.force_login(request.getfixturevalue(who))

    response = client.post(duplicate_url(original))

    assert response.status_code == 403
    assert (
        "Only a Marketing user or a Sender can duplicate a campaign."
        in response.content.decode()
    )
    assert Campaign.objects.count() == 1
    assert not AuditEvent.objects.filter(action=AuditEvent.Action.DUPLICATE).exists()


def test_duplicate_takes_a_post_only(client, marketer, original):
    client.force_login(marketer)

    assert client.get(duplicate_url(original)).status_code == 405
    assert Campaign.objects.count() == 1


def test_the_campaign_page_has_the_duplicate_button_for_those_who_may(
    client, marketer, viewer, original
):
    client.force_login(marketer)
    assert 'id="duplicate-button"' in client.get(change_url(original)).content.decode()

    client.force_login(viewer)
    assert (
        'id="duplicate-button"' not in client.get(change_url(original)).content.decode()
    )


def test_the_list_action_duplicates_one_campaign_and_opens_the_copy(
    client, marketer, original
):
    client.force_login(marketer)

    response = client.post(
        CHANGELIST,
        {
            "action": "duplicate_selected",
            helpers.ACTION_CHECKBOX_NAME: [original.pk],
            "index": 0,
        },
    )

    copy = Campaign.objects.exclude(pk=original.pk).get()
    assert response.status_code == 302
    assert response["Location"] == change_url(copy)
    assert copy.status == S.DRAFT


def test_the_list_action_duplicates_several_campaigns(
    client, marketer, original, make_campaign
):
    other = make_campaign(name="Other")
    client.force_login(marketer)

    response = client.post(
        CHANGELIST,
        {
            "action": "duplicate_selected",
            helpers.ACTION_CHECKBOX_NAME: [original.pk, other.pk],
            "index": 0,
        },
        follow=True,
    )

    assert set(
        Campaign.objects.filter(name__startswith="Copy of").values_list(
            "name", flat=True
        )
    ) == {"Copy of Parcel day", "Copy of Other"}
    assert "Created 2 drafts" in response.content.decode()
    assert AuditEvent.objects.filter(action=AuditEvent.Action.DUPLICATE).count() == 2


def test_the_list_action_is_offered_only_to_those_who_may_add_campaigns(
    client, viewer, marketer, original
):
    client.force_login(viewer)
    assert "duplicate_selected" not in client.get(CHANGELIST).content.decode()
    client.force_login(marketer)
    assert "duplicate_selected" in client.get(CHANGELIST).content.decode()
