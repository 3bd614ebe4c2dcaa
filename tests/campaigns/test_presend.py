"""The pre-send check of the whole audience (campaigns.presend)."""

import csv

import pytest
from django.urls import reverse
from django.utils import timezone

from campaigns.authoring import presend
from campaigns.models import Campaign
from contacts.models import AuditEvent, ChannelIdentity, ConsentState, Contact

IN, OUT = ConsentState.OPTED_IN, ConsentState.OPTED_OUT


@pytest.fixture
def template(make_template):
    return make_template("Spring sale", "Hi ${first_name}, your tier: ${tier}")


@pytest.fixture
def audience(make_list):
    return make_list("Customers")


@pytest.fixture
def campaign(make_campaign, template, audience):
    return make_campaign(template, [audience], "Spring")


@pytest.fixture
def people(make_contact, make_list, audience):
    """One person per rule; the keys name them."""
    other = make_list("VIP")
    made = {
        "ok": make_contact(
            "+14155550101", consent=IN, lists=[audience], attributes={"tier": "gold"}
        ),
        "ok_twice": make_contact(
            "+14155550102",
            consent=IN,
            lists=[audience, other],
            attributes={"tier": "silver"},
        ),
        "opted_out": make_contact(
            "+14155550103", consent=OUT, lists=[audience], attributes={"tier": "x"}
        ),
        "no_consent": make_contact(
            "+14155550104", lists=[audience], attributes={"tier": "x"}
        ),
        "lacking": make_contact(
            "+14155550105", consent=IN, lists=[audience], first_name="Lacky"
        ),
        # The same number as "ok", written differently: a duplicate.
        "duplicate": make_contact(
            "+1 415 555 0101", consent=IN, lists=[audience], attributes={"tier": "y"}
        ),
        "erased": make_contact(
            "+14155550107", consent=IN, lists=[audience], attributes={"tier": "z"}
        ),
        "unicode": make_contact(
            "+14155550108",
            consent=IN,
            lists=[other],
            first_name="Zoë",
            attributes={"tier": "Gold ★"},
        ),
    }
    Contact.objects.filter(pk=made["erased"].pk).update(erased_at=timezone.now())
    return made


@pytest.fixture
def full_campaign(campaign, people):
    campaign.lists.add(*{lst for c in people.values() for lst in c.lists.all()})
    return campaign


