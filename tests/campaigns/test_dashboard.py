"""The delivery dashboard: what a marketer reads at a glance, live, and safely.

Campaigns are built here as the dispatch and the receipts leave them
(batches accepted at Sinch, recipients in their statuses, counts kept), so
the page is tested on exactly the data it reads; the browser test drives the
real launch, webhook and processing end to end.
"""

import csv
import html as htmllib
import io
import itertools
import re
import xml.etree.ElementTree as ET
from datetime import timedelta

import pytest
from django.core.cache import cache
from django.urls import reverse
from django.utils import timezone

from campaigns import counters
from campaigns.models import (
    Batch,
    Campaign,
    CampaignTimeline,
    Recipient,
)
from campaigns.tracking import dashboard, results_csv
from contacts.models import AuditEvent

R = Recipient.Status
S = Campaign.Status
_key = itertools.count(1)
SVG = "{http://www.w3.org/2000/svg}"


@pytest.fixture(autouse=True)
def fresh_cache():
    """The breakdowns are cached; each test starts without them."""
    cache.clear()
    yield
    cache.clear()


def add_recipients(campaign, batch, rows):
    """rows: (identity, status, failure_code, reason) tuples; counts recounted."""
    start = Recipient.objects.filter(batch=batch).count() if batch else 0
    Recipient.objects.bulk_create(
        Recipient(
            campaign=campaign,
            batch=batch if status != R.EXCLUDED else None,
            index=start + i if status != R.EXCLUDED else None,
            identity=identity,
            status=status,
            failure_code=code,
            reason=reason,
        )
        for i, (identity, status, code, reason) in enumerate(rows)
    )
    counters.recount(campaign.pk)


@pytest.fixture
def make_submitted(make_template, make_campaign):
    """Campaigns of one template, launched half an hour ago and submitted
    (unless `status` says otherwise)."""
    template = make_template("Spring", "Hi ${first_name}, spring sale!")

    def make(name="Spring sale", status=S.SUBMITTED, **fields) -> Campaign:
        return make_campaign(
            template,
            name=name,
            status=status,
            launched_at=timezone.now() - timedelta(minutes=30),
            **fields,
        )

    return make


def make_batch(campaign, sequence, size, **fields) -> Batch:
    fields.setdefault("status", Batch.Status.ACCEPTED)
    fields.setdefault("sinch_batch_id", f"01SINCHBATCH{sequence:04d}")
    return Batch.objects.create(
        campaign=campaign,
        sequence=sequence,
        size=size,
        metadata_key=f"key-{next(_key)}",
        **fields,
    )


@pytest.fixture
def spring(make_submitted):
    """10 recipients: 2 excluded, 5 delivered (1 read), 2 failed, 1 queued;
    two batches at Sinch, the first processed; a few minutes of receipts."""
    campaign = make_submitted()
    first = make_batch(campaign, 1, 5, remote_status="PROCESSED")
    second = make_batch(campaign, 2, 3, remote_status="READY")
    add_recipients(
        campaign,
        first,
        [
            ("+14155550101", R.DELIVERED, "", ""),
            ("+14155550102", R.DELIVERED, "", ""),
            ("+14155550103", R.READ, "", ""),
            ("+14155550104", R.FAILED, "RECIPIENT_NOT_REACHABLE", ""),
            ("+14155550105", R.DELIVERED, "", ""),
        ],
    )
    add_recipients(
        campaign,
        second,
        [
            ("+14155550106", R.DELIVERED, "", ""),
            ("+14155550107", R.FAILED, "DELIVERY_REJECTED_DUE_TO_POLICY", ""),
            ("+14155550108", R.QUEUED_ON_CHANNEL, "", ""),
        ],
    )
    add_recipients(
        campaign,
        None,
        [
            ("+14155550109", R.EXCLUDED, "", "opted out"),
            ("+14155550110", R.EXCLUDED, "", "missing parameter first_name"),
        ],
    )
    minute = timezone.now().replace(second=0, microsecond=0) - timedelta(minutes=3)
    CampaignTimeline.objects.bulk_create(
        [
            CampaignTimeline(
                campaign=campaign, minute=minute, status=R.DELIVERED, count=3
            ),
            CampaignTimeline(
                campaign=campaign, minute=minute, status=R.FAILED, count=1
            ),
            CampaignTimeline(
                campaign=campaign,
                minute=minute + timedelta(minutes=2),
                status=R.DELIVERED,
                count=3,
            ),
            CampaignTimeline(
                campaign=campaign,
                minute=minute + timedelta(minutes=2),
                status=R.READ,
                count=1,
            ),
            CampaignTimeline(
                campaign=campaign,
                minute=minute + timedelta(minutes=2),
                status=R.FAILED,
                count=1,
            ),
        ]
    )
    return campaign


