"""Test send: the campaign to its seed list, now, as one real batch (issue 4.5).

The real client talks over HTTP to a real simulator on an ephemeral port;
what Sinch received is read back from the simulator's own state.
"""

import json
import time

import pytest
from django.db import connection
from django.urls import reverse
from django.utils import timezone

from campaigns import counters
from campaigns.dispatch import batch_request, test_send
from campaigns.models import Batch, Campaign, MessageTemplate, Recipient
from contacts.models import AuditEvent, ConsentState, Contact
from sinch import client as sinch_client
from sinch.client import get_sinch_client
from sinch.config import (
    SIMULATOR_KEY_ID,
    SIMULATOR_KEY_SECRET,
    SIMULATOR_PROJECT_ID,
)
from tests.sinch.conftest import make_client

IN, OUT = ConsentState.OPTED_IN, ConsentState.OPTED_OUT
S = Recipient.Status


# --- fixtures ---


@pytest.fixture
def template(make_template):
    return make_template("Spring sale", "Hi ${first_name}, your code is ${code}")


@pytest.fixture
def seed(make_list):
    return make_list("Seed: marketing team", seed=True)


@pytest.fixture
def customers(make_list, make_contact):
    customers = make_list("Customers")
    make_contact(
        "+14155550999", consent=IN, lists=[customers], attributes={"code": "C"}
    )
    return customers


@pytest.fixture
def campaign(make_campaign, template, seed, customers):
    return make_campaign(
        template,
        [customers],
        "Spring",
        seed_list=seed,
        ttl_seconds=3600,
        sms_sender="MyShop",
    )


@pytest.fixture
def members(make_contact, seed):
    """The seed list: two colleagues who can receive it, and one per rule."""
    made = {
        "anna": make_contact(
            "+14155550201", consent=IN, lists=[seed], first_name="Anna",
            attributes={"code": "A-1"},
        ),
        "ben": make_contact(
            "+14155550202", consent=IN, lists=[seed], first_name="Ben",
            attributes={"code": "B-2"},
        ),
        "opted_out": make_contact(
            "+14155550203", consent=OUT, lists=[seed], attributes={"code": "x"}
        ),
        "no_consent": make_contact(
            "+14155550204", lists=[seed], attributes={"code": "x"}
        ),
        "no_code": make_contact("+14155550205", consent=IN, lists=[seed]),
        "erased": make_contact(
            "+14155550206", consent=IN, lists=[seed], attributes={"code": "x"}
        ),
        # Anna's number again, written differently.
        "anna_again": make_contact(
            "+1 415 555 0201", consent=IN, lists=[seed], attributes={"code": "x"}
        ),
        "whatsapp_only": make_contact(
            "+14155550208", channel="WHATSAPP", consent=IN, lists=[seed],
            attributes={"code": "x"},
        ),
    }  # fmt: skip
    Contact.objects.filter(pk=made["erased"].pk).update(erased_at=timezone.now())
    return made


EXCLUDED_REASONS = {
    "opted_out": "opted out",
    "no_consent": "no consent record",
    "no_code": "no value for ${code}",
    "erased": "contact erased",
    "anna_again": "duplicate identity",
    "whatsapp_only": "no SMS identity",
}


def messages_at_sinch(control, batch_id: str, count: int) -> list[dict]:
    """The messages the simulator generated for the batch (waits for them)."""
    deadline = time.monotonic() + 5
    while True:
        found = control.state(batch_id=batch_id)["messages"]
        if len(found) >= count:
            return found
        assert time.monotonic() < deadline, f"only {len(found)} messages: {found}"
        time.sleep(0.02)


def batches_at_sinch(control) -> list[dict]:
    return control.state()["batches"]


# --- sending ---


