"""Channel fallback for real: each recipient is sent its own consented
identity on every channel of the campaign's priority order, in that order,
so Sinch can fall back; a channel the person has no identity on, or did not
consent on, is left out for them (and they are still sent on the others)."""

import json
import time

import pytest
from django.urls import reverse

from campaigns.authoring import presend, recheck
from campaigns.dispatch import drain, late_optouts, test_send
from campaigns.models import Batch, Recipient
from campaigns.tracking import receipts, results_csv
from contacts.models import ChannelIdentity, ConsentState
from contacts.services.consent import Evidence, record_consent
from contacts.services.erasure import erase_contact
from sinch.payloads import ConsentRecord
from sinch.simulator.state import identity_key
from tests.campaigns.test_receipts import store

IN, OUT = ConsentState.OPTED_IN, ConsentState.OPTED_OUT
ORDER = ["RCS", "SMS", "VIBERBM"]


@pytest.fixture
def add_identity(db):
    """Give `contact` an identity on `channel`; `consent` goes through the ledger."""

    def add(contact, channel, number, consent=None):
        identity = ChannelIdentity.objects.create(
            contact=contact, channel=channel, identity=number
        )
        if consent is not None:
            record_consent(
                identity=identity,
                kind="OPT_IN" if consent == IN else "OPT_OUT",
                purpose="MARKETING",
                source="FORM",
                evidence=Evidence(wording="Test consent"),
            )
        return identity

    return add


@pytest.fixture
def people(make_list, make_contact, add_identity):
    """Everyone opted in on RCS (the first channel), with other numbers:
    Ann also on SMS and Viber; Bob on Viber only; Cleo opted out on SMS and
    without consent on Viber; Dan has an SMS number without consent only;
    Eve has only her RCS number."""
    audience = make_list("Fans")
    made = {}
    for n, name in enumerate(["Ann", "Bob", "Cleo", "Dan", "Eve"]):
        made[name] = make_contact(
            f"+1415555{n:04d}",
            channel="RCS",
            consent=IN,
            lists=[audience],
            first_name=name,
        )
    add_identity(made["Ann"], "SMS", "+14155551000", IN)
    add_identity(made["Ann"], "VIBERBM", "+14155552000", IN)
    add_identity(made["Bob"], "VIBERBM", "+14155552001", IN)
    add_identity(made["Cleo"], "SMS", "+14155551002", OUT)
    add_identity(made["Cleo"], "VIBERBM", "+14155552002")
    add_identity(made["Dan"], "SMS", "+14155551003")
    made["list"] = audience
    return made


@pytest.fixture
def campaign(people, make_template, make_campaign):
    template = make_template("Fans", "Hi ${first_name}!")
    return make_campaign(
        template,
        [people["list"]],
        "Fans",
        checked=True,
        channel="RCS",
        channel_priority_order=ORDER,
    )


def fallbacks_of(campaign) -> dict[str, list]:
    return {
        r.contact.first_name: r.fallback_identities
        for r in Recipient.objects.filter(campaign=campaign).select_related("contact")
    }


EXPECTED = {
    "Ann": [["SMS", "+14155551000"], ["VIBERBM", "+14155552000"]],
    "Bob": [["VIBERBM", "+14155552001"]],
    "Cleo": [],
    "Dan": [],
    "Eve": [],
}


def bodies_at_sinch(sim) -> list[dict]:
    """What the simulator received over HTTP (kept while it waits to process)."""
    with sim.state.lock:
        return [json.loads(b.body) for b in sim.state.batches.values() if b.body]


def identities_sent(body) -> dict[str, list[list[str]]]:
    return {
        item["parameters"]["first_name"]: [
            [c["channel"], c["identity"]]
            for c in item["recipient"]["identified_by"]["channel_identities"]
        ]
        for item in body["recipient_and_params"]
    }


# --- freeze and request ----------------------------------------------------------


def test_the_request_names_each_recipients_identities_in_the_priority_order(
    campaign, people, sinch, control, launched_campaign
):
    control.knobs(processing_delay_s=600)  # the body stays at the simulator
    launched_campaign(campaign)

    assert fallbacks_of(campaign) == EXPECTED
    [body] = bodies_at_sinch(sinch)
    assert body["channel_priority_order"] == ORDER
    sent = identities_sent(body)
    for name, fallbacks in EXPECTED.items():
        first = ChannelIdentity.objects.get(
            contact=people[name], channel="RCS"
        ).identity
        assert sent[name] == [["RCS", first], *fallbacks], name


