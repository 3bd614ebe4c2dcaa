"""The campaign form's segments, and what Marketing may do to build audiences."""

import pytest
from django.urls import reverse

from campaigns.models import Campaign, Segment, TemplateParameter
from contacts.models import ConsentEvent, Contact, ContactList

ADD = reverse("admin:campaigns_campaign_add")


@pytest.fixture
def template(make_template):
    return make_template(
        "Spring sale",
        "Hi ${first_name}, ${offer} today",
        parameters={"offer": {"source": TemplateParameter.Source.CAMPAIGN}},
    )


@pytest.fixture
def segment(db):
    condition = {"field": "language", "op": "equals", "value": "fr"}
    return Segment.objects.create(
        name="French", definition={"groups": [{"conditions": [condition]}]}
    )


def _form(template, **fields):
    data = {
        "name": "Spring sale 2030",
        "template": template.pk,
        "purpose": "MARKETING",
        "seed_list": "",
        "send_mode": "now",
        "send_time_zone": "Europe/Berlin",
        "channel": "SMS",
        "channel_priority_order": "",
        "ttl_seconds": "",
        "sms_sender": "",
        "campaign_values": '{"offer": "20% off"}',
    }
    data.update(fields)
    return data


def test_a_marketer_sends_a_campaign_to_a_segment_without_lists(
    client, marketer, template, segment
):
    client.force_login(marketer)
    response = client.post(ADD, _form(template, segments=[segment.pk]))
    assert response.status_code == 302, response.context["adminform"].form.errors
    campaign = Campaign.objects.get()
    assert list(campaign.segments.all()) == [segment]
    assert not campaign.lists.exists()


def test_a_campaign_needs_a_list_or_a_segment(client, marketer, template):
    client.force_login(marketer)
    response = client.post(ADD, _form(template))
    assert response.status_code == 200
    form = response.context["adminform"].form
    assert form.errors["lists"] == [
        "Choose at least one list or segment for the audience."
    ]
    assert not Campaign.objects.exists()


def test_the_campaign_page_shows_the_segments_as_frozen(
    client, marketer, template, segment
):
    campaign = Campaign.objects.create(name="Done", template=template)
    Campaign.objects.filter(pk=campaign.pk).update(
        frozen_segments=[
            {
                "id": segment.pk,
                "name": "French",
                "definition": segment.definition,
                "description": "language is fr",
                "matched": 1234,
            }
        ]
    )
    client.force_login(marketer)
    page = client.get(reverse("admin:campaigns_campaign_change", args=[campaign.pk]))
    assert "“French”: language is fr (1,234 matched)" in page.content.decode()


def test_a_marketer_creates_a_list_and_adds_people_but_never_consent(
    client, marketer, make_contact
):
    person = make_contact("+14155550123", first_name="Ann")
    client.force_login(marketer)
    response = client.post(
        reverse("admin:contacts_contactlist_add"),
        {"name": "Seeds", "description": "Our phones"},
    )
    assert response.status_code == 302
    assert ContactList.objects.filter(name="Seeds").exists()
    assert marketer.has_perm("contacts.add_listmembership")
    assert marketer.has_perm("campaigns.add_segment")
    assert marketer.has_perm("campaigns.change_segment")
    assert not marketer.has_perm("contacts.change_contact")
    assert not marketer.has_perm("contacts.change_channelidentity")
    assert not marketer.has_perm("contacts.record_consent")
    refused = client.post(
        reverse("admin:contacts_contact_change", args=[person.pk]),
        {"first_name": "Changed"},
    )
    assert refused.status_code == 403
    Contact.objects.get(pk=person.pk, first_name="Ann")
    assert client.get(reverse("admin:contacts_consentevent_add")).status_code == 403
    assert not ConsentEvent.objects.filter(identity__contact=person).exists()


def test_the_preview_and_launch_pages_name_the_segments(
    client, sender, make_launchable, segment
):
    campaign = make_launchable()
    campaign.segments.add(segment)
    client.force_login(sender)
    preview = client.get(
        reverse("admin:campaigns_campaign_preview", args=[campaign.pk])
    )
    assert "segment French (read now; evaluated once at the launch)" in (
        preview.content.decode()
    )
    launch = client.get(reverse("admin:campaigns_campaign_launch", args=[campaign.pk]))
    assert "the segment <strong>French</strong> (evaluated once, now)" in (
        launch.content.decode()
    )