def test_the_seed_list_gets_one_real_batch_with_each_persons_values(
    sinch, control, campaign, members, marketer
):
    result = test_send.send_test(campaign, marketer)

    assert result.ok, result.message
    batch = result.batch
    batch.refresh_from_db()
    assert batch.is_test
    assert batch.sequence == 1
    assert batch.status == Batch.Status.ACCEPTED
    assert batch.sinch_batch_id
    assert batch.submitted_at
    assert batch.send_after
    assert batch.size == 2
    assert batch.requested_by == marketer
    assert batch.sinch_batch_id in result.message

    [remote] = batches_at_sinch(control)
    assert remote["batch_id"] == batch.sinch_batch_id
    assert remote["size"] == 2
    assert remote["meta_data"] == {
        batch_request.BATCH_KEY: batch.metadata_key,
        batch_request.CAMPAIGN_KEY: str(campaign.pk),
        batch_request.TEST_KEY: "1",
    }
    rows = {r.contact_id: r for r in batch.recipients.all()}
    sent = messages_at_sinch(control, batch.sinch_batch_id, 2)
    by_identity = {m["identity"]: m for m in sent}
    assert set(by_identity) == {"+14155550201", "+14155550202"}
    anna = by_identity["+14155550201"]
    assert anna["rendered"] == {"text_message": {"text": "Hi Anna, your code is A-1"}}
    assert by_identity["+14155550202"]["rendered"]["text_message"]["text"] == (
        "Hi Ben, your code is B-2"
    )
    # A receipt finds its Recipient row by the metadata Sinch echoes.
    metadata = json.loads(anna["metadata"])
    assert metadata[batch_request.RECIPIENT_KEY] == str(rows[members["anna"].pk].pk)
    assert metadata[batch_request.CAMPAIGN_KEY] == str(campaign.pk)
    assert metadata["_batch_id"] == batch.sinch_batch_id
    assert anna["index"] == rows[members["anna"].pk].index

    anna_row = rows[members["anna"].pk]
    assert anna_row.status == S.SUBMITTED
    assert anna_row.is_test
    assert anna_row.identity == "+14155550201"
    assert anna_row.parameters == {"first_name": "Anna", "code": "A-1"}
    assert sorted(r.index for r in rows.values() if r.status == S.SUBMITTED) == [0, 1]

    # After a lost answer, the batch is found at Sinch by its metadata.
    [found] = get_sinch_client().batches_by_metadata(
        batch_request.BATCH_KEY, batch.metadata_key
    )
    assert found.batch_id == batch.sinch_batch_id


def test_people_the_rules_exclude_are_recorded_with_their_reason_and_not_sent(
    sinch, control, campaign, members, marketer
):
    result = test_send.send_test(campaign, marketer)

    assert result.ok
    excluded = {
        r.contact_id: r
        for r in result.batch.recipients.filter(status=S.EXCLUDED, is_test=True)
    }
    assert {
        key: excluded[members[key].pk].reason for key in EXCLUDED_REASONS
    } == EXCLUDED_REASONS
    assert all(r.index is None for r in excluded.values())
    sent = messages_at_sinch(control, result.batch.sinch_batch_id, 2)
    assert len(sent) == 2
    assert control.state()["counters"]["recipients_accepted"] == 2
    assert "+14155550203" not in {m["identity"] for m in sent}  # opted out
    # The campaign's audience (not the seed list) is not touched.
    assert "+14155550999" not in {m["identity"] for m in sent}


def test_an_opted_out_colleague_is_never_sent_a_test(
    sinch, control, campaign, seed, make_contact, marketer
):
    make_contact("+14155550301", consent=IN, lists=[seed], attributes={"code": "1"})
    make_contact("+14155550302", consent=OUT, lists=[seed], attributes={"code": "2"})

    result = test_send.send_test(campaign, marketer)

    sent = messages_at_sinch(control, result.batch.sinch_batch_id, 1)
    assert [m["identity"] for m in sent] == ["+14155550301"]
    assert result.plan.excluded_by_reason == {"opted out": 1}


def test_a_second_test_send_is_a_new_batch_with_its_own_metadata(
    sinch, control, campaign, members, marketer
):
    first = test_send.send_test(campaign, marketer)
    second = test_send.send_test(campaign, marketer)

    assert (first.batch.sequence, second.batch.sequence) == (1, 2)
    assert first.batch.metadata_key != second.batch.metadata_key
    assert len(batches_at_sinch(control)) == 2