def url(name, campaign):
    return reverse(f"admin:campaigns_campaign_{name}", args=[campaign.pk])


def text_of(response) -> str:
    text = re.sub(r"<[^>]+>", " ", response.content.decode())
    return re.sub(r"\s+", " ", htmllib.unescape(text))


def svg_in(html: str, element_id: str) -> ET.Element:
    """The SVG inside the element with `element_id`, parsed (so: well-formed)."""
    start = html.index(f'id="{element_id}"')
    svg = html[html.index("<svg", start) : html.index("</svg>", start) + 6]
    return ET.fromstring(svg)


# --- what the page says --------------------------------------------------------


def test_a_marketer_reads_progress_counters_reasons_exclusions_and_batches(
    client, marketer, spring
):
    client.force_login(marketer)
    response = client.get(url("dashboard", spring))
    assert response.status_code == 200
    page = text_of(response)
    # 8 to send (2 excluded); 5 delivered + 2 failed have an outcome.
    assert "88 %" in page
    assert "7 of 8 messages have an outcome; waiting for 1." in page
    assert "Submitted to Sinch: 8" in page
    assert "Processed by Sinch: 5" in page
    html = response.content.decode()
    assert re.search(r'data-count="delivered">5<', html)
    assert re.search(r'data-count="read">1<', html)
    assert re.search(r'data-count="failed">2<', html)
    assert re.search(r'data-count="excluded">2<', html)
    assert re.search(r'data-count="queued">1<', html)
    # Failure reasons in words, with what to do.
    assert "Phone or app not reachable" in page
    assert "A later attempt often gets through" in page
    assert "Refused by the channel's rules" in page
    assert page.count("may work later") == 1
    assert page.count("fix something first") == 1
    # Exclusions with reasons.
    assert "Opted out" in page
    assert "Missing parameter first_name" in page
    # Batches with their Sinch ids and states, in the dispatch page's words.
    assert "01SINCHBATCH0001" in page
    assert "01SINCHBATCH0002" in page
    assert "Processed by Sinch" in page
    assert "accepted by Sinch" in page
    # Links: recipients filtered to the campaign, the CSV, the campaign page.
    assert f"recipient/?campaign__id__exact={spring.pk}" in html
    assert url("results_csv", spring) in html


def test_the_campaign_page_and_the_changelist_link_to_the_dashboard(
    client, marketer, spring, make_submitted
):
    draft = make_submitted("Draft", status=S.DRAFT)
    client.force_login(marketer)
    change = client.get(reverse("admin:campaigns_campaign_change", args=[spring.pk]))
    assert url("dashboard", spring) in change.content.decode()
    changelist = client.get(reverse("admin:campaigns_campaign_changelist"))
    assert url("dashboard", spring) in changelist.content.decode()
    assert url("dashboard", draft) not in changelist.content.decode()


def test_a_finished_campaign_says_100_percent_and_the_figures_add_up(
    client, marketer, make_submitted
):
    campaign = make_submitted()
    batch = make_batch(campaign, 1, 3, remote_status="PROCESSED")
    add_recipients(
        campaign,
        batch,
        [
            ("+14155550201", R.DELIVERED, "", ""),
            ("+14155550202", R.READ, "", ""),
            ("+14155550203", R.FAILED, "MESSAGE_EXPIRED", ""),
        ],
    )
    client.force_login(marketer)
    page = text_of(client.get(url("dashboard", campaign)))
    assert "100 %" in page
    assert "Finished: every message has an outcome — 2 delivered, 1 failed." in page


