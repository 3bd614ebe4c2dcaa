"""Campaigns in the admin: Marketing and Sender write drafts, the others only read."""

from datetime import UTC, datetime

import pytest
from django.contrib.auth.models import Group
from django.urls import reverse

from campaigns.models import Campaign, TemplateParameter
from contacts import roles

ADD = reverse("admin:campaigns_campaign_add")
CHANGELIST = reverse("admin:campaigns_campaign_changelist")


@pytest.fixture
def template(make_template):
    return make_template(
        "Spring sale",
        "Hi ${first_name}, ${offer} today",
        parameters={"offer": {"source": TemplateParameter.Source.CAMPAIGN}},
    )


def _form(template, lists, **fields):
    data = {
        "name": "Spring sale 2030",
        "template": template.pk,
        "purpose": "MARKETING",
        "lists": [lst.pk for lst in lists],
        "seed_list": "",
        "send_mode": "later",
        "send_at_local_0": "2030-06-01",
        "send_at_local_1": "09:30:00",
        "send_time_zone": "Europe/Berlin",
        "channel": "SMS",
        "channel_priority_order": "",
        "ttl_seconds": "",
        "sms_sender": "",
        "campaign_values": '{"offer": "20% off"}',
    }
    data.update(fields)
    return data


def test_a_marketer_schedules_a_campaign_in_a_chosen_zone(
    client, marketer, template, make_list
):
    lists = [make_list("Customers"), make_list("Newsletter")]
    client.force_login(marketer)
    response = client.post(
        ADD,
        _form(
            template,
            lists,
            channel_priority_order="sms, WHATSAPP",
            ttl_seconds="3600",
            sms_sender="MyShop",
            cp_sms_flash_message="on",
        ),
    )
    assert response.status_code == 302, response.context["adminform"].form.errors
    campaign = Campaign.objects.get()
    assert set(campaign.lists.all()) == set(lists)
    # 09:30 in Berlin in summer (UTC+2) is 07:30 UTC.
    assert campaign.send_at == datetime(2030, 6, 1, 7, 30, tzinfo=UTC)
    assert campaign.send_time_zone == "Europe/Berlin"
    assert campaign.status == Campaign.Status.DRAFT
    assert campaign.created_by == marketer
    assert campaign.channel_priority_order == ["SMS", "WHATSAPP"]
    assert campaign.ttl_seconds == 3600
    assert campaign.sinch_channel_properties() == {
        "SMS_FLASH_MESSAGE": "true",
        "SMS_SENDER": "MyShop",
    }

    page = client.get(CHANGELIST).content.decode()
    assert "2030-06-01 09:30 Europe/Berlin" in page
    change = client.get(reverse("admin:campaigns_campaign_change", args=[campaign.pk]))
    assert change.status_code == 200
    assert 'value="2030-06-01"' in change.content.decode()


def test_a_campaign_sent_when_launched_has_no_send_time(
    client, sender, template, make_list
):
    client.force_login(sender)
    response = client.post(
        ADD, _form(template, [make_list()], send_mode="now", send_time_zone="")
    )
    assert response.status_code == 302
    assert Campaign.objects.get().send_at is None
    assert "when launched" in client.get(CHANGELIST).content.decode()


@pytest.mark.parametrize(
    ("fields", "field", "words"),
    [
        ({"channel_priority_order": "WHATSAPP, SMS"}, "channel_priority_order", "SMS"),
        ({"channel_priority_order": "SMS, FAX"}, "channel_priority_order", "FAX"),
        ({"channel_priority_order": "SMS, SMS"}, "channel_priority_order", "once"),
        ({"send_time_zone": "Mars/Olympus"}, "send_time_zone", "Mars/Olympus"),
        ({"send_at_local_0": "2020-01-01"}, "send_at_local", "in the past"),
        (
            {"send_at_local_0": "2030-03-31", "send_at_local_1": "02:30"},
            "send_at_local",
            "does not exist",
        ),
        ({"send_at_local_0": ""}, "send_at_local", "date"),
        ({"ttl_seconds": "2"}, "ttl_seconds", "3"),
        ({"ttl_seconds": "315576000001"}, "ttl_seconds", "315576000000"),
        ({"sms_sender": "x" * 1025}, "sms_sender", "1024"),
        (
            {"cp_sms_max_number_of_message_parts": "0"},
            "cp_sms_max_number_of_message_parts",
            "greater than or equal to 1",
        ),
        ({"campaign_values": "{}"}, "campaign_values", "offer"),
    ],
)
def test_a_bad_value_is_a_clear_error_on_its_field(
    client, marketer, template, make_list, fields, field, words
):
    client.force_login(marketer)
    response = client.post(ADD, _form(template, [make_list()], **fields))
    assert response.status_code == 200
    errors = response.context["adminform"].form.errors
    assert list(errors) == [field]
    assert words in " ".join(errors[field])
    assert not Campaign.objects.exists()


@pytest.mark.parametrize("persona", ["viewer", "compliance_admin"])
def test_viewer_and_compliance_cannot_add_campaigns(client, request, persona):
    client.force_login(request.getfixturevalue(persona))
    assert client.get(ADD).status_code == 403
    assert client.get(CHANGELIST).status_code == 200


def test_a_campaign_past_draft_cannot_be_edited(
    client, marketer, template, make_list, make_campaign
):
    campaign = make_campaign(
        template,
        name="Sent",
        campaign_values={"offer": "x"},
        send_at=datetime(2030, 1, 15, 14, 0, tzinfo=UTC),
        send_time_zone="America/New_York",
    )
    Campaign.objects.filter(pk=campaign.pk).update(status=Campaign.Status.SCHEDULED)
    client.force_login(marketer)
    url = reverse("admin:campaigns_campaign_change", args=[campaign.pk])
    page = client.get(url)
    assert page.status_code == 200  # shown read-only
    assert 'name="name"' not in page.content.decode()
    assert "2030-01-15 09:00 America/New_York" in page.content.decode()
    response = client.post(url, _form(template, [make_list()], name="Changed"))
    assert response.status_code == 403
    campaign.refresh_from_db()
    assert campaign.name == "Sent"


def test_only_sender_holds_the_launch_and_cancel_permissions(db):
    def codenames(role):
        return set(
            Group.objects.get(name=role).permissions.values_list("codename", flat=True)
        )

    sender, marketing = codenames(roles.SENDER), codenames(roles.MARKETING)
    assert {"launch_campaign", "cancel_campaign", "add_campaign"} <= sender
    assert {"add_campaign", "change_campaign"} <= marketing
    assert not {"launch_campaign", "cancel_campaign"} & marketing
    for role in (roles.VIEWER, roles.COMPLIANCE):
        assert codenames(role) & {"add_campaign", "change_campaign"} == set()
        assert "view_campaign" in codenames(role)
