"""Channel properties on the way to Sinch: a campaign whose stored properties
Sinch would refuse does not launch, and the batches carry the properties."""

import json

import pytest

from campaigns.dispatch import launching
from campaigns.models import Campaign
from sinch.client import get_sinch_client


def test_a_campaign_with_properties_sinch_would_refuse_does_not_launch(
    launchable_campaign, sender
):
    # Saved before the registry followed Sinch's enum (no clean() on update).
    Campaign.objects.filter(pk=launchable_campaign.pk).update(
        channel_properties={"WHATSAPP_DISABLE_LINK_PREVIEW": "true"}
    )
    launchable_campaign.refresh_from_db()
    with pytest.raises(launching.LaunchError) as caught:
        launching.launch(launchable_campaign, sender)
    assert (
        "Channel properties: WHATSAPP_DISABLE_LINK_PREVIEW is not a channel "
        "property Sinch accepts. Edit the campaign."
    ) in caught.value.problems
    launchable_campaign.refresh_from_db()
    assert launchable_campaign.status == Campaign.Status.DRAFT


def test_every_batch_carries_the_campaigns_properties_to_sinch(
    make_launchable, sender, sinch, django_capture_on_commit_callbacks
):
    campaign = make_launchable(
        sms_sender="MyShop",
        channel_properties={
            "SMS_FLASH_MESSAGE": "true",
            "SMS_MAX_NUMBER_OF_MESSAGE_PARTS": "3",
        },
    )
    sent = []
    get_sinch_client().transport.session.hooks["response"].append(
        lambda response, *args, **kwargs: sent.append(response)
    )
    with django_capture_on_commit_callbacks(execute=True):
        launching.launch(campaign, sender)
    campaign.refresh_from_db()
    assert campaign.status == Campaign.Status.SUBMITTED
    sends = [
        json.loads(r.request.body)
        for r in sent
        if r.request.method == "POST" and r.request.url.endswith("/messages")
    ]
    assert sends
    assert all(r.ok for r in sent)  # Sinch (the simulator) took every one
    for body in sends:
        assert body["channel_properties"] == {
            "SMS_FLASH_MESSAGE": "true",
            "SMS_MAX_NUMBER_OF_MESSAGE_PARTS": "3",
            "SMS_SENDER": "MyShop",
        }