def test_receipts_that_stopped_arriving_are_called_out(client, marketer, spring):
    client.force_login(marketer)
    assert (
        'id="stalled-warning" hidden'
        in client.get(url("dashboard", spring)).content.decode()
    )
    Campaign.objects.filter(pk=spring.pk).update(
        receipts_stalled="No delivery report for 45 minutes while 1 message waits."
    )
    response = client.get(url("dashboard", spring))
    assert 'id="stalled-warning" hidden' not in response.content.decode()
    assert "Receipts stopped arriving." in text_of(response)
    assert "No delivery report for 45 minutes" in text_of(response)


# --- the charts ---------------------------------------------------------------


def test_the_funnel_and_timeline_are_drawn_with_no_receipts_yet(
    client, marketer, make_submitted
):
    campaign = make_submitted()
    batch = make_batch(campaign, 1, 2, remote_status="")
    add_recipients(
        campaign,
        batch,
        [("+14155550301", R.SUBMITTED, "", ""), ("+14155550302", R.SUBMITTED, "", "")],
    )
    client.force_login(marketer)
    html = client.get(url("dashboard", campaign)).content.decode()
    funnel = svg_in(html, "funnel-chart")
    steps = funnel.findall(f"{SVG}g")
    assert [s.get("data-count") for s in steps] == ["2", "0", "0", "0"]
    widths = [
        float(s.find(f"{SVG}rect[@class='funnel-bar']").get("width")) for s in steps
    ]
    assert widths[0] > 0
    assert widths[1:] == [0, 0, 0]
    timeline = svg_in(html, "timeline-chart")
    assert "No delivery receipts yet" in ET.tostring(timeline, encoding="unicode")
    assert not timeline.findall(f"{SVG}polyline")


def test_the_funnel_narrows_from_submitted_to_read_with_percentages(
    client, marketer, spring
):
    client.force_login(marketer)
    html = client.get(url("dashboard", spring)).content.decode()
    funnel = svg_in(html, "funnel-chart")
    steps = funnel.findall(f"{SVG}g")
    # Submitted 8; queued reached 1 queued + 5 delivered; delivered 5; read 1.
    assert [s.get("data-count") for s in steps] == ["8", "6", "5", "1"]
    widths = [
        float(s.find(f"{SVG}rect[@class='funnel-bar']").get("width")) for s in steps
    ]
    assert widths == sorted(widths, reverse=True)
    assert widths[-1] > 0
    labels = ET.tostring(funnel, encoding="unicode")
    for words in ("Submitted", "Queued on channel", "Delivered", "Read"):
        assert words in labels
    assert "75 %" in labels
    assert "62 %" in labels
    assert "12 %" in labels


def test_the_timeline_shows_receipts_per_minute_with_gaps_as_zero(
    client, marketer, spring
):
    client.force_login(marketer)
    html = client.get(url("dashboard", spring)).content.decode()
    timeline = svg_in(html, "timeline-chart")
    bars = {}
    for rect in timeline.iter(f"{SVG}rect"):
        if (rect.get("class") or "").startswith("timeline-"):
            bars.setdefault(rect.get("class"), []).append(rect)
    assert set(bars) == {"timeline-delivered", "timeline-read", "timeline-failed"}
    # Three minutes (the middle one empty), one bar each.
    delivered = bars["timeline-delivered"]
    assert [r.get("data-value") for r in delivered] == ["3", "0", "3"]
    heights = [float(r.get("height")) for r in delivered]
    assert heights[0] == heights[2] > 0 == heights[1]
    assert [r.get("data-value") for r in bars["timeline-read"]] == ["0", "0", "1"]
    text = ET.tostring(timeline, encoding="unicode")
    assert "Delivered (6)" in text
    assert "Failed (2)" in text
    assert "Read (1)" in text


