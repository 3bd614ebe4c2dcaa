"""Replies and consent from Sinch callbacks (issue 11, points 4a, 6, 7, 8):
opt-outs win over opt-ins that are not older, Sinch's numbers are read as
international, stop words count inside a sentence or on a button, replies that
read like an opt-out are flagged for review, and each reply is linked to the
campaign it answers."""

import json
import re
import secrets
import time
from datetime import UTC, datetime, timedelta

import pytest
from django.contrib.admin.models import LogEntry
from django.urls import reverse
from django.utils import timezone

from campaigns import counters
from campaigns.models import Batch, Campaign, InboundMessage, Recipient, WebhookEvent
from campaigns.tracking import inbox, receipts
from contacts.models import ChannelIdentity, ConsentEvent, ConsentState
from contacts.phones import normalise_identity
from sinch import signatures
from sinch.simulator import events
from tests.sinch.conftest import ACCOUNT, WEBHOOK_SECRET

IN, OUT = ConsentState.OPTED_IN, ConsentState.OPTED_OUT
PHONE = "+14155550101"
R = Recipient.Status


# --- feeding callbacks: signed, over the webhook, then processed -------------------


def post_signed(client, payload: dict):
    """The callback as Sinch sends it: signed, POSTed to the webhook."""
    body = events.dumps(payload)
    response = client.generic(
        "POST",
        "/webhooks/sinch",
        body,
        content_type="application/json",
        headers=signatures.sign(body, WEBHOOK_SECRET),
    )
    assert response.status_code == 200, response.content
    return WebhookEvent.objects.latest("pk")


def message(
    text: str = "",
    identity: str = PHONE,
    *,
    at: datetime | None = None,
    batch_id: str = "",
    contact_message: dict | None = None,
    channel: str = "SMS",
) -> dict:
    payload = events.inbound(
        ACCOUNT,
        message_id=f"01REPLY{secrets.token_hex(8)}",
        channel=channel,
        identity=identity,
        text=text,
        sender_id="",
        conversation_metadata=json.dumps({"_batch_id": batch_id}) if batch_id else "",
        mode="DISPATCH",
        now=(at or timezone.now()).timestamp(),
    )
    if contact_message is not None:
        payload["message"]["contact_message"] = contact_message
    return payload


def process():
    return dict(receipts.process_pending())


@pytest.fixture
def wakes(monkeypatch):
    monkeypatch.setattr(inbox, "queue_processor", lambda: None)


@pytest.fixture
def olga(make_contact, wakes):
    return make_contact(PHONE, consent=IN, first_name="Olga")


def consent_of(contact) -> str:
    return ChannelIdentity.objects.get(contact=contact).marketing_consent


# --- 4a: an opt-out always wins over an opt-in that is not older --------------------


FAR_FUTURE = datetime(2099, 1, 1, tzinfo=UTC)


def test_a_signed_start_dated_2099_followed_by_a_stop_leaves_the_number_opted_out(
    client, olga
):
    consent_note = events.consent_notification(
        ACCOUNT,
        kind="OPT_IN",
        request_id="req-2099",
        channel="SMS",
        identity=PHONE,
        mode="DISPATCH",
        now=FAR_FUTURE.timestamp(),
    )
    post_signed(client, consent_note)
    post_signed(client, message("START", at=FAR_FUTURE))
    process()
    assert consent_of(olga) == IN
    start = ConsentEvent.objects.filter(kind="OPT_IN").latest("pk")
    assert start.occurred_at <= timezone.now()  # 2099 counts as received
    assert "2099" in start.evidence_note  # the claimed date is kept as evidence

    post_signed(client, message("STOP"))
    process()
    assert consent_of(olga) == OUT


def test_an_admin_opt_out_after_a_future_dated_start_is_really_recorded(
    client, olga, compliance_admin
):
    post_signed(client, message("START", at=FAR_FUTURE))
    process()
    identity = ChannelIdentity.objects.get(contact=olga)
    client.force_login(compliance_admin)
    response = client.post(
        reverse("admin:contacts_contact_record_consent", args=[olga.pk]),
        {
            "identity": identity.pk,
            "kind": "OPT_OUT",
            "purpose": "MARKETING",
            "source": "ADMIN",
            "occurred_at": timezone.localtime().strftime("%Y-%m-%d %H:%M:%S"),
            "evidence_wording": "Asked us by phone to stop",
            "evidence_note": "call 12 May",
        },
        follow=True,
    )
    assert consent_of(olga) == OUT
    said = [str(m) for m in response.context["messages"]]
    assert any("now opted out" in m for m in said), said


