"""Campaign rules, enforced by the model and the scheduling helpers."""

from datetime import UTC, datetime

import pytest
from django.core.exceptions import ValidationError
from django.db.models import ProtectedError

from campaigns.models import Campaign, TemplateParameter
from config.lib.timezones import local_time, send_instant
from sinch import wire

NOW = datetime(2030, 1, 1, 12, 0, tzinfo=UTC)


@pytest.fixture
def template(make_template):
    from_campaign = TemplateParameter.Source.CAMPAIGN
    return make_template(
        "Offer",
        "${greeting} ${first_name}: ${offer} with ${code}",
        parameters={
            "greeting": {"source": from_campaign, "default": "Hello"},
            "offer": {"source": from_campaign},
            "code": {"source": from_campaign},
        },
    )


def _errors(campaign) -> dict[str, list[str]]:
    with pytest.raises(ValidationError) as caught:
        campaign.full_clean()
    return caught.value.message_dict


def test_a_new_campaign_is_a_draft(template):
    campaign = Campaign(
        name="C", template=template, campaign_values={"offer": "1", "code": "2"}
    )
    campaign.full_clean(exclude=["lists"])
    assert campaign.status == Campaign.Status.DRAFT
    assert [s.value for s in Campaign.Status] == [
        "DRAFT",
        "LAUNCHING",
        "SCHEDULED",
        "SUBMITTING",
        "PAUSED",
        "SUBMITTED",
        "COMPLETED",
        "CANCELLED",
        "FAILED",
    ]


def test_missing_campaign_values_are_named_and_defaults_count(template):
    campaign = Campaign(name="C", template=template, campaign_values={"offer": "1"})
    errors = _errors(campaign)["campaign_values"]
    assert "code" in errors[0]
    assert "greeting" not in errors[0]  # it has a default
    assert "offer" not in errors[0]


def test_priority_order_starts_with_the_channel_and_lists_known_channels_once(
    template,
):
    values = {"offer": "1", "code": "2"}
    ok = Campaign(
        name="C",
        template=template,
        campaign_values=values,
        channel="WHATSAPP",
        channel_priority_order=["WHATSAPP", "SMS"],
    )
    ok.full_clean(exclude=["lists"])
    bad = Campaign(
        name="C",
        template=template,
        campaign_values=values,
        channel="SMS",
        channel_priority_order=["WHATSAPP", "FAX", "WHATSAPP"],
    )
    message = " ".join(_errors(bad)["channel_priority_order"])
    assert "FAX" in message
    assert "more than once: WHATSAPP" in message
    assert "start with the campaign's channel, SMS" in message


def test_channel_properties_keys_types_lengths_and_channels(template):
    values = {"offer": "1", "code": "2"}
    limit = wire.CHANNEL_PROPERTY_MAX_LEN
    ok = Campaign(
        name="C",
        template=template,
        campaign_values=values,
        channel_properties={"SMS_SENDER": "x" * limit, "SMS_FLASH_MESSAGE": "true"},
    )
    ok.full_clean(exclude=["lists"])
    bad = Campaign(
        name="C",
        template=template,
        campaign_values=values,
        channel="MMS",
        channel_priority_order=["MMS", "SMS"],
        channel_properties={
            "NOPE": "x",
            "MMS_SENDER": "y" * (limit + 1),
            "SMS_FLASH_MESSAGE": "yes",
            "WHATSAPP_PREVIEW_URL": "false",
        },
    )
    message = " ".join(_errors(bad)["channel_properties"])
    assert "NOPE is not a channel property Sinch accepts" in message
    assert f"(MMS_SENDER) is {limit + 1} characters long; at most {limit}" in message
    assert 'Flash message (SMS_FLASH_MESSAGE) must be "true" or "false"' in message
    assert (
        "Link preview (WHATSAPP_PREVIEW_URL) is for WhatsApp, which is not one "
        "of this campaign's channels (MMS, SMS)"
    ) in message


def test_an_mms_campaign_needs_an_mms_sender(template):
    campaign = Campaign(
        name="C",
        template=template,
        campaign_values={"offer": "1", "code": "2"},
        channel="MMS",
    )
    message = " ".join(_errors(campaign)["channel_properties"])
    assert "MMS sender (MMS_SENDER) is required" in message
    campaign.channel_properties = {"MMS_SENDER": "+15550001111"}
    campaign.full_clean(exclude=["lists"])


def test_an_sms_sender_on_a_campaign_without_sms_is_refused_on_its_field(template):
    campaign = Campaign(
        name="C",
        template=template,
        campaign_values={"offer": "1", "code": "2"},
        channel="WHATSAPP",
        sms_sender="MyShop",
    )
    errors = _errors(campaign)
    assert "channel_properties" not in errors
    assert "is for SMS, which is not one of this campaign's channels" in " ".join(
        errors["sms_sender"]
    )


def test_sms_sender_and_the_sms_sender_property_are_not_both_set(template):
    campaign = Campaign(
        name="C",
        template=template,
        campaign_values={"offer": "1", "code": "2"},
        sms_sender="A",
        channel_properties={"SMS_SENDER": "B"},
    )
    assert "sms_sender" in _errors(campaign)


@pytest.mark.parametrize(
    ("ttl", "ok"),
    [
        (wire.TTL_MIN_S - 1, False),
        (wire.TTL_MIN_S, True),
        (wire.TTL_MAX_S, True),
        (wire.TTL_MAX_S + 1, False),
    ],
)
def test_ttl_within_sinch_bounds(template, ttl, ok):
    campaign = Campaign(
        name="C",
        template=template,
        campaign_values={"offer": "1", "code": "2"},
        ttl_seconds=ttl,
    )
    if ok:
        campaign.full_clean(exclude=["lists"])
    else:
        assert "ttl_seconds" in _errors(campaign)


def test_an_unknown_time_zone_is_refused(template):
    campaign = Campaign(
        name="C",
        template=template,
        campaign_values={"offer": "1", "code": "2"},
        send_time_zone="Europe/Atlantis",
    )
    assert "Europe/Atlantis" in _errors(campaign)["send_time_zone"][0]


def test_send_instant_converts_local_time_to_utc():
    instant = send_instant(datetime(2030, 1, 15, 9, 0), "America/New_York", now=NOW)
    assert instant.astimezone(UTC) == datetime(2030, 1, 15, 14, 0, tzinfo=UTC)
    assert local_time(instant, "America/New_York") == datetime(2030, 1, 15, 9, 0)


def test_send_instant_refuses_past_unknown_and_skipped_times():
    with pytest.raises(ValidationError, match="in the past"):
        send_instant(datetime(2029, 12, 31, 9, 0), "UTC", now=NOW)
    with pytest.raises(ValidationError, match="not a known time zone"):
        send_instant(datetime(2030, 6, 1, 9, 0), "Nowhere/City", now=NOW)
    with pytest.raises(ValidationError, match="does not exist"):
        send_instant(datetime(2030, 3, 10, 2, 30), "America/New_York", now=NOW)


def test_template_in_use_cannot_be_deleted(template, make_campaign):
    make_campaign(template, name="C")
    with pytest.raises(ProtectedError):
        template.delete()