def test_a_long_campaign_is_bucketed_into_a_readable_number_of_points(
    make_submitted,
):
    campaign = make_submitted()
    start = timezone.now().replace(second=0, microsecond=0) - timedelta(hours=10)
    CampaignTimeline.objects.bulk_create(
        CampaignTimeline(
            campaign=campaign,
            minute=start + timedelta(minutes=m),
            status=R.DELIVERED,
            count=1,
        )
        for m in range(600)
    )
    svg = str(dashboard.timeline_svg(campaign))
    root = ET.fromstring(svg)
    points = root.find(f"{SVG}polyline").get("points").split()
    assert len(points) <= dashboard.TIMELINE_BUCKETS
    assert "per 7 minutes" in svg
    assert "Delivered (600)" in svg


# --- live figures ---------------------------------------------------------------


def test_the_live_endpoint_follows_the_recipients_as_they_move(client, viewer, spring):
    client.force_login(viewer)
    before = client.get(url("dashboard_live", spring)).json()
    assert before["counts"]["queued"] == 1
    assert before["percent_complete"] == 88
    assert not before["complete"]
    last = Recipient.objects.get(campaign=spring, status=R.QUEUED_ON_CHANNEL)
    Recipient.objects.filter(pk=last.pk).update(status=R.DELIVERED)
    counters.moved(spring.pk, R.QUEUED_ON_CHANNEL, R.DELIVERED, 1)
    after = client.get(url("dashboard_live", spring)).json()
    assert after["counts"]["queued"] == 0
    assert after["counts"]["delivered"] == 6
    assert after["percent_complete"] == 100
    assert after["complete"]
    assert after["headline"].startswith("Finished")
    assert [m["count"] for m in after["milestones"]] == [8, 5, 6]
    assert {s["key"]: s["width"] for s in after["progress"]}["delivered"] == 75.0
    ET.fromstring(after["funnel_svg"])
    ET.fromstring(after["timeline_svg"])
    assert 'data-count="6"' in after["funnel_svg"]


def test_the_page_polls_the_live_endpoint_with_its_own_script(client, marketer, spring):
    client.force_login(marketer)
    html = client.get(url("dashboard", spring)).content.decode()
    assert f'data-live-url="{url("dashboard_live", spring)}"' in html
    assert "campaigns/dashboard.js" in html
    assert "//cdn" not in html
    assert "https://" not in html.split("<body")[1]


# --- who may see what ----------------------------------------------------------


@pytest.mark.parametrize(
    ("persona", "page", "csv"),
    [
        ("viewer", 200, 403),
        ("marketer", 200, 200),
        ("sender", 200, 200),
        ("compliance_admin", 200, 200),
    ],
)
def test_every_role_sees_the_dashboard_only_authors_and_exporters_get_the_csv(
    client, request, spring, persona, page, csv
):
    user = request.getfixturevalue(persona)
    client.force_login(user)
    response = client.get(url("dashboard", spring))
    assert response.status_code == page
    assert (url("results_csv", spring) in response.content.decode()) == (csv == 200)
    assert client.get(url("dashboard_live", spring)).status_code == page
    assert client.get(url("results_csv", spring)).status_code == csv


def test_staff_without_a_role_and_outsiders_see_nothing(
    client, make_user, outsider, spring
):
    client.force_login(make_user("nobody"))
    for name in ("dashboard", "dashboard_live", "results_csv"):
        assert client.get(url(name, spring)).status_code == 403
    client.force_login(outsider)
    for name in ("dashboard", "dashboard_live", "results_csv"):
        response = client.get(url(name, spring))
        assert response.status_code == 302
        assert "/login/" in response["Location"]


# --- the CSV ------------------------------------------------------------------