def test_an_admin_opt_in_that_loses_to_an_opt_out_is_not_reported_as_done(
    client, olga, compliance_admin
):
    post_signed(client, message("STOP"))
    process()
    identity = ChannelIdentity.objects.get(contact=olga)
    client.force_login(compliance_admin)
    an_hour_ago = timezone.localtime() - timedelta(hours=1)
    response = client.post(
        reverse("admin:contacts_contact_record_consent", args=[olga.pk]),
        {
            "identity": identity.pk,
            "kind": "OPT_IN",
            "purpose": "MARKETING",
            "source": "FORM",
            "occurred_at": an_hour_ago.strftime("%Y-%m-%d %H:%M:%S"),
            "evidence_wording": "Signed up at the counter",
            "evidence_note": "paper form",
        },
        follow=True,
    )
    assert consent_of(olga) == OUT
    said = [str(m) for m in response.context["messages"]]
    assert any("now opted out" in m and "wins" in m for m in said), said


# --- 6: Sinch's numbers are international digits without "+" -----------------------


def test_with_region_de_a_stop_from_a_us_number_opts_out_that_us_number(
    client, make_contact, settings, wakes
):
    settings.PHONE_DEFAULT_REGION = "DE"
    american = make_contact("+15123456789", consent=IN)
    post_signed(client, message("STOP", "+15123456789"))  # sent as "15123456789"
    assert '"15123456789"' in WebhookEvent.objects.get().body
    process()
    assert consent_of(american) == OUT
    assert not ChannelIdentity.objects.filter(identity="+4915123456789").exists()
    assert InboundMessage.objects.get().contact == american


@pytest.mark.parametrize(
    ("region", "digits", "number"),
    [
        ("DE", "15123456789", "+15123456789"),  # US, also a German mobile
        ("US", "4915123456789", "+4915123456789"),  # Germany
        ("GB", "33612345678", "+33612345678"),  # France
        ("FR", "447911123456", "+447911123456"),  # United Kingdom
        ("DE", "5511987654321", "+5511987654321"),  # Brazil
        ("US", "919876543210", "+919876543210"),  # India
        ("BR", "61412345678", "+61412345678"),  # Australia
    ],
)
def test_sinch_identities_are_read_as_international_numbers_in_any_region(
    client, make_contact, settings, wakes, region, digits, number
):
    settings.PHONE_DEFAULT_REGION = region
    person = make_contact(number, consent=IN)
    post_signed(client, message("STOP", digits))
    process()
    assert consent_of(person) == OUT
    assert ChannelIdentity.objects.count() == 1


def test_digits_that_are_no_international_number_are_read_in_the_region(settings):
    settings.PHONE_DEFAULT_REGION = "DE"
    # "+015..." is no number: the national reading is the only one.
    assert (
        normalise_identity("SMS", "015123456789", international=True)
        == "+4915123456789"
    )
    # What people type (imports, the admin) still reads in the region first.
    assert normalise_identity("SMS", "15123456789") == "+4915123456789"


# --- 7: opt-out wording --------------------------------------------------------------


@pytest.mark.parametrize(
    "text",
    [
        "stop please",
        "STOP!!! no more",
        "Please unsubscribe me",
        "I want to opt-out",
        "quit it",
        "cancel",
        "The END.",
        "Baja por favor",
        "Bitte abmelden",
    ],
)
def test_a_reply_containing_a_stop_word_opts_out(client, olga, text):
    post_signed(client, message(text))
    process()
    assert consent_of(olga) == OUT
    reply = InboundMessage.objects.get()
    assert (reply.keyword, reply.review) == ("STOP", "")
    assert ConsentEvent.objects.get(kind="OPT_OUT").evidence_wording == text


def test_a_stop_reply_reaches_the_segment_facts(client, olga):
    from contacts import segment_facts
    from contacts.models import Contact

    post_signed(client, message("STOP"))
    process()
    facts = Contact.objects.get(pk=olga.pk).segment_facts
    assert "|SMS:MARKETING:OPTED_OUT|" in facts
    assert "OPTED_IN" not in facts
    assert segment_facts.drift() == []


def test_exact_matching_keeps_sentences_as_replies_flagged_for_review(
    client, olga, settings
):
    settings.INBOUND_STOP_MATCH = "exact"
    post_signed(client, message("stop please"))
    post_signed(client, message("Stop"))
    process()
    flagged, stop = InboundMessage.objects.order_by("pk")
    assert (flagged.keyword, flagged.review) == ("", "PENDING")
    assert stop.keyword == "STOP"
    assert ConsentEvent.objects.filter(kind="OPT_OUT").count() == 1


