"""A marketer sets Sinch's channel properties in typed fields, grouped per
channel, in the campaign admin; no raw JSON."""

import re

import pytest
from django import forms
from django.urls import reverse

from campaigns.models import Campaign

ADD = reverse("admin:campaigns_campaign_add")


def change_url(campaign) -> str:
    return reverse("admin:campaigns_campaign_change", args=[campaign.pk])


def _form(template, lists, **fields):
    data = {
        "name": "Spring sale 2030",
        "template": template.pk,
        "purpose": "MARKETING",
        "lists": [lst.pk for lst in lists],
        "seed_list": "",
        "send_mode": "now",
        "send_time_zone": "",
        "channel": "SMS",
        "channel_priority_order": "",
        "ttl_seconds": "",
        "sms_sender": "",
        "campaign_values": "{}",
    }
    data.update(fields)
    return data


def _as_rendered(form) -> dict:
    """What the browser would post back for the page's form, unchanged."""
    data = {}
    for name, field in form.fields.items():
        value = form[name].value()
        if isinstance(field, forms.BooleanField):
            if value:
                data[name] = "on"
        elif isinstance(field, forms.SplitDateTimeField):
            continue
        elif isinstance(field, forms.ModelMultipleChoiceField):
            data[name] = [str(v) for v in value or []]
        else:
            data[name] = "" if value is None else value
    return data


def _fieldsets(response) -> dict[str, list[str]]:
    """Each fieldset's title -> its classes, as the admin renders them."""
    admin_form = response.context["adminform"]
    return {fs.name: list(fs.classes.split()) for fs in admin_form}


def test_a_marketer_sets_properties_per_channel_and_sees_them_again(
    client, marketer, make_template, make_list
):
    client.force_login(marketer)
    page = client.get(ADD)
    html = page.content.decode()
    assert 'name="channel_properties"' not in html  # no raw JSON any more
    sections = _fieldsets(page)
    assert "collapse" not in sections["SMS properties"]  # the default channel
    assert "collapse" in sections["WhatsApp properties"]

    response = client.post(
        ADD,
        _form(
            make_template(),
            [make_list()],
            channel="WHATSAPP",
            channel_priority_order="WHATSAPP, SMS",
            sms_sender="MyShop",
            cp_whatsapp_preview_url="on",  # "No link preview"
            cp_sms_flash_message="on",
            cp_sms_max_number_of_message_parts="2",
        ),
    )
    assert response.status_code == 302, response.context["adminform"].form.errors
    campaign = Campaign.objects.get()
    assert campaign.channel_properties == {
        "WHATSAPP_PREVIEW_URL": "false",
        "SMS_FLASH_MESSAGE": "true",
        "SMS_MAX_NUMBER_OF_MESSAGE_PARTS": "2",
    }
    assert campaign.sinch_channel_properties()["SMS_SENDER"] == "MyShop"

    change = client.get(change_url(campaign))
    html = change.content.decode()
    sections = _fieldsets(change)
    assert "collapse" not in sections["WhatsApp properties"]
    assert "collapse" not in sections["SMS properties"]
    assert "collapse" in sections["Facebook Messenger properties"]
    assert re.search(r'name="cp_whatsapp_preview_url"[^>]*checked', html)
    assert re.search(r'name="cp_sms_flash_message"[^>]*checked', html)
    assert not re.search(r'name="cp_mms_strict_validation"[^>]*checked', html)
    assert 'name="cp_sms_max_number_of_message_parts" value="2"' in html
    assert "No link preview" in html
    assert "Ticked: sent as WHATSAPP_PREVIEW_URL = false." in html

    # Saved again as shown, nothing changes.
    again = client.post(
        change_url(campaign), _as_rendered(change.context["adminform"].form)
    )
    assert again.status_code == 302, again.context["adminform"].form.errors
    campaign.refresh_from_db()
    assert campaign.channel_properties == {
        "WHATSAPP_PREVIEW_URL": "false",
        "SMS_FLASH_MESSAGE": "true",
        "SMS_MAX_NUMBER_OF_MESSAGE_PARTS": "2",
    }
    assert campaign.sms_sender == "MyShop"


def test_choices_and_texts_of_other_channels_round_trip(
    client, marketer, make_template, make_list
):
    client.force_login(marketer)
    response = client.post(
        ADD,
        _form(
            make_template(),
            [make_list()],
            channel="MESSENGER",
            channel_priority_order="MESSENGER, INSTAGRAM, LINE, MMS",
            cp_messenger_messaging_type="MESSAGE_TAG",
            cp_messenger_message_tag="POST_PURCHASE_UPDATE",
            cp_messenger_notification_type="NO_PUSH",
            cp_instagram_message_tag="HUMAN_AGENT",
            cp_line_video_tracking_id="spring-video",
            cp_mms_sender="+15550001111",
        ),
    )
    assert response.status_code == 302, response.context["adminform"].form.errors
    campaign = Campaign.objects.get()
    assert campaign.channel_properties == {
        "MESSENGER_MESSAGING_TYPE": "MESSAGE_TAG",
        "MESSENGER_MESSAGE_TAG": "POST_PURCHASE_UPDATE",
        "MESSENGER_NOTIFICATION_TYPE": "NO_PUSH",
        "INSTAGRAM_MESSAGE_TAG": "HUMAN_AGENT",
        "LINE_VIDEO_TRACKING_ID": "spring-video",
        "MMS_SENDER": "+15550001111",
    }
    form = client.get(change_url(campaign)).context["adminform"].form
    assert form["cp_messenger_message_tag"].value() == "POST_PURCHASE_UPDATE"
    assert form["cp_mms_sender"].value() == "+15550001111"