def test_the_results_csv_has_every_recipient_is_spreadsheet_safe_and_audited(
    client, compliance_admin, spring
):
    Recipient.objects.filter(campaign=spring, identity="+14155550109").update(
        reason='=HYPERLINK("http://evil.example","click")'
    )
    client.force_login(compliance_admin)
    response = client.get(url("results_csv", spring))
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/csv")
    assert "attachment" in response["Content-Disposition"]
    rows = list(
        csv.DictReader(io.StringIO(b"".join(response.streaming_content).decode()))
    )
    assert len(rows) == 10
    by_phone = {r["identity"]: r for r in rows}
    assert by_phone["+14155550104"]["status"] == "Failed"
    assert by_phone["+14155550104"]["failure"] == "Phone or app not reachable"
    assert by_phone["+14155550104"]["failure_class"] == "transient"
    assert by_phone["+14155550101"]["status"] == "Delivered"
    assert by_phone["+14155550101"]["batch"] == "1"
    assert by_phone["+14155550109"]["reason"].startswith("'=HYPERLINK")
    audit = AuditEvent.objects.get(action=AuditEvent.Action.EXPORT)
    assert (audit.actor, audit.target_type, audit.target_id) == (
        compliance_admin,
        "campaign",
        str(spring.pk),
    )
    assert "per-recipient results" in audit.summary
    assert "masked" not in audit.summary


def test_the_csv_leaves_out_test_sends_and_reads_in_chunks(
    client, marketer, spring, monkeypatch
):
    Recipient.objects.create(
        campaign=spring, identity="+14155550999", is_test=True, status=R.SUBMITTED
    )
    monkeypatch.setattr(results_csv, "CSV_CHUNK", 3)
    client.force_login(marketer)
    body = b"".join(client.get(url("results_csv", spring)).streaming_content).decode()
    assert "+14155550999" not in body
    assert len(body.strip().splitlines()) == 11


# --- cost ---------------------------------------------------------------------


def _grow(campaign, n):
    batch = make_batch(campaign, 99, n)
    statuses = [R.DELIVERED, R.READ, R.FAILED, R.EXCLUDED, R.QUEUED_ON_CHANNEL]
    codes = ["RECIPIENT_NOT_REACHABLE", "CHANNEL_FAILURE", "NO_PERMISSION", ""]
    add_recipients(
        campaign,
        batch,
        [
            (
                f"+1415666{i:04d}",
                statuses[i % 5],
                codes[i % 4] if statuses[i % 5] == R.FAILED else "",
                f"reason {i % 7}" if statuses[i % 5] == R.EXCLUDED else "",
            )
            for i in range(n)
        ],
    )
    for i in range(60):
        make_batch(campaign, 100 + i, 1)


def test_the_page_and_its_live_figures_cost_the_same_few_queries_at_any_size(
    client, marketer, spring, django_assert_max_num_queries
):
    client.force_login(marketer)
    client.get(url("dashboard", spring))  # session and permissions warmed
    cache.clear()  # the breakdowns are counted, not read from the cache
    with django_assert_max_num_queries(16) as small:
        client.get(url("dashboard", spring))
    cache.clear()
    with django_assert_max_num_queries(12) as small_live:
        client.get(url("dashboard_live", spring))
    _grow(spring, 600)
    cache.clear()
    with django_assert_max_num_queries(len(small.captured_queries)):
        response = client.get(url("dashboard", spring))
    assert response.status_code == 200
    assert "The first 50 are shown" in text_of(response)
    cache.clear()
    with django_assert_max_num_queries(len(small_live.captured_queries)):
        client.get(url("dashboard_live", spring))


def test_the_reasons_follow_new_failures_and_receipts_despite_the_cache(
    client, marketer, spring
):
    client.force_login(marketer)
    assert "Network problem" not in text_of(client.get(url("dashboard", spring)))
    queued = Recipient.objects.get(campaign=spring, status=R.QUEUED_ON_CHANNEL)
    Recipient.objects.filter(pk=queued.pk).update(
        status=R.FAILED, failure_code="CHANNEL_FAILURE"
    )
    counters.moved(spring.pk, R.QUEUED_ON_CHANNEL, R.FAILED, 1)
    Campaign.objects.filter(pk=spring.pk).update(last_receipt_at=timezone.now())
    live = client.get(url("dashboard_live", spring)).json()
    assert "Network problem" in live["failures_html"]
    # A failure's code changed by a later receipt: the same count, a new receipt.
    Recipient.objects.filter(pk=queued.pk).update(failure_code="MESSAGE_EXPIRED")
    Campaign.objects.filter(pk=spring.pk).update(
        last_receipt_at=timezone.now() + timedelta(seconds=1)
    )
    page = text_of(client.get(url("dashboard", spring)))
    assert "Network problem" not in page
    assert "Expired before delivery" in page