def test_the_frozen_message_is_sent_once_the_campaign_has_one(
    sinch, control, campaign, members, marketer
):
    campaign.message_snapshot = {
        "version": 1,
        "message": {"text_message": {"text": "Frozen: ${code}"}},
        "parameters": [{"name": "code", "source": "ATTRIBUTE"}],
        "campaign_values": {},
    }
    campaign.save()
    MessageTemplate.objects.filter(pk=campaign.template_id).update(text="Edited")

    result = test_send.send_test(campaign, marketer)

    sent = messages_at_sinch(control, result.batch.sinch_batch_id, 2)
    texts = sorted(m["rendered"]["text_message"]["text"] for m in sent)
    assert texts == ["Frozen: A-1", "Frozen: B-2"]


@pytest.mark.django_db(transaction=True)
def test_the_intent_is_committed_before_sinch_is_called(
    sinch, monkeypatch, campaign, members, marketer
):
    real = get_sinch_client()
    seen = {}

    class Spy:
        def send_batch(self, request):
            seen["in_transaction"] = connection.in_atomic_block
            seen["batches"] = list(Batch.objects.values_list("status", "is_test"))
            seen["pending"] = Recipient.objects.filter(status=S.PENDING).count()
            return real.send_batch(request)

    monkeypatch.setattr(sinch_client, "get_sinch_client", Spy)

    result = test_send.send_test(campaign, marketer)

    assert result.ok
    assert seen == {
        "in_transaction": False,
        "batches": [(Batch.Status.SUBMITTING, True)],
        "pending": 2,
    }


# --- refusals ---


def _nothing_happened(control):
    assert not Batch.objects.exists()
    assert not Recipient.objects.exists()
    assert not AuditEvent.objects.filter(action=test_send.AUDIT_ACTION).exists()
    assert batches_at_sinch(control) == []


def test_a_campaign_without_a_seed_list_is_refused(sinch, control, campaign, marketer):
    campaign.seed_list = None
    campaign.save()

    with pytest.raises(test_send.NoSeedList, match="no seed list: choose one"):
        test_send.send_test(campaign, marketer)
    _nothing_happened(control)


def test_an_empty_seed_list_is_refused(sinch, control, campaign, marketer):
    with pytest.raises(
        test_send.EmptySeedList, match="“Seed: marketing team” has no members"
    ):
        test_send.send_test(campaign, marketer)
    _nothing_happened(control)


def test_a_seed_list_over_the_size_limit_is_refused(
    sinch, control, settings, campaign, seed, make_contact, marketer
):
    settings.TEST_SEND_MAX_RECIPIENTS = 2
    for _ in range(3):
        make_contact(consent=IN, lists=[seed], attributes={"code": "1"})

    with pytest.raises(test_send.SeedListTooLarge) as refused:
        test_send.send_test(campaign, marketer)
    assert (
        "has 3 members; a test send goes to at most 2 (TEST_SEND_MAX_RECIPIENTS)"
        in str(refused.value)
    )
    assert isinstance(refused.value, ValueError)
    _nothing_happened(control)


def test_the_size_limit_is_25_by_default_and_never_more_than_one_batch(settings):
    from config import settings as product_settings

    assert product_settings.TEST_SEND_MAX_RECIPIENTS == 25
    assert test_send.max_recipients() == settings.TEST_SEND_MAX_RECIPIENTS
    settings.TEST_SEND_MAX_RECIPIENTS = 5000
    assert test_send.max_recipients() == test_send.MAX_SEED_LIST == 1000


def test_a_seed_list_nobody_on_which_can_receive_it_is_refused(
    sinch, control, campaign, seed, make_contact, marketer
):
    make_contact(consent=OUT, lists=[seed], attributes={"code": "1"})
    make_contact(lists=[seed], attributes={"code": "1"})

    with pytest.raises(test_send.NobodySendable, match="all 2 members are excluded"):
        test_send.send_test(campaign, marketer)
    _nothing_happened(control)


