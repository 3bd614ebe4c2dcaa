"""A campaign follows the channels' rules before it may launch: a channel
template goes only on its own channel, and on WhatsApp a message that is not
a WhatsApp template reaches only people who wrote within 24 hours."""

from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from campaigns.authoring import channel_rules, presend
from campaigns.dispatch import launching
from campaigns.models import InboundMessage, MessageTemplate, Recipient
from contacts.models import ConsentState

IN = ConsentState.OPTED_IN
Kind = MessageTemplate.Kind


def _launch_reasons(campaign) -> str:
    ok, reasons = presend.campaign_can_launch(campaign)
    assert not ok
    return " ".join(reasons)


@pytest.fixture
def whatsapp_people(make_audience):
    def make(**fields):
        return make_audience("Customers", 3, phone="+1415555{:04d}", **fields)

    return make


def _on_whatsapp(contacts_list, purpose="MARKETING"):
    """Give every member of the list a WhatsApp identity, opted in."""
    from contacts.models import ChannelIdentity
    from contacts.services.consent import Evidence, record_consent

    for membership in contacts_list.memberships.select_related("contact"):
        sms = membership.contact.identities.get(channel="SMS")
        identity = ChannelIdentity.objects.create(
            contact=membership.contact, channel="WHATSAPP", identity=sms.identity
        )
        record_consent(
            identity=identity,
            kind="OPT_IN",
            purpose=purpose,
            source="FORM",
            evidence=Evidence(wording="WhatsApp opt-in"),
        )


def test_a_whatsapp_template_on_an_sms_campaign_blocks_the_launch(
    make_whatsapp_template, make_campaign, whatsapp_people, sender
):
    campaign = make_campaign(
        make_whatsapp_template(), [whatsapp_people()], channel="SMS", checked=True
    )
    reasons = _launch_reasons(campaign)
    assert "channel template for WhatsApp" in reasons
    assert "cannot be sent on SMS (the campaign's channel)" in reasons
    with pytest.raises(launching.LaunchError, match="cannot be sent on SMS"):
        launching.launch(campaign, sender)
    campaign.refresh_from_db()
    assert campaign.status == campaign.Status.DRAFT


def test_sms_as_a_fallback_of_a_whatsapp_template_blocks_the_launch(
    make_whatsapp_template, make_campaign, whatsapp_people, sender
):
    people = whatsapp_people()
    _on_whatsapp(people)
    campaign = make_campaign(
        make_whatsapp_template(),
        [people],
        channel="WHATSAPP",
        channel_priority_order=["WHATSAPP", "SMS"],
        checked=True,
    )
    assert "cannot be sent on SMS (a fallback)" in _launch_reasons(campaign)
    with pytest.raises(launching.LaunchError):
        launching.launch(campaign, sender)

    campaign.channel_priority_order = ["WHATSAPP"]
    campaign.save()
    presend.run_presend_check(campaign)
    campaign.refresh_from_db()
    assert presend.campaign_can_launch(campaign) == (True, [])


@pytest.mark.parametrize(
    ("kind", "fields"),
    [
        (Kind.TEXT, {}),
        (Kind.MEDIA, {"media_url": "https://img.test/a.png"}),
        (Kind.CARD, {"title": "Sale"}),
        (Kind.CHOICE, {"choices": "Yes\nNo"}),
    ],
)
def test_a_free_form_message_on_whatsapp_is_blocked_with_the_24_hour_rule(
    make_template, make_campaign, whatsapp_people, sender, kind, fields
):
    people = whatsapp_people()
    _on_whatsapp(people)
    template = make_template("Offer", kind=kind, **fields)
    campaign = make_campaign(template, [people], channel="WHATSAPP", checked=True)
    assert campaign.presend["ok"] == 3  # every recipient passes on their own
    reasons = _launch_reasons(campaign)
    assert f"its message is a {kind.lower()} message" in reasons
    assert "only to people who wrote to you in the last 24 hours" in reasons
    assert "Use a WhatsApp template" in reasons
    # A check stored before does not let the launch through.
    with pytest.raises(launching.LaunchError, match="24 hours"):
        launching.launch(campaign, sender)


def test_any_future_message_kind_counts_as_free_form(make_campaign, make_template):
    campaign = make_campaign(make_template(), channel="WHATSAPP")
    listing = {"list_message": {"title": "Menu", "sections": []}}
    problems = channel_rules.campaign_problems(campaign, listing)
    assert "its message is a list message" in problems[0]


def test_whatsapp_as_a_fallback_of_a_text_campaign_is_blocked(
    make_campaign, make_template, whatsapp_people
):
    campaign = make_campaign(
        make_template(),
        [whatsapp_people()],
        channel="SMS",
        channel_priority_order=["SMS", "WHATSAPP"],
        checked=True,
    )
    reasons = _launch_reasons(campaign)
    assert "WhatsApp is a fallback channel of this campaign" in reasons
    assert "take WhatsApp out of the fallback order" in reasons


def test_the_window_hours_come_from_the_setting(make_campaign, make_template, settings):
    settings.WHATSAPP_WINDOW_HOURS = 12
    campaign = make_campaign(make_template(), channel="WHATSAPP")
    assert "in the last 12 hours" in channel_rules.campaign_problems(campaign)[0]