@pytest.mark.parametrize(
    ("fields", "field", "words"),
    [
        (
            {"cp_messenger_notification_type": "SILENT_PUSH"},
            "cp_messenger_notification_type",
            "Notification (MESSENGER_NOTIFICATION_TYPE) is for Facebook Messenger, "
            "which is not one of this campaign's channels (SMS): add MESSENGER "
            "to the fallback order or clear it.",
        ),
        (
            {"channel": "WHATSAPP", "sms_sender": "MyShop"},
            "sms_sender",
            "SMS sender (SMS_SENDER) is for SMS, which is not one of this "
            "campaign's channels (WhatsApp)",
        ),
        (
            {"cp_sms_max_number_of_message_parts": "0"},
            "cp_sms_max_number_of_message_parts",
            "Ensure this value is greater than or equal to 1.",
        ),
        (
            {"cp_sms_max_number_of_message_parts": "256"},
            "cp_sms_max_number_of_message_parts",
            "Ensure this value is less than or equal to 255.",
        ),
        (
            {"cp_sms_max_number_of_message_parts": "two"},
            "cp_sms_max_number_of_message_parts",
            "Enter a whole number.",
        ),
        (
            {
                "channel_priority_order": "SMS, LINE",
                "cp_line_video_tracking_id": "v" * 101,
            },
            "cp_line_video_tracking_id",
            "at most 100 characters",
        ),
        (
            {
                "channel_priority_order": "SMS, MESSENGER",
                "cp_messenger_message_tag": "FOO",
            },
            "cp_messenger_message_tag",
            "Select a valid choice.",
        ),
        (
            {
                "channel_priority_order": "SMS, MESSENGER",
                "cp_messenger_messaging_type": "RESPONSE",
                "cp_messenger_message_tag": "ACCOUNT_UPDATE",
            },
            "cp_messenger_messaging_type",
            'With a Messenger message tag the messaging type must be "Message tag"',
        ),
        (
            {"channel_priority_order": "SMS, MMS"},
            "cp_mms_sender",
            "MMS sender (MMS_SENDER) is required: Sinch refuses MMS messages "
            "without it.",
        ),
    ],
)
def test_a_bad_property_is_a_clear_error_on_its_field(
    client, marketer, make_template, make_list, fields, field, words
):
    client.force_login(marketer)
    response = client.post(ADD, _form(make_template(), [make_list()], **fields))
    assert response.status_code == 200
    form = response.context["adminform"].form
    assert list(form.errors) == [field]
    assert words in " ".join(form.errors[field])
    # Its section is shown open even for a channel the campaign does not use.
    section = next(fs for fs in response.context["adminform"] if field in fs.fields)
    assert not section.is_collapsible
    assert not Campaign.objects.exists()


def test_properties_sinch_no_longer_accepts_are_shown_on_edit_and_kept_until_removed(
    client, marketer, make_campaign, make_list
):
    stored = {
        "WHATSAPP_DISABLE_LINK_PREVIEW": "true",
        "KAKAO_TALK_SENDER_KEY": "k-123",
        "MESSENGER_NOTIFICATION_TYPE": "LOUD",
        "SMS_FLASH_MESSAGE": "true",
    }
    campaign = make_campaign(lists=[make_list()], channel_properties=stored)
    client.force_login(marketer)

    page = client.get(change_url(campaign))
    assert page.status_code == 200
    html = page.content.decode()
    assert "Stored channel properties Sinch does not accept" in html
    assert "<code>KAKAO_TALK_SENDER_KEY</code> = <code>k-123</code>" in html
    assert "<code>MESSENGER_NOTIFICATION_TYPE</code> = <code>LOUD</code>" in html
    assert re.search(r'type="checkbox" name="drop_unknown_properties"', html)

    data = _as_rendered(page.context["adminform"].form)
    refused = client.post(change_url(campaign), data)
    assert refused.status_code == 200
    errors = refused.context["adminform"].form.non_field_errors()
    assert (
        "Stored channel properties Sinch does not accept: "
        "KAKAO_TALK_SENDER_KEY, MESSENGER_NOTIFICATION_TYPE, "
        "WHATSAPP_DISABLE_LINK_PREVIEW."
    ) in errors[0]
    campaign.refresh_from_db()
    assert campaign.channel_properties == stored  # nothing lost

    removed = client.post(
        change_url(campaign), {**data, "drop_unknown_properties": "on"}
    )
    assert removed.status_code == 302, removed.context["adminform"].form.errors
    campaign.refresh_from_db()
    assert campaign.channel_properties == {"SMS_FLASH_MESSAGE": "true"}


def test_an_sms_sender_kept_in_the_old_json_moves_to_its_field(
    client, marketer, make_campaign, make_list
):
    campaign = make_campaign(
        lists=[make_list()], channel_properties={"SMS_SENDER": "OldShop"}
    )
    client.force_login(marketer)
    page = client.get(change_url(campaign))
    form = page.context["adminform"].form
    assert form["sms_sender"].value() == "OldShop"
    assert "Stored channel properties" not in page.content.decode()
    response = client.post(change_url(campaign), _as_rendered(form))
    assert response.status_code == 302, response.context["adminform"].form.errors
    campaign.refresh_from_db()
    assert (campaign.sms_sender, campaign.channel_properties) == ("OldShop", {})


def test_a_campaign_that_is_no_longer_a_draft_shows_its_properties_read_only(
    client, viewer, make_campaign
):
    campaign = make_campaign(
        sms_sender="MyShop",
        channel_properties={"SMS_FLASH_MESSAGE": "true"},
        status=Campaign.Status.SUBMITTED,
    )
    client.force_login(viewer)
    page = client.get(change_url(campaign))
    assert page.status_code == 200
    html = page.content.decode()
    assert "SMS_FLASH_MESSAGE" in html
    assert "MyShop" in html