def test_a_test_send_on_whatsapp_of_a_text_message_is_refused_with_the_24_hour_rule(
    sinch, control, campaign, members, marketer
):
    campaign.channel = "WHATSAPP"
    campaign.sms_sender = ""
    campaign.save()

    with pytest.raises(test_send.ChannelRulesBroken, match="24 hours"):
        test_send.send_test(campaign, marketer)
    _nothing_happened(control)


# --- what Sinch answers ---


def test_a_batch_sinch_refuses_is_failed_with_sinchs_message(
    settings, sim, control, campaign, members, marketer
):
    # A misconfigured app id: Sinch answers 400 with its own explanation.
    settings.SINCH_PROJECT_ID = SIMULATOR_PROJECT_ID
    settings.SINCH_KEY_ID = SIMULATOR_KEY_ID
    settings.SINCH_KEY_SECRET = SIMULATOR_KEY_SECRET
    settings.SINCH_APP_ID = "01WRONGAPP0000000000000000"
    settings.SINCH_BATCH_API_URL = settings.SINCH_AUTH_URL = sim.url
    get_sinch_client.cache_clear()
    try:
        result = test_send.send_test(campaign, marketer)
    finally:
        get_sinch_client.cache_clear()

    assert result.outcome == test_send.FAILED
    assert not result.ok
    batch = Batch.objects.get()
    assert batch.status == Batch.Status.FAILED
    assert "HTTP 400 INVALID_ARGUMENT" in batch.last_error
    assert "Unknown app '01WRONGAPP0000000000000000'" in batch.last_error
    assert "Unknown app" in result.message
    assert "nothing was sent" in result.message
    assert not batch.sinch_batch_id
    assert batch.submitted_at is None
    assert set(
        batch.recipients.exclude(status=S.EXCLUDED).values_list("status", flat=True)
    ) == {S.FAILED}
    assert batches_at_sinch(control) == []


def test_a_lost_answer_is_recorded_as_uncertain_not_as_success(
    sim, control, monkeypatch, campaign, members, marketer
):
    client = make_client(sim, timeout=(2.0, 0.3))
    monkeypatch.setattr(sinch_client, "get_sinch_client", lambda: client)
    # Sinch takes the batch but answers after the client gave up.
    control.post("inject", responses=[{"timeout": True, "delay_s": 1.0}])

    result = test_send.send_test(campaign, marketer)

    assert result.outcome == test_send.UNCERTAIN
    assert not result.ok
    assert "may or may not have gone out" in result.message
    batch = Batch.objects.get()
    assert batch.status == Batch.Status.SUBMITTING  # not ACCEPTED, not FAILED
    assert batch.last_error.startswith("Outcome uncertain:")
    assert f"{batch_request.BATCH_KEY}={batch.metadata_key}" in batch.last_error
    assert not batch.sinch_batch_id
    assert batch.submitted_at is None
    assert not batch.recipients.filter(status=S.SUBMITTED).exists()
    # Rightly so: Sinch does have it.
    [found] = client.batches_by_metadata(batch_request.BATCH_KEY, batch.metadata_key)
    assert found.metadata[batch_request.TEST_KEY] == "1"


def test_the_test_send_page_says_a_lost_answer_is_uncertain(
    sim, control, monkeypatch, campaign, members, marketer, client
):
    sinch = make_client(sim, timeout=(2.0, 0.3))
    monkeypatch.setattr(sinch_client, "get_sinch_client", lambda: sinch)
    control.post("inject", responses=[{"timeout": True, "delay_s": 1.0}])
    test_send.send_test(campaign, marketer)
    client.force_login(marketer)
    page = client.get(
        reverse("admin:campaigns_campaign_test_send", args=[campaign.pk])
    ).content.decode()
    table = page[page.index('id="test-send-batches"') :]
    assert "<td>Outcome uncertain</td>" in table
    assert "Being submitted" not in table


# --- audit and statistics ---