@pytest.mark.parametrize(
    "contact_message",
    [
        {"choice_response_message": {"message_id": "01X", "postback_data": "STOP"}},
        {"choice_response_message": {"postback_data": "unsubscribe_marketing"}},
        {"choice_response_message": {"title": "Stop", "postback_data": "btn-2"}},
        {"choice_response_message": {"reply": {"title": "Stop", "id": "b2"}}},
        {
            "channel_specific_message": {
                "message_type": "button",
                "message": {"button": {"text": "Stop promotions", "payload": "p"}},
            }
        },
        {"reply_message": {"text": "OPT OUT"}},
        {"text_message": {"text": "Stop"}},  # a WhatsApp button sent as its title
    ],
)
def test_a_quick_reply_or_button_answer_that_is_a_stop_word_opts_out(
    client, olga, contact_message
):
    post_signed(client, message(contact_message=contact_message, channel="WHATSAPP"))
    process()
    assert ChannelIdentity.objects.get(contact=olga, channel="SMS")  # untouched
    reply = InboundMessage.objects.get()
    assert reply.keyword == "STOP"
    assert ConsentEvent.objects.filter(kind="OPT_OUT").count() == 1


def test_a_button_answer_never_opts_anyone_in(client, olga):
    post_signed(client, message("STOP"))
    process()
    post_signed(
        client,
        message(
            contact_message={"choice_response_message": {"postback_data": "START"}}
        ),
    )
    process()
    assert consent_of(olga) == OUT
    assert InboundMessage.objects.latest("pk").text == "Button: START"


@pytest.mark.parametrize(
    "text", ["remove me", "No more texts!", "don't text me", "Take me off your list"]
)
def test_a_reply_that_reads_like_an_opt_out_is_flagged_for_review(client, olga, text):
    post_signed(client, message(text))
    post_signed(client, message("Do you have it in blue?"))
    process()
    assert consent_of(olga) == IN
    flagged, ordinary = InboundMessage.objects.order_by("pk")
    assert (flagged.keyword, flagged.review) == ("", "PENDING")
    assert ordinary.review == ""


@pytest.fixture
def flagged(client, olga):
    post_signed(client, message("no more texts please"))
    post_signed(client, message("Do you have it in blue?"))
    process()
    return InboundMessage.objects.get(review="PENDING")


def test_compliance_finds_replies_to_review_from_the_admin_home_and_a_filter(
    client, flagged, compliance_admin
):
    client.force_login(compliance_admin)
    home = client.get(reverse("admin:index")).content.decode()
    assert re.search(r"1 reply needs review", home)
    listed = client.get(
        reverse("admin:campaigns_inboundmessage_changelist") + "?review__exact=PENDING"
    ).content.decode()
    assert "no more texts please" in listed
    assert "Do you have it in blue?" not in listed


def test_one_click_records_the_opt_out_with_the_reply_as_evidence(
    client, flagged, olga, compliance_admin
):
    client.force_login(compliance_admin)
    url = reverse("admin:campaigns_inboundmessage_record_opt_out", args=[flagged.pk])
    page = client.get(
        reverse("admin:campaigns_inboundmessage_change", args=[flagged.pk])
    )
    assert url in page.content.decode()
    assert client.get(url).status_code == 405  # POST only
    assert consent_of(olga) == IN

    client.post(url)
    assert consent_of(olga) == OUT
    entry = ConsentEvent.objects.get(kind="OPT_OUT")
    assert entry.evidence_wording == "no more texts please"
    assert (entry.source, entry.actor) == ("ADMIN", compliance_admin)
    assert f"reply #{flagged.pk}" in entry.evidence_note
    assert entry.occurred_at == flagged.received_at
    flagged.refresh_from_db()
    assert flagged.review == "OPTED_OUT"
    assert LogEntry.objects.filter(object_id=str(flagged.pk)).exists()
    home = client.get(reverse("admin:index")).content.decode()
    assert "0 replies need review" in home
    client.post(url)  # twice: nothing more recorded
    assert ConsentEvent.objects.filter(kind="OPT_OUT").count() == 1


def test_only_who_may_record_consent_records_an_opt_out_from_a_reply(
    client, flagged, olga, viewer, marketer
):
    url = reverse("admin:campaigns_inboundmessage_record_opt_out", args=[flagged.pk])
    for person in (viewer, marketer):
        client.force_login(person)
        assert client.post(url).status_code == 403
    assert consent_of(olga) == IN


# --- 8: replies are linked to the campaign they answer -----------------------------


@pytest.fixture
def sent(make_template, make_campaign, olga):
    """Two campaigns handed to Sinch with Olga in each, the second one later."""

    def send(name, sinch_batch_id, status=R.DELIVERED):
        campaign = make_campaign(
            make_template(name, "Hi"), name=name, status=Campaign.Status.SUBMITTED
        )
        batch = Batch.objects.create(
            campaign=campaign,
            sequence=1,
            size=1,
            metadata_key=f"key-{name}",
            status=Batch.Status.ACCEPTED,
            sinch_batch_id=sinch_batch_id,
        )
        Recipient.objects.create(
            campaign=campaign,
            batch=batch,
            index=0,
            contact=olga,
            identity=PHONE,
            status=status,
        )
        counters.add(campaign.pk, {status: 1})
        return campaign

    return send("Spring", "01BATCHSPRING"), send("Summer", "01BATCHSUMMER")


