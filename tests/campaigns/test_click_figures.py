"""What a marketer reads of tracked links (issue 16, point 3): the dashboard's
Clicked step, clicks over time and per link; the click rate on the campaign
list; a person's clicks in their history; the results CSV's click columns.

The campaigns are launched for real on the simulator and their links opened
through the real redirect, by phones and by a link-preview fetcher.
"""

import csv
import io
import itertools
import json
import re
from datetime import timedelta

import pytest
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from campaigns import counters
from campaigns.dispatch import launching
from campaigns.models import Click, Recipient, Segment, ShortLink
from campaigns.segments import evaluate
from campaigns.tracking import click_buffer, results_csv
from contacts import history
from contacts.models import Contact

R = Recipient.Status
PHONE = "Mozilla/5.0 (iPhone; CPU iPhone OS 17_4) Mobile/15E148 Safari/604.1"
PREVIEW = "WhatsApp/2.23.20"
CHANGELIST = reverse("admin:campaigns_campaign_changelist")
_blocks = itertools.count(10)


pytestmark = pytest.mark.usefixtures("short_links")


def open_link(code: str, agent: str = PHONE) -> None:
    assert Client().get(f"/l/{code}", HTTP_USER_AGENT=agent).status_code == 302


@pytest.fixture
def launch(
    make_audience,
    make_template,
    make_campaign,
    sender,
    sinch,
    django_capture_on_commit_callbacks,
):
    """Launch a campaign of `text` to `n` people on the simulator; `delivered`
    of them get their message (the rest fail); returns the campaign and its
    recipients' short-link codes, in recipient order, per link."""

    def run(name, text, n=4, delivered=3, track_links=True):
        people = make_audience(
            f"{name} buyers", n, phone=f"+1415555{next(_blocks)}{{:02d}}"
        )
        template = make_template(name, text)
        campaign = make_campaign(
            template, [people], name, checked=True, track_links=track_links
        )
        with django_capture_on_commit_callbacks(execute=True):
            launching.launch(campaign, sender)
        ids = list(
            Recipient.objects.filter(campaign=campaign, is_test=False)
            .order_by("pk")
            .values_list("pk", flat=True)
        )
        Recipient.objects.filter(pk__in=ids[:delivered]).update(status=R.DELIVERED)
        Recipient.objects.filter(pk__in=ids[delivered:]).update(status=R.FAILED)
        counters.recount(campaign.pk)
        codes = {}
        for link in ShortLink.objects.filter(link__campaign=campaign).select_related(
            "link"
        ):
            codes.setdefault(link.link.parameter, {})[link.recipient_id] = link.text
        per_link = {p: [c[r] for r in ids] for p, c in sorted(codes.items())}
        campaign.refresh_from_db()
        return campaign, ids, per_link

    return run


@pytest.fixture
def spring(launch):
    """Four people, three delivered. The first opens the sale link twice
    and the shoes link once, WhatsApp draws a preview of her sale link, the
    second opens the sale link once, the third's sale link is only fetched
    by WhatsApp: 2 clickers, 4 clicks, 2 previews."""
    campaign, ids, links = launch(
        "Spring",
        "Sale https://shop.example.com/sale and https://shop.example.com/shoes",
    )
    sale, shoes = links["cm_link_1"], links["cm_link_2"]
    open_link(sale[0])
    open_link(sale[0])
    open_link(shoes[0])
    open_link(sale[0], PREVIEW)
    open_link(sale[1])
    open_link(sale[2], PREVIEW)
    assert click_buffer.flush() == 6
    return campaign, ids


def dashboard(client, campaign) -> str:
    url = reverse("admin:campaigns_campaign_dashboard", args=[campaign.pk])
    response = client.get(url)
    assert response.status_code == 200
    return response.content.decode()


def section(page: str, name: str) -> str:
    found = re.search(rf'<section id="{name}">(.*?)</section>', page, re.S)
    assert found, f"no {name} section"
    return found.group(1)


def cells(html: str) -> list[list[str]]:
    rows = re.findall(r"<tr>(.*?)</tr>", html, re.S)
    return [
        [
            re.sub(r"<[^>]+>", "", c).strip()
            for c in re.findall(r"<td[^>]*>(.*?)</td>", r)
        ]
        for r in rows
        if "<td" in r  # not the header row
    ]


