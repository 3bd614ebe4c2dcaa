"""The campaign list: each campaign's figures at a glance, sortable, and a page
that costs the same number of queries however many campaigns it shows.

Campaigns are built as the dispatch and the receipts leave them: recipients
in their statuses with the counts kept (counters.recount), replies attributed
to the campaign, and the pre-send check's cost estimate.
"""

import html
import re
from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from campaigns import counters
from campaigns.models import Campaign, InboundMessage, Recipient
from contacts.models import AuditEvent

R = Recipient.Status
S = Campaign.Status
K = InboundMessage.Keyword
CHANGELIST = reverse("admin:campaigns_campaign_changelist")


def add_recipients(campaign, statuses: dict[str, int]) -> None:
    """`statuses`: status -> how many recipients in it; counts recounted."""
    rows = [
        Recipient(campaign=campaign, identity=f"+1415555{n:04d}", status=status)
        for status, count in statuses.items()
        for n in range(count)
    ]
    Recipient.objects.bulk_create(rows)
    counters.recount(campaign.pk)


def add_replies(campaign, keywords: list[str], review: str = "") -> None:
    InboundMessage.objects.bulk_create(
        InboundMessage(
            campaign=campaign,
            received_at=timezone.now(),
            channel="SMS",
            identity=f"+1415556{n:04d}",
            text="STOP" if keyword == K.STOP else "thanks",
            keyword=keyword,
            review=review,
        )
        for n, keyword in enumerate(keywords)
    )


@pytest.fixture
def make_sent(make_campaign, make_template):
    template = make_template("Spring", "Hi ${first_name}, spring sale!")

    def make(name, *, status=S.COMPLETED, cost="12.3400", **fields) -> Campaign:
        if status != S.DRAFT:
            fields.setdefault("launched_at", timezone.now() - timedelta(hours=2))
        return make_campaign(
            template,
            name=name,
            status=status,
            presend={"cost": f"EUR {cost}", "cost_total": cost} if cost else None,
            **fields,
        )

    return make


@pytest.fixture
def spring(make_sent):
    """20 recipients: 2 excluded, 12 delivered (3 of them read), 4 failed,
    1 queued, 1 cancelled; 5 replies, of which 2 STOPs and 1 opt-out
    recorded on review, and 1 waiting for review."""
    campaign = make_sent("Spring sale")
    add_recipients(
        campaign,
        {
            R.EXCLUDED: 2,
            R.DELIVERED: 9,
            R.READ: 3,
            R.FAILED: 4,
            R.QUEUED_ON_CHANNEL: 1,
            R.CANCELLED: 1,
        },
    )
    add_replies(campaign, [K.STOP, K.STOP, K.NONE])
    add_replies(campaign, [K.NONE], review=InboundMessage.Review.OPTED_OUT)
    add_replies(campaign, [K.NONE], review=InboundMessage.Review.PENDING)
    return campaign


def row_of(page: str, name: str) -> dict[str, str]:
    """The list row of campaign `name`: column class -> text."""
    for row in re.findall(r"<tr>.*?</tr>", page, re.S):
        if f">{name}</a>" in row:
            cells = re.findall(r'<t[dh] class="field-([\w]+)[^"]*">(.*?)</t[dh]>', row)
            return {
                k: html.unescape(re.sub(r"<[^>]+>", "", v)).strip() for k, v in cells
            }
    raise AssertionError(f"{name} is not listed")


def names_in_order(page: str, names: set[str]) -> list[str]:
    found = re.findall(r'<th class="field-name"><a [^>]*>(.*?)</a>', page)
    return [n for n in found if n in names]


def test_the_list_shows_a_campaigns_figures(client, marketer, spring):
    client.force_login(marketer)

    row = row_of(client.get(CHANGELIST).content.decode(), "Spring sale")

    # 18 sent to (20 less 2 excluded); 12 of the 17 not cancelled delivered.
    assert row["recipient_count"] == "18"
    assert row["delivered"] == "71 %"
    assert row["failed"] == "4"
    assert row["reply_count"] == "5"
    # The 2 STOPs and the reply recorded as an opt-out on review.
    assert row["opt_outs"] == "3"
    assert row["estimated_cost"] == "EUR 12.34"
    assert row["status_label"] == "Completed"