def test_a_reply_is_linked_through_the_batch_id_sinch_returns(client, sent):
    spring, _ = sent
    post_signed(client, message("stop", batch_id="01BATCHSPRING"))
    process()
    reply = InboundMessage.objects.get()
    assert (reply.campaign, reply.campaign_inferred) == (spring, False)


def test_a_batch_id_in_the_messages_own_metadata_links_it_too(client, sent):
    spring, _ = sent
    payload = message("Thanks")
    payload["message"]["metadata"] = json.dumps({"_batch_id": "01BATCHSPRING"})
    post_signed(client, payload)
    process()
    reply = InboundMessage.objects.get()
    assert (reply.campaign, reply.campaign_inferred) == (spring, False)


def test_without_a_batch_id_the_last_campaign_delivered_is_inferred(client, sent):
    _, summer = sent
    post_signed(client, message("Nice!"))
    post_signed(client, message("and this?", batch_id="01UNKNOWNBATCH"))
    process()
    for reply in InboundMessage.objects.all():
        assert (reply.campaign, reply.campaign_inferred) == (summer, True)


def test_no_campaign_is_inferred_beyond_the_attribution_window(client, sent, settings):
    Recipient.objects.update(updated_at=timezone.now() - timedelta(days=4))
    post_signed(client, message("Nice!"))
    process()
    assert InboundMessage.objects.get().campaign is None
    settings.REPLY_ATTRIBUTION_DAYS = 5
    post_signed(client, message("Again"))
    process()
    assert InboundMessage.objects.latest("pk").campaign_inferred is True


def test_the_dashboard_counts_the_replies_and_opt_outs_a_campaign_caused(
    client, sent, marketer
):
    spring, _ = sent
    post_signed(client, message("STOP please", batch_id="01BATCHSPRING"))
    post_signed(client, message("remove me", batch_id="01BATCHSPRING"))
    post_signed(client, message("Lovely", batch_id="01BATCHSPRING"))
    post_signed(client, message("Thanks", batch_id="01BATCHSUMMER"))
    process()
    client.force_login(marketer)
    page = client.get(
        reverse("admin:campaigns_campaign_dashboard", args=[spring.pk])
    ).content.decode()
    section = page[page.index('id="replies"') : page.index('id="batches"')]
    numbers = re.findall(r'<span class="n">(\d+)</span>', section)
    assert numbers == ["3", "1", "1"]  # replies, opted out, need review


def wait_until_no_callback_arrives(control, deadline: float) -> None:
    """Wait until the simulator has sent nothing for half a second: the
    test then processes a settled set of events."""
    last, since = None, time.monotonic()
    while time.monotonic() - since < 0.5:
        sent = control.state()["callbacks"]
        seen = (len(sent), sent[-1] if sent else None)
        if seen != last:
            last, since = seen, time.monotonic()
        assert time.monotonic() < deadline
        time.sleep(0.05)


def test_a_reply_through_the_simulator_is_linked_to_the_campaign_it_answers(
    launched_campaign, sinch, control, live_server, monkeypatch
):
    """A campaign goes to the simulator; a customer answers "stop please" over
    the simulator, which signs the callback and POSTs it to the webhook."""
    monkeypatch.setattr(inbox, "queue_processor", lambda: None)
    control.knobs(
        webhook_url=live_server.url + "/webhooks/sinch", processing_mode="CONVERSATION"
    )
    campaign = launched_campaign()
    customer = campaign.recipients.exclude(status=R.EXCLUDED).first()
    deadline = time.monotonic() + 10
    while not any(
        m["identity"] == customer.identity for m in control.state()["messages"]
    ):
        assert time.monotonic() < deadline
        time.sleep(0.05)
    control.post("inbound", identity=customer.identity, text="stop please")
    while not any(
        c["kind"] == "MESSAGE_INBOUND" and c["http_status"] == 200
        for c in control.state()["callbacks"]
    ):
        assert time.monotonic() < deadline
        time.sleep(0.05)
    wait_until_no_callback_arrives(control, deadline + 10)
    process()
    reply = InboundMessage.objects.get()
    assert (reply.campaign_id, reply.campaign_inferred) == (campaign.pk, False)
    assert reply.keyword == "STOP"
    identity = ChannelIdentity.objects.get(identity=customer.identity)
    assert identity.marketing_consent == OUT