# --- the dashboard ------------------------------------------------------------


def test_the_funnel_ends_with_the_people_who_clicked_of_those_delivered(
    client, marketer, spring
):
    campaign, _ = spring
    client.force_login(marketer)

    funnel = section(dashboard(client, campaign), "funnel")

    step = re.search(
        r'<g class="funnel-step" id="funnel-clicked" data-count="(\d+)"', funnel
    )
    assert step
    assert step.group(1) == "2"  # people, once each; previews never
    assert "67 % of delivered" in funnel  # 2 of the 3 delivered


def test_clicks_over_time_and_per_link_with_previews_apart(client, viewer, spring):
    campaign, _ = spring
    client.force_login(viewer)

    clicks = section(dashboard(client, campaign), "clicks")

    assert re.search(r'id="clicks-clickers"><span class="n">2<', clicks)
    assert re.search(r'id="clicks-total"><span class="n">4<', clicks)
    assert re.search(r'id="clicks-previews"><span class="n">2<', clicks)
    assert cells(clicks) == [
        ["https://shop.example.com/sale", "2", "3", "2"],
        ["https://shop.example.com/shoes", "1", "1", "0"],
    ]
    # The chart: this hour's bar holds the 4 clicks of people.
    bars = re.findall(r'class="timeline-clicks" data-value="(\d+)"', clicks)
    assert sum(map(int, bars)) == 4
    assert "Clicks (4)" in clicks


def test_clicks_spread_over_days_are_drawn_per_day(client, marketer, spring):
    campaign, ids = spring
    Click.objects.filter(recipient_id=ids[1]).update(
        clicked_at=timezone.now() - timedelta(days=5)
    )
    client.force_login(marketer)

    clicks = section(dashboard(client, campaign), "clicks")

    assert "clicks per day" in clicks
    bars = [
        int(v)
        for v in re.findall(r'class="timeline-clicks" data-value="(\d+)"', clicks)
    ]
    assert (bars[0], bars[-1], sum(bars), len(bars)) == (1, 3, 4, 6)


def test_the_live_funnel_keeps_the_clicked_step(client, marketer, spring):
    campaign, ids = spring
    client.force_login(marketer)
    url = reverse("admin:campaigns_campaign_dashboard_live", args=[campaign.pk])
    assert (
        'data-count="2"'
        in client.get(url).json()["funnel_svg"].split("funnel-clicked")[1][:20]
    )

    open_link(
        ShortLink.objects.get(recipient_id=ids[2], link__parameter="cm_link_1").text
    )
    click_buffer.flush()

    svg = client.get(url).json()["funnel_svg"]
    assert re.search(r'id="funnel-clicked" data-count="3"', svg)


def test_a_campaign_without_tracked_links_shows_nothing_of_clicks(
    client, marketer, launch
):
    campaign, _, links = launch("Plain", "Hello, see you soon", track_links=False)
    assert links == {}
    client.force_login(marketer)

    page = dashboard(client, campaign)

    assert "funnel-clicked" not in page
    assert '<section id="clicks">' not in page
    url = reverse("admin:campaigns_campaign_dashboard_live", args=[campaign.pk])
    assert "funnel-clicked" not in client.get(url).json()["funnel_svg"]


# --- the campaign list --------------------------------------------------------


def list_rows(client) -> dict[str, str]:
    """{campaign name: its click-rate cell}, in the list's order."""
    page = client.get(CHANGELIST).content.decode()
    return rows_of(page)


def rows_of(page: str) -> dict[str, str]:
    rows = {}
    for row in re.findall(r"<tr>.*?</tr>", page, re.S):
        name = re.search(r'<th class="field-name"><a [^>]*>(.*?)</a>', row)
        rate = re.search(r'<td class="field-click_rate">(.*?)</td>', row)
        if name and rate:
            rows[name.group(1)] = rate.group(1)
    return rows