def test_a_single_channel_campaign_sends_one_identity_each(
    people, make_template, make_campaign, sinch, control, launched_campaign
):
    control.knobs(processing_delay_s=600)
    campaign = make_campaign(
        make_template(), [people["list"]], checked=True, channel="RCS"
    )
    launched_campaign(campaign)
    assert set(map(len, identities_sent(bodies_at_sinch(sinch)[0]).values())) == {1}
    assert not any(fallbacks_of(campaign).values())


def test_a_number_is_never_reused_on_a_channel_its_owner_did_not_consent_on(
    make_list, make_contact, make_template, make_campaign, launched_campaign, sinch
):
    """Consent is per channel: Fay's SMS opt-in does not cover RCS, so
    her number does not go to RCS, although it could reach her there."""
    fans = make_list("Fay's list")
    fay = make_contact("+14155550042", consent=IN, lists=[fans], first_name="Fay")
    campaign = make_campaign(
        make_template(),
        [fans],
        checked=True,
        channel="SMS",
        channel_priority_order=["SMS", "RCS"],
    )
    rcs = campaign.presend["fallbacks"][0]
    assert (rcs["with"], rcs["without"]) == (0, 1)
    assert rcs["problems"]["no_identity"]["label"] == "no RCS identity"
    launched_campaign(campaign)
    row = Recipient.objects.get(contact=fay)
    assert (row.identity, row.fallback_identities) == ("+14155550042", [])


# --- the pre-send check -------------------------------------------------------------


def test_presend_counts_per_fallback_channel_who_cannot_fall_back_and_why(
    campaign, admin_client
):
    summary = campaign.presend
    assert summary["ok"] == 5  # everyone is still sent on RCS
    by_channel = {f["channel"]: f for f in summary["fallbacks"]}
    assert list(by_channel) == ["SMS", "VIBERBM"]
    sms, viber = by_channel["SMS"], by_channel["VIBERBM"]
    assert (sms["with"], sms["without"]) == (1, 4)
    assert {k: p["count"] for k, p in sms["problems"].items()} == {
        "no_identity": 2,  # Bob, Eve
        "opted_out": 1,  # Cleo
        "no_consent": 1,  # Dan
    }
    assert [e["name"] for e in sms["problems"]["opted_out"]["examples"]] == ["Cleo"]
    assert (viber["with"], viber["without"]) == (2, 3)
    assert {k: p["count"] for k, p in viber["problems"].items()} == {
        "no_identity": 2,  # Dan, Eve
        "no_consent": 1,  # Cleo
    }
    # The CSV says it per person, and the campaign page shows the counts.
    rows = (presend.csv_path(campaign)).read_text().splitlines()
    cleo = next(line for line in rows if "+14155550002" in line)
    assert "no SMS fallback: opted out on SMS" in cleo
    assert "no Viber Business Messages fallback: no consent record" in cleo
    page = admin_client.get(
        reverse("admin:campaigns_campaign_preview", args=[campaign.pk])
    )
    assert page.status_code == 200
    html = page.content.decode()
    assert "Fallback channels" in html
    assert "opted out on SMS" in html


# --- the re-check before each Sinch call -----------------------------------------


def test_a_fallback_opted_out_after_launch_is_left_out_of_the_request(
    campaign, people, sinch, control, launched_campaign
):
    control.knobs(processing_delay_s=600)
    launched_campaign(campaign, dispatch=False)
    ann_sms = ChannelIdentity.objects.get(contact=people["Ann"], channel="SMS")
    record_consent(
        identity=ann_sms,
        kind="OPT_OUT",
        purpose="MARKETING",
        source="FORM",
        evidence=Evidence(wording="Unsubscribe page"),
    )
    drain.run_dispatcher(campaign.pk)

    sent = identities_sent(bodies_at_sinch(sinch)[0])
    assert sent["Ann"] == [
        ["RCS", "+14155550000"],
        ["VIBERBM", "+14155552000"],
    ]
    ann = Recipient.objects.get(contact=people["Ann"])
    assert ann.status == Recipient.Status.SUBMITTED  # still sent on the others
    assert ann.fallback_identities == [["VIBERBM", "+14155552000"]]