def test_each_test_send_is_audited_with_who_what_and_the_outcome(
    sinch, campaign, members, marketer
):
    result = test_send.send_test(campaign, marketer)

    audit = AuditEvent.objects.get(action=test_send.AUDIT_ACTION)
    assert audit.actor == marketer
    assert (audit.target_type, audit.target_id) == ("campaign", str(campaign.pk))
    assert "Test send 1 of campaign Spring to seed list Seed: marketing team" in (
        audit.summary
    )
    assert audit.details["outcome"] == test_send.ACCEPTED
    assert audit.details["sinch_batch_id"] == result.batch.sinch_batch_id
    assert (audit.details["sent"], audit.details["excluded"]) == (2, 6)
    assert audit.details["excluded_by_reason"]["opted out"] == 1
    # No personal data in the trail.
    assert "+1415555" not in json.dumps(audit.details) + audit.summary


def test_a_test_send_never_counts_in_the_campaigns_figures(
    sinch, campaign, members, marketer, make_contact
):
    customer = Contact.objects.get(identities__identity="+14155550999")
    real = Batch.objects.create(
        campaign=campaign, sequence=1, size=1, metadata_key="real-1"
    )
    Recipient.objects.create(
        campaign=campaign,
        batch=real,
        index=0,
        contact=customer,
        identity="+14155550999",
        status=S.DELIVERED,
    )

    test_send.send_test(campaign, marketer)

    assert Recipient.objects.filter(campaign=campaign).count() == 1 + 8
    # The campaign's figures (the kept counters and their full recount, which
    # the dashboard and the health checks read) leave the test send out.
    assert counters.counts(campaign.pk) == {}
    counts = counters.actual(campaign.pk)
    assert sum(counts.values()) == 1
    assert counts[S.DELIVERED] == 1
    assert counts.get(S.SUBMITTED, 0) == counts.get(S.EXCLUDED, 0) == 0
    assert list(Batch.objects.filter(campaign=campaign, is_test=False)) == [real]


# --- the request ---


def test_the_request_carries_the_campaigns_channel_settings_and_no_reserved_keys(
    campaign, members
):
    campaign.channel_priority_order = ["SMS", "WHATSAPP"]
    batch = Batch.objects.create(
        campaign=campaign, sequence=1, is_test=True, metadata_key="test-x"
    )
    rows = [
        Recipient.objects.create(
            campaign=campaign, batch=batch, index=i, identity=phone,
            parameters={"code": code}, is_test=True,
        )
        for i, (phone, code) in enumerate([("+14155550202", "B"), ("+1415555020", "A")])
    ] + [
        Recipient.objects.create(
            campaign=campaign, batch=batch, identity="+1", status=S.EXCLUDED,
            is_test=True,
        )
    ]  # fmt: skip

    request = batch_request.build_batch_request(campaign, batch, reversed(rows))
    body = json.loads(request.to_json(app_id="app"))

    assert body["message"] == {
        "text_message": {"text": "Hi ${first_name}, your code is ${code}"}
    }
    assert body["batch_metadata"] == {
        "cm_batch": "test-x",
        "cm_campaign": str(campaign.pk),
        "cm_test": "1",
    }
    assert body["message_metadata"] == {"cm_campaign": str(campaign.pk)}
    assert body["ttl"] == "3600s"
    assert body["channel_properties"] == {"SMS_SENDER": "MyShop"}
    assert body["channel_priority_order"] == ["SMS", "WHATSAPP"]
    assert "send_after" not in body
    assert body["recipient_and_params"] == [
        {
            "recipient": {
                "identified_by": {
                    "channel_identities": [
                        {"channel": "SMS", "identity": "+14155550202"}
                    ]
                }
            },
            "parameters": {"code": "B"},
            "message_metadata": {"cm_recipient": str(rows[0].pk)},
        },
        {
            "recipient": {
                "identified_by": {
                    "channel_identities": [
                        {"channel": "SMS", "identity": "+1415555020"}
                    ]
                }
            },
            "parameters": {"code": "A"},
            "message_metadata": {"cm_recipient": str(rows[1].pk)},
        },
    ]
    keys = [*body["batch_metadata"], *body["message_metadata"], "cm_recipient"]
    assert not any(k.startswith("_") for k in keys)
    assert set(keys) <= set(batch_request.METADATA_KEYS)