def test_breakdowns_past_the_scan_bound_say_so(client, marketer, spring, monkeypatch):
    _grow(spring, 100)
    monkeypatch.setattr(dashboard, "BREAKDOWN_SCAN", 5)
    client.force_login(marketer)
    page = text_of(client.get(url("dashboard", spring)))
    assert "Reasons of the first 5 failures (of 22)." in page
    assert "Reasons of the first 5 exclusions (of 22)." in page


# --- the recipients changelist ---------------------------------------------------


def recipients_url(campaign, **params) -> str:
    query = "&".join(f"{k}={v}" for k, v in params.items())
    base = reverse("admin:campaigns_recipient_changelist")
    return f"{base}?campaign__id__exact={campaign.pk}" + (f"&{query}" if query else "")


def listed(response) -> list[str]:
    return re.findall(
        r'<th class="field-identity"><a [^>]*>([^<]+)</a>', response.content.decode()
    )


def test_the_recipients_of_a_campaign_are_listed_filtered_and_found_by_phone(
    client, viewer, spring, make_submitted, make_contact
):
    other = make_submitted("Autumn")
    make_batch(other, 1, 1)
    add_recipients(other, other.batches.get(), [("+14155550101", R.DELIVERED, "", "")])
    client.force_login(viewer)
    response = client.get(recipients_url(spring))
    assert response.status_code == 200
    assert "Recipients of “Spring sale”" in text_of(response)
    assert len(listed(response)) == 10
    failed = listed(client.get(recipients_url(spring, status__exact="FAILED")))
    assert sorted(failed) == ["+14155550104", "+14155550107"]
    policy = client.get(
        recipients_url(
            spring,
            status__exact="FAILED",
            failure_code="DELIVERY_REJECTED_DUE_TO_POLICY",
        )
    )
    assert listed(policy) == ["+14155550107"]
    assert "Refused by the channel's rules (permanent)" in text_of(policy)
    # A phone number typed as a person would: one exact match, in this campaign.
    contact = make_contact("+14155550104")
    Recipient.objects.filter(identity="+14155550104").update(contact=contact)
    found = client.get(recipients_url(spring, q="(415) 555-0104"))
    assert listed(found) == ["+14155550104"]
    assert listed(client.get(recipients_url(spring, q="555-0104"))) == []


def test_recipients_are_read_only(client, sender, spring):
    client.force_login(sender)
    recipient = Recipient.objects.filter(campaign=spring).first()
    change = reverse("admin:campaigns_recipient_change", args=[recipient.pk])
    response = client.get(change)
    assert response.status_code == 200
    assert 'name="_save"' not in response.content.decode()
    assert client.post(change, {"status": R.DELIVERED}).status_code == 403
    add = reverse("admin:campaigns_recipient_add")
    assert client.get(add).status_code == 403


def test_the_recipients_changelist_costs_the_same_few_queries_at_any_size(
    client, viewer, spring, django_assert_max_num_queries
):
    client.force_login(viewer)
    client.get(recipients_url(spring))
    with django_assert_max_num_queries(12) as small:
        client.get(recipients_url(spring))
    _grow(spring, 300)
    with django_assert_max_num_queries(len(small.captured_queries)):
        response = client.get(recipients_url(spring))
    assert len(listed(response)) == 50
    with django_assert_max_num_queries(len(small.captured_queries)):
        client.get(recipients_url(spring, status__exact="FAILED"))