def test_a_fallback_number_erased_after_launch_is_never_sent(
    campaign, people, launched_campaign, make_contact, compliance_admin
):
    """Bob's Viber number is also Zed's SMS number; Zed is erased after the
    launch: the number is suppressed on every phone channel."""
    zed = make_contact("+14155552001", consent=IN, first_name="Zed")
    launched_campaign(campaign, dispatch=False)
    erase_contact(contact=zed, actor=compliance_admin)
    bob = Recipient.objects.get(contact=people["Bob"])
    entries, dropped = recheck.recheck_batch(campaign, bob.batch_id)
    assert dropped == {}
    [entry] = [e for e in entries if e.pk == bob.pk]
    assert entry.fallbacks == []
    assert entry.lost == ["Viber Business Messages: number erased after launch"]


def test_a_late_fallback_opt_out_replaces_a_batch_scheduled_at_sinch(
    campaign, people, sinch, control, launched_campaign
):
    from datetime import timedelta

    from django.utils import timezone

    campaign.send_at = timezone.now() + timedelta(hours=2)
    campaign.save(update_fields=["send_at"])
    launched_campaign(campaign)
    [batch] = Batch.objects.filter(campaign=campaign)
    assert batch.status == Batch.Status.ACCEPTED
    bob_viber = ChannelIdentity.objects.get(contact=people["Bob"], channel="VIBERBM")
    record_consent(
        identity=bob_viber,
        kind="OPT_OUT",
        purpose="MARKETING",
        source="FORM",
        evidence=Evidence(wording="Unsubscribe page"),
    )
    late_optouts.replace_late_optouts()
    batch.refresh_from_db()
    assert batch.replace_reason == (
        "1 fallback left out (Viber Business Messages: opted out after launch)"
    )
    # Sinch confirmed the cancel: the replacement holds Bob, without Viber.
    assert batch.status == Batch.Status.CANCELLED
    bob = Recipient.objects.get(contact=people["Bob"])
    assert bob.batch.replaces_id == batch.pk
    assert bob.fallback_identities == []


# --- receipts ------------------------------------------------------------------------


def test_a_delivery_on_the_fallback_channel_lands_on_the_recipient_with_its_channel(
    campaign, people, sinch, control, launched_campaign, admin_client
):
    """RCS refuses Ann (opted out at Sinch): Sinch switches to SMS and
    delivers there; the simulator's real receipts move her row."""
    control.knobs(consent_management="primary", read_ratio=0)
    from sinch.client import get_sinch_client

    get_sinch_client().insert_consents([ConsentRecord("+14155550000")])
    assert identity_key("+14155550000") in sinch.state.opt_outs
    launched_campaign(campaign)
    deadline = time.monotonic() + 10
    while True:
        callbacks = [
            c["body"]
            for c in control.state(limit=100)["callbacks"]
            if "message_delivery_report" in c["body"]
        ]
        statuses = [
            json.loads(b)["message_delivery_report"]["status"] for b in callbacks
        ]
        if statuses.count("DELIVERED") == 5:
            break
        assert time.monotonic() < deadline, statuses
        time.sleep(0.05)
    for body in callbacks:
        store(body)
    receipts.process_pending()

    ann = Recipient.objects.get(contact=people["Ann"])
    assert (ann.status, ann.delivered_channel, ann.switched_channel) == (
        Recipient.Status.DELIVERED,
        "SMS",
        True,
    )
    eve = Recipient.objects.get(contact=people["Eve"])
    assert (eve.status, eve.delivered_channel) == (
        Recipient.Status.DELIVERED,
        "RCS",
    )
    [header, *rows] = results_csv.result_rows(campaign, full_numbers=True)
    results = {row[0]: dict(zip(header, row, strict=True)) for row in rows}
    assert results[str(ann.pk)]["delivered_on"] == "SMS"
    page = admin_client.get(
        reverse("admin:campaigns_recipient_change", args=[ann.pk])
    ).content.decode()
    assert "+14155551000" in page  # then, on fallback: SMS +14155551000
    assert ">SMS<" in page  # delivered on


# --- test sends --------------------------------------------------------------------


def test_a_test_send_carries_the_fallback_identities(
    campaign, people, sinch, control, marketer
):
    control.knobs(processing_delay_s=600)
    campaign.seed_list = people["list"]
    campaign.save(update_fields=["seed_list"])
    people["list"].is_seed_list = True
    people["list"].save(update_fields=["is_seed_list"])
    result = test_send.send_test(campaign, marketer)
    assert result.ok, result.message
    sent = identities_sent(bodies_at_sinch(sinch)[0])
    assert sent["Ann"][1:] == EXPECTED["Ann"]
    assert sent["Cleo"] == [["RCS", "+14155550002"]]
    ann = Recipient.objects.get(is_test=True, contact=people["Ann"])
    assert ann.fallback_identities == EXPECTED["Ann"]