def test_the_list_shows_the_click_rate_and_a_dash_without_tracked_links(
    client, marketer, spring, launch
):
    launch("Plain", "Hello, see you soon", track_links=False)
    launch("Quiet", "Look https://shop.example.com/quiet")  # no click yet
    client.force_login(marketer)

    assert list_rows(client) == {"Quiet": "0 %", "Plain": "—", "Spring": "67 %"}


def test_the_list_sorts_by_click_rate(client, marketer, spring, launch):
    _, _, links = launch("Busy", "Look https://shop.example.com/busy")
    for code in links["cm_link_1"][:3]:
        open_link(code)
    click_buffer.flush()  # 3 of 3 delivered
    launch("Plain", "Hello, see you soon", track_links=False)
    client.force_login(marketer)
    page = client.get(CHANGELIST).content.decode()
    header = re.findall(r'<th scope="col" class="[^"]*column-(\w+)', page)
    position = header.index("click_rate") + 1

    ascending = rows_of(client.get(f"{CHANGELIST}?o={position}").content.decode())
    descending = rows_of(client.get(f"{CHANGELIST}?o=-{position}").content.decode())

    ranked = [n for n in ascending if n != "Plain"]
    assert ranked == ["Spring", "Busy"]
    assert [n for n in descending if n != "Plain"] == ["Busy", "Spring"]
    assert ascending["Busy"] == "100 %"


def test_click_rates_cost_no_query_per_campaign(
    client, marketer, spring, launch, django_assert_max_num_queries
):
    client.force_login(marketer)
    client.get(CHANGELIST)  # session and content types warmed
    with django_assert_max_num_queries(20) as few:
        client.get(CHANGELIST)
    baseline = len(few.captured_queries)
    for n in range(3):
        _, _, links = launch(f"More {n}", f"Look https://shop.example.com/{n}", n=2)
        open_link(links["cm_link_1"][0])
    click_buffer.flush()

    with django_assert_max_num_queries(baseline):
        rates = list_rows(client)

    assert rates["More 0"] == "50 %"  # 1 of 2 delivered
    assert len(rates) == 4


# --- a person's history --------------------------------------------------------


def test_a_persons_clicks_are_in_their_history_newest_first(
    client, compliance_admin, spring
):
    campaign, ids = spring
    first = Recipient.objects.get(pk=ids[0])
    person = Contact.objects.get(pk=first.contact_id)
    now = timezone.now()
    mine = Click.objects.filter(recipient_id=first.pk)
    # Her four requests: the shoes link 10 minutes from now, the sale link
    # 30 and 20 minutes from now, and WhatsApp's preview fetch the newest.
    Click.objects.filter(pk=mine.get(link__parameter="cm_link_2").pk).update(
        clicked_at=now + timedelta(minutes=10)
    )
    sale = mine.filter(link__parameter="cm_link_1", is_preview=False)
    for minutes, pk in zip((30, 20), sale.values_list("pk", flat=True), strict=True):
        Click.objects.filter(pk=pk).update(clicked_at=now + timedelta(minutes=minutes))
    mine.filter(is_preview=True).update(clicked_at=now + timedelta(minutes=40))
    client.force_login(compliance_admin)
    url = reverse("admin:contacts_contact_change", args=[person.pk])

    entries = client.get(url).context["history"].entries

    clicks = [(e.label, e.title, e.details) for e in entries if e.kind == "click"]
    # The preview fetch is not her click.
    assert clicks == [
        ("Link click", "https://shop.example.com/sale", ("Campaign Spring",)),
        ("Link click", "https://shop.example.com/sale", ("Campaign Spring",)),
        ("Link click", "https://shop.example.com/shoes", ("Campaign Spring",)),
    ]
    assert entries[0].kind == "click"  # newer than the campaign's sending
    assert entries[0].url == reverse(
        "admin:campaigns_campaign_dashboard", args=[campaign.pk]
    )


def test_clicks_are_paginated_with_the_rest_of_the_history(spring):
    _, ids = spring
    person = Contact.objects.get(pk=Recipient.objects.get(pk=ids[0]).contact_id)
    everything = history.contact_history(person, 1, per_page=100).entries

    pages = [history.contact_history(person, n, per_page=2) for n in (1, 2, 3)]

    # Her 3 clicks, the message sent to her and her opt-in.
    assert pages[0].page.paginator.count == len(everything) == 5
    assert [e for p in pages for e in p.entries] == everything
    assert [e.kind for e in everything][:3] == ["click", "click", "click"]
    assert {e.kind for e in everything[3:]} == {"campaign", "consent"}