def test_the_launch_page_explains_the_24_hour_rule(
    client, make_campaign, make_template, whatsapp_people, sender
):
    people = whatsapp_people()
    _on_whatsapp(people)
    campaign = make_campaign(
        make_template(), [people], channel="WHATSAPP", checked=True
    )
    client.force_login(sender)
    page = client.get(reverse("admin:campaigns_campaign_launch", args=[campaign.pk]))
    html = page.content.decode()
    assert 'id="launch-problems"' in html
    assert "customer-service window" in html
    assert 'id="launch-button"' not in html
    preview = client.get(
        reverse("admin:campaigns_campaign_preview", args=[campaign.pk])
    )
    assert "customer-service window" in preview.content.decode()


def test_a_template_saved_with_bare_keys_before_the_rule_blocks_at_the_check(
    make_whatsapp_template, make_campaign, whatsapp_people
):
    people = whatsapp_people()
    _on_whatsapp(people)
    template = make_whatsapp_template()
    MessageTemplate.objects.filter(pk=template.pk).update(
        template_parameters={"1": "${first_name}"}, template_language=""
    )
    template.refresh_from_db()
    campaign = make_campaign(template, [people], channel="WHATSAPP", checked=True)
    reasons = _launch_reasons(campaign)
    assert "use body[1]text for the body's first parameter" in reasons
    assert "The WhatsApp template has no language" in reasons


@pytest.fixture
def ann_ben_cid(make_contact, make_list):
    people = make_list("Buyers")
    now = timezone.now()
    found = {}
    for name, wrote in (("Ann", 2), ("Ben", 30), ("Cid", None)):
        contact = make_contact(
            channel="WHATSAPP",
            consent=IN,
            purpose="TRANSACTIONAL",
            lists=[people],
            first_name=name,
        )
        if wrote is not None:
            InboundMessage.objects.create(
                received_at=now - timedelta(hours=wrote),
                channel="WHATSAPP",
                identity=contact.identities.get().identity,
                contact=contact,
                text="Where is my parcel?",
            )
        found[name] = contact
    return people, found


def test_a_transactional_campaign_reaches_only_who_wrote_within_the_window(
    ann_ben_cid,
    make_campaign,
    make_template,
    sender,
    django_capture_on_commit_callbacks,
):
    people, _ = ann_ben_cid
    campaign = make_campaign(
        make_template("Shipped", "Your order shipped, ${first_name}"),
        [people],
        channel="WHATSAPP",
        purpose="TRANSACTIONAL",
        whatsapp_window_only=True,
        checked=True,
    )
    summary = campaign.presend
    assert (summary["ok"], summary["excluded"]) == (1, 2)
    label = "outside WhatsApp's 24-hour window (no WhatsApp message from them in time)"
    assert summary["excluded_by_reason"] == {label: 2}
    excluded = summary["excluded_problems"]["outside_whatsapp_window"]["examples"]
    assert {e["name"] for e in excluded} == {"Ben", "Cid"}
    assert presend.campaign_can_launch(campaign) == (True, [])

    with django_capture_on_commit_callbacks(execute=False):
        launching.launch(campaign, sender)
    recipients = {
        r.contact.first_name: r
        for r in Recipient.objects.filter(campaign=campaign).select_related("contact")
    }
    assert recipients["Ann"].status == Recipient.Status.PENDING
    for name in ("Ben", "Cid"):
        assert recipients[name].status == Recipient.Status.EXCLUDED
        assert recipients[name].reason == label


def test_the_window_is_counted_back_from_a_later_send_time(
    ann_ben_cid, make_campaign, make_template
):
    people, _ = ann_ben_cid
    campaign = make_campaign(
        make_template("Shipped", "Your order shipped"),
        [people],
        channel="WHATSAPP",
        purpose="TRANSACTIONAL",
        whatsapp_window_only=True,
        send_at=timezone.now() + timedelta(hours=23),
        checked=True,
    )
    # Ann wrote 2 hours ago: her window closes 22 hours from now.
    assert (campaign.presend["ok"], campaign.presend["excluded"]) == (0, 3)


def test_only_a_transactional_campaign_may_use_the_window(make_campaign, make_template):
    from django.core.exceptions import ValidationError

    campaign = make_campaign(
        make_template(), channel="WHATSAPP", whatsapp_window_only=True
    )
    with pytest.raises(ValidationError) as info:
        campaign.full_clean()
    assert "Only a transactional campaign" in str(
        info.value.message_dict["whatsapp_window_only"]
    )
    assert "24 hours" in channel_rules.campaign_problems(campaign)[0]


def test_the_freeze_refuses_a_campaign_launched_before_the_rule(
    make_campaign, make_template, whatsapp_people, sender
):
    from campaigns import transitions
    from campaigns.authoring.rendering import freeze_message
    from campaigns.dispatch import freeze

    people = whatsapp_people()
    _on_whatsapp(people)
    campaign = make_campaign(make_template(), [people], channel="WHATSAPP")
    # As a launch before this rule did: LAUNCHING with the message frozen.
    assert transitions.launch(
        campaign, sender, now=timezone.now(), summary="Launched", details={}
    )
    campaign.refresh_from_db()
    freeze_message(campaign)

    freeze.freeze_recipients(campaign.pk)
    campaign.refresh_from_db()
    assert campaign.status == campaign.Status.FAILED
    assert "Not sent: This campaign is sent on WhatsApp" in campaign.status_reason
    assert "24 hours" in campaign.status_reason
    assert not Recipient.objects.filter(campaign=campaign).exists()