def _rows(result):
    with open(result.csv_path, newline="", encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


def test_each_rule_is_counted_with_its_reason(full_campaign, people):
    result = presend.run_presend_check(full_campaign)
    summary = result.summary
    assert summary["audience"] == 8  # "ok_twice" is on two lists: counted once
    assert (summary["ok"], summary["blocking"], summary["excluded"]) == (3, 1, 4)
    assert summary["excluded_by_reason"] == {
        "contact erased": 1,
        "duplicate identity": 1,
        "no consent record": 1,
        "opted out": 1,
    }
    excluded = summary["excluded_problems"]
    assert excluded["opted_out"]["examples"][0]["contact_id"] == people["opted_out"].pk
    assert (
        excluded["no_consent"]["examples"][0]["contact_id"] == people["no_consent"].pk
    )
    assert excluded["duplicate"]["examples"][0]["contact_id"] == people["duplicate"].pk
    assert excluded["erased"]["examples"][0]["contact_id"] == people["erased"].pk
    blocking = summary["blocking_problems"]
    assert list(blocking) == ["missing:tier"]
    assert blocking["missing:tier"]["label"] == "no value for ${tier} and no default"
    assert blocking["missing:tier"]["examples"][0]["name"].startswith("Lacky")
    assert summary["encodings"] == {"GSM-7": 2, "UCS-2": 1}
    assert summary["ucs2_chars"] == {"ë": 1, "★": 1}
    ucs2 = summary["warnings"]["ucs2"]
    assert ucs2["count"] == 1
    assert ucs2["examples"][0]["contact_id"] == people["unicode"].pk
    assert summary["histogram"] == ["3 recipients need 1 segment"]
    assert summary["time"] == "less than a second for 3 messages"
    assert summary["cost"] == "about EUR 0.02 for 3 SMS segments"

    full_campaign.refresh_from_db()
    assert full_campaign.presend == summary
    assert full_campaign.presend_at is not None
    ok, reasons = presend.campaign_can_launch(full_campaign)
    assert not ok
    assert len(reasons) == 1
    assert "no value for ${tier}" in reasons[0]
    assert "Lacky" in reasons[0]
    assert "give ${tier} a default on the template" in reasons[0]


def test_a_default_fixes_the_blocking_problem(full_campaign, template):
    presend.run_presend_check(full_campaign)
    assert presend.campaign_can_launch(full_campaign)[0] is False
    template.parameters.filter(name="tier").update(default="member")
    result = presend.run_presend_check(full_campaign)
    assert (result.ok, result.blocking) == (4, 0)
    full_campaign.refresh_from_db()
    assert presend.campaign_can_launch(full_campaign) == (True, [])


def test_an_edit_after_the_check_asks_for_a_new_one(full_campaign, template):
    template.parameters.filter(name="tier").update(default="member")
    presend.run_presend_check(full_campaign)
    full_campaign.refresh_from_db()
    assert presend.campaign_can_launch(full_campaign)[0] is True
    full_campaign.name = "Spring, renamed"
    full_campaign.save()
    ok, reasons = presend.campaign_can_launch(full_campaign)
    assert not ok
    assert "changed since the last pre-send check" in reasons[0]


def test_no_check_run_means_no_launch(campaign):
    assert presend.campaign_can_launch(campaign) == (
        False,
        ["Run the pre-send check first."],
    )


def test_a_missing_or_invalid_identity_blocks(campaign, audience, make_contact):
    nobody = make_contact(
        "+14155550111", channel="WHATSAPP", consent=IN, lists=[audience]
    )
    bad = make_contact("+12", consent=IN, lists=[audience])
    # Written as E.164, but no such number (area code 000): still invalid.
    shaped = make_contact("+10005550123", consent=IN, lists=[audience])
    result = presend.run_presend_check(campaign)
    blocking = result.summary["blocking_problems"]
    assert blocking["no_identity"]["examples"][0]["contact_id"] == nobody.pk
    assert blocking["no_identity"]["label"] == "no SMS identity"
    examples = blocking["invalid_identity"]["examples"]
    assert [e["contact_id"] for e in examples] == [bad.pk, shaped.pk]
    assert result.blocking == 3


def test_long_messages_and_suspicious_values_warn(campaign, audience, make_contact):
    campaign.channel_properties = {"SMS_MAX_NUMBER_OF_MESSAGE_PARTS": "1"}
    campaign.save()
    make_contact(
        "+14155550121", consent=IN, lists=[audience], attributes={"tier": "x" * 200}
    )
    make_contact(
        "+14155550122", consent=IN, lists=[audience], attributes={"tier": "nan"}
    )
    result = presend.run_presend_check(campaign)
    warnings = result.summary["warnings"]
    assert warnings["too_long"]["count"] == 1
    assert warnings["too_long"]["label"] == "more than 1 SMS parts"
    assert [k for k in warnings if k.startswith("suspicious:tier:")] == [
        'suspicious:tier:looks like a missing value ("nan")'
    ]
    assert result.summary["histogram"] == [
        "1 recipient needs 1 segment",
        "1 recipient needs 2 segments",
    ]
    assert result.ok == 2  # warnings do not block


@pytest.mark.parametrize("remembered", [10_000, 2])
def test_every_member_with_a_suspicious_value_is_counted_however_often_it_repeats(
    campaign, audience, make_contact, monkeypatch, remembered
):
    """A value's reasons are worked out once and remembered for the next
    members (up to suspicious.REMEMBERED values, then forgotten): each
    member is still counted, under the reasons of their own value."""
    from campaigns.authoring import suspicious

    monkeypatch.setattr(suspicious, "REMEMBERED", remembered)
    tiers = ["nan", "gold", "nan", " gold", "silver", "nan", " gold", "gold"]
    for n, tier in enumerate(tiers):
        make_contact(
            f"+1415555013{n}", consent=IN, lists=[audience], attributes={"tier": tier}
        )
    warnings = presend.run_presend_check(campaign).summary["warnings"]
    assert {key: w["count"] for key, w in warnings.items()} == {
        'suspicious:tier:looks like a missing value ("nan")': 3,
        "suspicious:tier:leading or trailing spaces": 2,
    }
    assert [
        e["detail"]
        for e in warnings["suspicious:tier:leading or trailing spaces"]["examples"]
    ] == ["' gold'", "' gold'"]


def test_the_launch_sends_a_suspicious_value_and_leaves_its_warning_to_the_check(
    campaign, audience, make_contact
):
    """The freeze checks members as the pre-send check does, without its
    warnings (render=False): a value that looks like a missing one is
    warned about before the launch, and sent as it is at the launch."""
    from campaigns.authoring.audience import OK, MemberChecker, rows_of

    member = make_contact(
        "+14155550141", consent=IN, lists=[audience], attributes={"tier": "nan"}
    )
    [row] = rows_of(campaign, [member.pk])
    warned = 'suspicious:tier:looks like a missing value ("nan")'
    for render, warnings in ((True, [warned]), (False, [])):
        checker = MemberChecker(campaign, render=render)
        assert checker.check(row)[2] == OK
        assert checker.values["tier"] == "nan"
        assert list(checker.result.problems) == warnings


def test_the_csv_has_one_row_per_recipient(full_campaign, people):
    result = presend.run_presend_check(full_campaign)
    rows = _rows(result)
    assert len(rows) == 8
    by_id = {int(row["contact_id"]): row for row in rows}
    assert set(by_id) == {c.pk for c in people.values()}
    assert by_id[people["ok"].pk]["status"] == "OK"
    assert by_id[people["ok"].pk]["rendered_text"].endswith("your tier: gold")
    assert by_id[people["ok"].pk]["segments"] == "1"
    assert by_id[people["opted_out"].pk]["reason"] == "opted out"
    assert by_id[people["lacking"].pk]["status"] == "BLOCKING"
    assert by_id[people["unicode"].pk]["encoding"] == "UCS-2"


def test_chunks_give_the_same_result(full_campaign):
    whole = presend.run_presend_check(full_campaign).summary
    assert presend.run_presend_check(full_campaign, chunk_size=3).summary == whole


def _audience(campaign, size):
    lst = campaign.lists.first()
    contacts = Contact.objects.bulk_create(
        [Contact(first_name=f"P{i}", attributes={"tier": "gold"}) for i in range(size)]
    )
    ChannelIdentity.objects.bulk_create(
        [
            ChannelIdentity(
                contact=c,
                channel="SMS",
                identity=f"+1415556{i:04d}",
                marketing_consent=IN,
            )
            for i, c in enumerate(contacts)
        ]
    )
    lst.memberships.bulk_create(
        [lst.memberships.model(contact_list=lst, contact=c) for c in contacts]
    )


@pytest.mark.parametrize("size", [10, 60])
def test_queries_are_bounded_whatever_the_audience_size(
    campaign, size, django_assert_max_num_queries
):
    _audience(campaign, size)
    # Segments (none), lists, parameters, the frequency cap's look for other
    # marketing sent near the send time, the A/B variants (none), 3 per
    # chunk, the empty last chunk, the update.
    with django_assert_max_num_queries(10):
        result = presend.run_presend_check(campaign)
    assert result.ok == size


def test_queries_grow_per_chunk_not_per_person(campaign, django_assert_max_num_queries):
    _audience(campaign, 60)
    # Chunks of 25: 3 chunks of 3 queries each (and whether it has segments).
    with django_assert_max_num_queries(14):
        result = presend.run_presend_check(campaign, chunk_size=25)
    assert result.ok == 60


def test_admin_post_runs_the_check_and_the_preview_shows_it(
    client, marketer, full_campaign
):
    client.force_login(marketer)
    url = reverse("admin:campaigns_campaign_presend", args=[full_campaign.pk])
    assert client.get(url).status_code == 405
    response = client.post(url)
    preview_url = reverse("admin:campaigns_campaign_preview", args=[full_campaign.pk])
    assert response.status_code == 302
    assert response["Location"] == preview_url + "#presend"
    full_campaign.refresh_from_db()
    assert full_campaign.presend_state == Campaign.PresendState.DONE
    assert full_campaign.presend["blocking"] == 1
    page = client.get(preview_url).content.decode()
    assert "Run the pre-send check" in page
    assert "cannot be launched yet" in page
    assert "no value for ${tier} and no default" in page
    assert "opted out" in page
    assert "3 recipients need 1 segment" in page
    csv_url = reverse("admin:campaigns_campaign_presend_csv", args=[full_campaign.pk])
    download = client.get(csv_url)
    assert download.status_code == 200
    body = b"".join(download.streaming_content).decode()
    assert body.splitlines()[0].startswith("contact_id,identity,status")
    assert len(body.splitlines()) == 9
    event = AuditEvent.objects.get(action=AuditEvent.Action.EXPORT)
    assert event.target_type == "campaign"
    assert event.actor == marketer


def test_a_viewer_cannot_run_the_check(client, viewer, full_campaign):
    client.force_login(viewer)
    url = reverse("admin:campaigns_campaign_presend", args=[full_campaign.pk])
    assert client.post(url).status_code == 403
    assert full_campaign.presend is None
    preview_url = reverse("admin:campaigns_campaign_preview", args=[full_campaign.pk])
    page = client.get(preview_url).content.decode()
    assert "not been run yet" in page
    assert "Run the pre-send check" not in page


def test_a_viewer_sees_the_summary_but_cannot_download_every_recipient(
    client, viewer, marketer, full_campaign
):
    presend.run_presend_check(full_campaign)
    csv_url = reverse("admin:campaigns_campaign_presend_csv", args=[full_campaign.pk])
    preview_url = reverse("admin:campaigns_campaign_preview", args=[full_campaign.pk])
    client.force_login(viewer)
    page = client.get(preview_url).content.decode()
    assert "1 blocking" in page
    assert csv_url not in page
    assert client.get(csv_url).status_code == 403
    client.force_login(marketer)
    assert csv_url in client.get(preview_url).content.decode()