# --- the results CSV ----------------------------------------------------------


def csv_rows(client, campaign) -> list[dict]:
    url = reverse("admin:campaigns_campaign_results_csv", args=[campaign.pk])
    response = client.get(url)
    assert response.status_code == 200
    return list(
        csv.DictReader(io.StringIO(b"".join(response.streaming_content).decode()))
    )


def test_the_results_csv_has_each_recipients_clicks_and_first_click(
    client, compliance_admin, spring
):
    campaign, ids = spring
    first_click = timezone.now() - timedelta(hours=3)
    earliest = Click.objects.filter(recipient_id=ids[0], is_preview=False).earliest(
        "pk"
    )
    Click.objects.filter(pk=earliest.pk).update(clicked_at=first_click)
    # The preview fetch, earlier still, is not her first click.
    Click.objects.filter(recipient_id=ids[0], is_preview=True).update(
        clicked_at=first_click - timedelta(hours=1)
    )
    client.force_login(compliance_admin)

    rows = {int(r["recipient_id"]): r for r in csv_rows(client, campaign)}

    assert [rows[pk]["clicks"] for pk in ids] == ["3", "1", "0", "0"]
    assert rows[ids[0]]["first_click_at"] == first_click.isoformat()
    assert rows[ids[1]]["first_click_at"]
    assert rows[ids[2]]["first_click_at"] == ""


def test_the_click_columns_cost_one_query_per_chunk_not_per_row(
    client, compliance_admin, launch, monkeypatch, django_assert_num_queries
):
    campaign, _, links = launch("Many", "Look https://shop.example.com/m", n=12)
    for code in links["cm_link_1"]:
        open_link(code)
    click_buffer.flush()
    monkeypatch.setattr(results_csv, "CSV_CHUNK", 5)
    # links probe + 4 chunk reads (5, 5, 2, none) + 3 click reads
    with django_assert_num_queries(8):
        rows = list(results_csv.result_rows(campaign, full_numbers=False))
    assert [r[-2] for r in rows[1:]] == ["1"] * 12


def test_a_campaign_without_tracked_links_has_empty_click_columns(
    client, compliance_admin, launch
):
    campaign, _, _ = launch("Plain", "Hello, see you soon", track_links=False)
    client.force_login(compliance_admin)

    rows = csv_rows(client, campaign)

    assert len(rows) == 4
    assert {(r["clicks"], r["first_click_at"]) for r in rows} == {("", "")}


# --- segments -----------------------------------------------------------------


def test_a_marketer_builds_clicked_and_did_not_click_segments(client, marketer, spring):
    campaign, ids = spring
    person = dict(Recipient.objects.filter(pk__in=ids).values_list("pk", "contact_id"))
    client.force_login(marketer)
    editor = {
        "name": "Clickers",
        "match": "all",
        "g-0-match": "all",
        "g-0-c-0-field": "engagement",
        "g-0-c-0-op": "clicked",
        "g-0-c-0-campaign": str(campaign.pk),
    }

    response = client.post(reverse("admin:campaigns_segment_add"), editor)

    assert response.status_code == 302
    clickers = Segment.objects.get(name="Clickers").definition
    assert clickers["groups"][0]["conditions"] == [
        {"field": "engagement", "op": "clicked", "value": None, "campaign": campaign.pk}
    ]
    assert set(evaluate.matching_contacts(clickers).values_list("pk", flat=True)) == {
        person[ids[0]],
        person[ids[1]],
    }
    others = json.loads(json.dumps(clickers).replace('"clicked"', '"not_clicked"'))
    answer = client.post(
        reverse("admin:campaigns_segment_count"),
        json.dumps({"definition": others}),
        content_type="application/json",
    ).json()
    assert answer["count"] == 2
    assert answer["description"] == 'did not click a link of campaign "Spring"'
    assert set(evaluate.matching_contacts(others).values_list("pk", flat=True)) == {
        person[ids[2]],
        person[ids[3]],
    }
