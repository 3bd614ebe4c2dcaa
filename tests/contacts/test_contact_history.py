"""A contact's page tells their history (issue 14, point 4): every campaign
they were in with the message's status and time, their replies and their
consent events, in one timeline, newest first, 25 to a page, each entry
linking to its record; it costs the same few queries for a contact in 500
campaigns as in 5, and an erased contact's page shows only what erasure kept."""

import itertools
import re
from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from campaigns.models import Batch, Campaign, InboundMessage, Recipient
from contacts import history
from contacts.services.consent import Evidence, record_consent
from contacts.services.erasure import erase_contact

R = Recipient.Status
NOW = timezone.now().replace(microsecond=0)
PHONE = "+14155550177"
_keys = itertools.count(1)


def days_ago(n: float):
    return NOW - timedelta(days=n)


def in_campaigns(contact, template, specs):
    """specs: (name, status, sent `days ago` or None, reason) per campaign;
    the person gets one Recipient row in each, in a batch sent then."""
    campaigns = Campaign.objects.bulk_create(
        Campaign(name=name, template=template, status=Campaign.Status.COMPLETED)
        for name, *_ in specs
    )
    batches = Batch.objects.bulk_create(
        Batch(
            campaign=campaign,
            sequence=1,
            size=1,
            metadata_key=f"history-{next(_keys)}",
            status=Batch.Status.ACCEPTED,
            submitted_at=days_ago(sent) if sent is not None else None,
        )
        for campaign, (_, _, sent, _) in zip(campaigns, specs, strict=True)
    )
    Recipient.objects.bulk_create(
        Recipient(
            campaign=campaign,
            batch=batch if status != R.EXCLUDED else None,
            index=0 if status != R.EXCLUDED else None,
            contact=contact,
            identity=PHONE,
            status=status,
            reason=reason,
        )
        for campaign, batch, (_, status, _, reason) in zip(
            campaigns, batches, specs, strict=True
        )
    )
    return campaigns


def reply(contact, text, days, campaign=None, keyword=""):
    return InboundMessage.objects.create(
        contact=contact,
        campaign=campaign,
        channel="SMS",
        identity=PHONE,
        text=text,
        keyword=keyword,
        received_at=days_ago(days),
    )


def consent(contact, kind, days, wording="Signed up at the spring fair"):
    return record_consent(
        identity=contact.identities.get(),
        kind=kind,
        purpose="MARKETING",
        source="FORM",
        evidence=Evidence(wording=wording),
        occurred_at=days_ago(days),
    )


@pytest.fixture
def ada(make_contact):
    return make_contact(PHONE, first_name="Ada", last_name="Lovelace")


def page_of(client, contact, number=None):
    url = reverse("admin:contacts_contact_change", args=[contact.pk])
    response = client.get(url, {"history_page": number} if number else {})
    assert response.status_code == 200
    return response


def timeline(response) -> list[tuple[str, str]]:
    return [(e.label, str(e.title)) for e in response.context["history"].entries]


def test_campaigns_replies_and_consent_are_one_timeline_newest_first(
    client, compliance_admin, ada, make_template
):
    consent(ada, "OPT_IN", 30)
    spring, summer, _ = in_campaigns(
        ada,
        make_template(),
        [
            ("Spring sale", R.READ, 20, ""),
            ("Summer sale", R.FAILED, 10, "Number unreachable"),
            ("Autumn sale", R.EXCLUDED, None, "opted out"),
        ],
    )
    reply(ada, "Thanks, see you there", 19, spring)
    reply(ada, "STOP", 9, summer, keyword="STOP")
    consent(ada, "OPT_OUT", 9.5, wording="")
    client.force_login(compliance_admin)

    response = page_of(client, ada)

    assert timeline(response) == [
        ("Campaign", "Autumn sale"),  # left out today: the time it was frozen
        ("Reply", "STOP"),
        ("Consent", "Opt-out, marketing"),
        ("Campaign", "Summer sale"),
        ("Reply", "Thanks, see you there"),
        ("Campaign", "Spring sale"),
        ("Consent", "Opt-in, marketing"),
    ]
    html = response.content.decode()
    assert "History: campaigns, replies and consent (7)" in html
    # Each campaign with its message's status, reason and time.
    for words in (
        "Read",
        "Failed",
        "Number unreachable",
        "Excluded",
        "opted out",
        f"Sent {timezone.localtime(days_ago(20)):%Y-%m-%d %H:%M}",
        "Status since",  # its receipt came later than the send
        "Evidence: Signed up at the spring fair",
        "Stop (opt-out recorded)",
        "To campaign Summer sale",
    ):
        assert words in html, words
    # No page links for one page.
    assert "history_page=" not in html