def test_a_batch_with_gaps_in_its_positions_is_not_built(campaign):
    batch = Batch.objects.create(campaign=campaign, sequence=1, metadata_key="k")
    row = Recipient.objects.create(
        campaign=campaign, batch=batch, index=1, identity="+14155550202"
    )
    with pytest.raises(batch_request.BatchRequestError, match=r"0\.\.n-1"):
        batch_request.build_batch_request(campaign, batch, [row])


# --- the admin ---


def url(campaign) -> str:
    return reverse("admin:campaigns_campaign_test_send", args=[campaign.pk])


def test_a_marketer_sees_who_will_receive_the_test_and_who_is_excluded_and_why(
    client, campaign, members, marketer
):
    client.force_login(marketer)
    page = client.get(url(campaign)).content.decode()

    assert "Seed list <strong>Seed: marketing team</strong>: 8 members" in page
    assert "<strong>2 will receive it</strong>" in page
    assert "<strong>6 excluded</strong>" in page
    assert "Hi Anna, your code is A-1" in page
    for reason in EXCLUDED_REASONS.values():
        assert f"<td>{reason}</td>" in page
    assert 'value="Send test 1 to 2 recipients now"' in page
    assert "None yet." in page

    change = client.get(
        reverse("admin:campaigns_campaign_change", args=[campaign.pk])
    ).content.decode()
    assert url(campaign) in change


def test_a_marketer_sends_the_test_from_the_admin_and_sees_the_result(
    client, sinch, control, campaign, members, marketer
):
    client.force_login(marketer)
    response = client.post(url(campaign), {"sequence": "1"}, follow=True)

    assert response.redirect_chain == [(url(campaign), 302)]
    [remote] = batches_at_sinch(control)
    page = response.content.decode()
    assert f"accepted by Sinch (batch {remote['batch_id']})" in page
    assert "2 recipients of the seed list “Seed: marketing team”. 6 excluded." in page
    table = page[page.index('id="test-send-batches"') :]
    assert remote["batch_id"] in table
    assert "mark" in table
    assert "Accepted by Sinch" in table
    assert 'value="Send test 2 to 2 recipients now"' in page


def test_sending_the_same_page_twice_sends_once(
    client, sinch, control, campaign, members, marketer
):
    client.force_login(marketer)
    client.post(url(campaign), {"sequence": "1"})
    response = client.post(url(campaign), {"sequence": "1"}, follow=True)

    assert "Another test send (number 1) was made" in response.content.decode()
    assert Batch.objects.count() == 1
    assert len(batches_at_sinch(control)) == 1


def test_a_test_can_be_sent_whatever_the_campaigns_status(
    client, sinch, control, campaign, members, marketer
):
    Campaign.objects.filter(pk=campaign.pk).update(status=Campaign.Status.SUBMITTED)
    client.force_login(marketer)
    client.post(url(campaign), {"sequence": "1"})

    assert Batch.objects.get().status == Batch.Status.ACCEPTED
    assert len(batches_at_sinch(control)) == 1


def test_without_a_seed_list_the_page_says_so_and_offers_no_button(
    client, sinch, control, campaign, marketer
):
    campaign.seed_list = None
    campaign.save()
    client.force_login(marketer)

    page = client.get(url(campaign)).content.decode()
    assert "This campaign has no seed list" in page
    assert 'class="test-send-form"' not in page
    response = client.post(url(campaign), {"sequence": "1"}, follow=True)
    assert "This campaign has no seed list" in response.content.decode()
    _nothing_happened(control)


def test_a_viewer_cannot_see_or_send_a_test(
    client, sinch, control, campaign, members, viewer
):
    client.force_login(viewer)

    assert client.get(url(campaign)).status_code == 403
    assert client.post(url(campaign), {"sequence": "1"}).status_code == 403
    change = client.get(
        reverse("admin:campaigns_campaign_change", args=[campaign.pk])
    ).content.decode()
    assert url(campaign) not in change
    _nothing_happened(control)