def test_the_status_is_a_coloured_label(client, marketer, spring, make_sent):
    make_sent("Autumn", status=S.FAILED)
    make_sent("Draft one", status=S.DRAFT, cost=None)
    client.force_login(marketer)

    page = client.get(CHANGELIST).content.decode()

    assert '<span class="status-label status-done">Completed</span>' in page
    assert '<span class="status-label status-failed">Failed</span>' in page
    assert '<span class="status-label status-draft">Draft</span>' in page


def test_a_draft_has_no_figures_yet(client, marketer, make_sent):
    make_sent("Draft one", status=S.DRAFT, cost=None)
    client.force_login(marketer)

    row = row_of(client.get(CHANGELIST).content.decode(), "Draft one")

    assert row["recipient_count"] == row["delivered"] == row["failed"] == "—"
    assert row["estimated_cost"] == "—"


def test_a_few_delivered_among_many_read_as_less_than_one_percent(
    client, marketer, make_sent
):
    campaign = make_sent("Huge")
    add_recipients(campaign, {R.DELIVERED: 1, R.SUBMITTED: 1_199})
    client.force_login(marketer)

    row = row_of(client.get(CHANGELIST).content.decode(), "Huge")

    assert row["recipient_count"] == "1,200"
    assert row["delivered"] == "< 1 %"


@pytest.mark.parametrize(
    ("column", "expected"),
    [
        ("recipient_count", ["Small", "Spring sale", "Big"]),
        ("delivered", ["Big", "Spring sale", "Small"]),
        ("failed", ["Small", "Spring sale", "Big"]),
        ("reply_count", ["Small", "Big", "Spring sale"]),
        ("opt_outs", ["Small", "Big", "Spring sale"]),
        ("estimated_cost", ["Small", "Spring sale", "Big"]),
    ],
)
def test_the_list_sorts_by_each_figure(
    client, marketer, spring, make_sent, column, expected
):
    small = make_sent("Small", cost="1.0000")
    add_recipients(small, {R.DELIVERED: 1})
    big = make_sent("Big", cost="100.5000")
    add_recipients(big, {R.DELIVERED: 30, R.FAILED: 20})
    add_replies(big, [K.NONE, K.STOP])
    client.force_login(marketer)
    page = client.get(CHANGELIST).content.decode()
    header = re.findall(r'<th scope="col" class="[^"]*column-(\w+)', page)
    position = header.index(column) + 1  # the checkbox column is 0

    ascending = client.get(f"{CHANGELIST}?o={position}").content.decode()
    descending = client.get(f"{CHANGELIST}?o=-{position}").content.decode()

    names = {"Small", "Spring sale", "Big"}
    assert names_in_order(ascending, names) == expected
    assert names_in_order(descending, names) == expected[::-1]


def test_a_page_of_the_list_costs_the_same_queries_for_more_campaigns(
    client, marketer, make_sent, django_assert_max_num_queries
):
    client.force_login(marketer)
    for n in range(3):
        campaign = make_sent(f"First {n}")
        add_recipients(campaign, {R.DELIVERED: 2, R.FAILED: 1})
        add_replies(campaign, [K.STOP])
    client.get(CHANGELIST)  # warm the session and content types
    with django_assert_max_num_queries(12) as few:
        assert client.get(CHANGELIST).status_code == 200
    for n in range(30):
        campaign = make_sent(f"More {n}")
        add_recipients(campaign, {R.DELIVERED: 2, R.FAILED: 1})
        add_replies(campaign, [K.STOP, K.NONE])

    with django_assert_max_num_queries(len(few.captured_queries)):
        page = client.get(CHANGELIST).content.decode()

    assert page.count('name="_selected_action"') == 33


def test_the_figures_are_read_from_the_kept_counts_not_the_recipients(
    client, marketer, spring, django_assert_max_num_queries
):
    client.force_login(marketer)
    with django_assert_max_num_queries(20) as queries:
        client.get(CHANGELIST)

    recipient_table = Recipient._meta.db_table
    assert not [
        q["sql"] for q in queries.captured_queries if recipient_table in q["sql"]
    ]
    assert not AuditEvent.objects.exists()  # reading the list changes nothing