def test_each_entry_links_to_the_campaign_dashboard_the_reply_or_the_event(
    client, compliance_admin, ada, make_template
):
    event = consent(ada, "OPT_IN", 3)
    (spring,) = in_campaigns(ada, make_template(), [("Spring", R.DELIVERED, 2, "")])
    answer = reply(ada, "Yes please", 1, spring)
    client.force_login(compliance_admin)

    html = page_of(client, ada).content.decode()

    links = re.findall(r'<a href="([^"]+)">([^<]+)</a>', html)
    assert (
        reverse("admin:campaigns_campaign_dashboard", args=[spring.pk]),
        "Spring",
    ) in links
    assert (
        reverse("admin:campaigns_inboundmessage_change", args=[answer.pk]),
        "Yes please",
    ) in links
    assert (
        reverse("admin:contacts_consentevent_change", args=[event.pk]),
        "Opt-in, marketing",
    ) in links
    for url, _ in links[-3:]:
        assert client.get(url).status_code == 200


def test_the_timeline_has_25_entries_a_page_and_admin_style_page_links(
    client, viewer, ada, make_template
):
    specs = [(f"Campaign {n:02d}", R.DELIVERED, 100 - n, "") for n in range(60)]
    in_campaigns(ada, make_template(), specs)
    client.force_login(viewer)  # whoever may view the contact reads it

    first = page_of(client, ada)
    assert [t for _, t in timeline(first)] == [
        f"Campaign {n:02d}" for n in range(59, 34, -1)
    ]
    html = first.content.decode()
    assert '<span class="this-page" aria-current="page">1</span>' in html
    assert 'href="?history_page=2#history"' in html
    assert 'href="?history_page=3#history"' in html
    assert "page 1 of 3, newest first" in html

    second = page_of(client, ada, 2)
    assert [t for _, t in timeline(second)] == [
        f"Campaign {n:02d}" for n in range(34, 9, -1)
    ]
    last = page_of(client, ada, 3)
    assert [t for _, t in timeline(last)] == [
        f"Campaign {n:02d}" for n in range(9, -1, -1)
    ]
    # A page number out of range or mistyped gives the nearest page.
    assert timeline(page_of(client, ada, 99)) == timeline(last)
    assert timeline(page_of(client, ada, "two")) == timeline(first)


def test_page_links_keep_the_other_query_parameters(client, viewer, ada, make_template):
    in_campaigns(ada, make_template(), [(f"C{n}", R.READ, n, "") for n in range(30)])
    client.force_login(viewer)
    url = reverse("admin:contacts_contact_change", args=[ada.pk])
    html = client.get(url, {"_changelist_filters": "q=Ada"}).content.decode()
    assert 'href="?_changelist_filters=q%3DAda&amp;history_page=2#history"' in html


def queries_for(client, contact, page=None) -> int:
    with CaptureQueriesContext(connection) as captured:
        page_of(client, contact, page)
    return len(captured.captured_queries)


def test_a_contact_in_500_campaigns_costs_the_same_queries_as_one_in_5(
    client, compliance_admin, make_contact, make_template
):
    template = make_template()
    few, many = make_contact(first_name="Few"), make_contact(first_name="Many")
    for person, n in ((few, 5), (many, 500)):
        name = person.first_name
        specs = [(f"{name} {i}", R.DELIVERED, i / 10, "") for i in range(n)]
        in_campaigns(person, template, specs)
        for i in range(n // 5):
            reply(person, f"Reply {i}", i / 7)
    client.force_login(compliance_admin)
    queries_for(client, few)  # warm caches (content types, sessions)

    baseline = queries_for(client, few)
    assert queries_for(client, many) == baseline
    assert queries_for(client, many, 24) <= baseline  # the last page too
    # The timeline itself: a count, a page of keys and the page's rows per source.
    with CaptureQueriesContext(connection) as captured:
        page = history.contact_history(many, 10)
    assert len(page.entries) == 25
    assert len(captured.captured_queries) <= 3 * len(history.sources())


def test_an_erased_contacts_history_shows_only_what_erasure_keeps(
    client, compliance_admin, ada, make_template
):
    consent(ada, "OPT_IN", 5, wording="Ada Lovelace signed at the fair")
    (spring,) = in_campaigns(ada, make_template(), [("Spring", R.DELIVERED, 4, "")])
    reply(ada, "Call me on +1 415 555 0177, Ada", 3, spring)
    ada.attributes = {"tier": "gold"}
    ada.save()
    erase_contact(contact=ada, actor=compliance_admin)
    client.force_login(compliance_admin)

    response = page_of(client, ada)

    # The kept facts: the campaign and its status, the reply's time and
    # link, the ledger's events (one added by the erasure itself).
    assert timeline(response) == [
        ("Consent", "Opt-out, transactional"),  # the same instant: newest row first
        ("Consent", "Opt-out, marketing"),
        ("Reply", "Text erased"),
        ("Campaign", "Spring"),
        ("Consent", "Opt-in, marketing"),
    ]
    html = response.content.decode()
    assert "Delivered" in html
    assert "only what erasure keeps is shown" in html
    section = html[html.index('id="history"') :]
    for trace in (
        "Ada",
        "Lovelace",
        "0177",
        "+1415",
        "Call me",
        "signed at the fair",
        "gold",
    ):
        assert trace not in section, trace
    # The keyed hash the numbers became is no reader's business either.
    assert not re.search(r"erased:[0-9a-f]{8}", section)
