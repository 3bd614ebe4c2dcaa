"""A/B tests with tracked links: each variant's URLs become short links of
their own, the winner can be picked by click rate (unique human clickers
among those delivered), and the variants' clicks stand side by side."""

import re
from datetime import timedelta

import pytest
from django.utils import timezone

from campaigns.authoring import presend, preview, variants
from campaigns.dispatch import launching
from campaigns.models import ABTest, Click, Recipient, ShortLink, TrackedLink, Variant
from campaigns.tracking import ab_results, ab_winner, click_buffer
from contacts.models import Contact
from tests.campaigns.conftest import (
    EVERY_VARIANT_TESTED,
    ab_test_form,
    change_url,
    through_the_redirect,
    with_variants,
)
from tests.campaigns.test_receipts import process, receipt

R = Recipient.Status
A_TEXT = "Hi ${first_name}, spring sale: https://shop.example.com/a"
B_TEXT = (
    "${first_name}: 20 % off today only at "
    "https://shop.example.com/offers/spring/twenty-percent-off-everything-today"
    "/in-the-shop/for-our-best-customers?ref=sms-weekend-sale"
)
B_TARGET = B_TEXT.split(" at ")[1]
SHORT = re.compile(r"http://go\.example\.com/l/\w{8}")
PHONE = "Mozilla/5.0 (iPhone; CPU iPhone OS 17_4) Mobile/15E148 Safari/604.1"
CLICK_FIRST = {"test_share": 50, "wait_minutes": 60, "metric": "click_rate"}


pytestmark = pytest.mark.usefixtures("short_links")


@pytest.fixture
def make_ab(make_ab):
    """A tracked-links campaign to `people` customers; variant A has the
    campaign's template, B a template of its own with another (longer) URL."""

    def make(people=40, test=None, track_links=True, **fields):
        return make_ab(
            people, test=test, texts=(A_TEXT, B_TEXT), track_links=track_links, **fields
        )

    return make


@pytest.fixture
def launch(launch, sinch):
    """The campaign launched against the simulator."""
    return launch


def open_link(recipient: Recipient, agent: str = PHONE) -> str:
    """The recipient opens their short link through the real redirect."""
    code = ShortLink.objects.get(recipient_id=recipient.pk).text
    return through_the_redirect(code, agent)


def _group(campaign, label):
    return list(
        Recipient.objects.filter(campaign=campaign, variant=label)
        .exclude(status=R.EXCLUDED)
        .exclude(batch__ab_remainder=True)
        .order_by("pk")
    )


def _deliver(recipients):
    for r in recipients:
        receipt(r, "DELIVERED")
    process()


def _test_send_click(campaign, recipient):
    """A click recorded from a test send of the campaign (as the redirect
    marks one)."""
    Click.objects.create(
        campaign_id=campaign.pk,
        link=TrackedLink.objects.filter(campaign=campaign).first(),
        recipient_id=recipient.pk,
        is_test=True,
        agent="mobile browser",
        clicked_at=timezone.now(),
    )


# --- tracked links in the variants' own templates ------------------------------


def test_each_variant_sends_its_own_links_as_per_recipient_short_links(
    make_ab, launch, control
):
    campaign = launch(make_ab())
    targets = dict(
        TrackedLink.objects.filter(campaign=campaign).values_list("target", "pk")
    )
    assert set(targets) == {"https://shop.example.com/a", B_TARGET}
    link_of = {"A": targets["https://shop.example.com/a"]}
    link_of["B"] = targets[next(t for t in targets if "offers" in t)]
    sent = {}
    recipients = Recipient.objects.filter(campaign=campaign).exclude(status=R.EXCLUDED)
    for message in control.wait_for_messages(recipients.count()):
        text = message["rendered"]["text_message"]["text"]
        pk = int(re.search(r'"cm_recipient":"(\d+)"', message["metadata"]).group(1))
        sent[pk] = text
    assert len(sent) == recipients.count() == 40
    for r in recipients:
        url = SHORT.search(sent[r.pk]).group(0)
        assert "shop.example.com" not in sent[r.pk]
        short = ShortLink.objects.get(recipient_id=r.pk)
        # The short link the recipient got goes to their variant's target.
        assert url.endswith(short.text)
        assert short.link_id == link_of[r.variant]
        expected = "20 % off today only at " if r.variant == "B" else "spring sale: "
        assert expected in sent[r.pk]
    # The redirect sends each to their variant's page.
    b = _group(campaign, "B")[0]
    assert open_link(b).startswith("302")


def test_when_every_variant_has_its_own_template_only_their_links_are_tracked(
    make_ab, make_template, launch
):
    campaign = make_ab()
    own = make_template("Spring A2", "Hi ${first_name}: https://shop.example.com/a2")
    Variant.objects.filter(campaign=campaign, label="A").update(template=own)
    launch(campaign)
    targets = set(
        TrackedLink.objects.filter(campaign=campaign).values_list("target", flat=True)
    )
    # The campaign's own template (…/a) is sent to nobody: no link of its own.
    assert targets == {"https://shop.example.com/a2", B_TARGET}


def test_the_check_counts_each_variants_short_link_in_its_length(make_ab):
    campaign = make_ab(people=40)
    # B's URL alone is 132 characters: as written, B would need 2 segments.
    assert len(B_TEXT.replace("${first_name}", "Customer 10")) > 160
    summary = campaign.presend
    assert summary["histogram"] == ["40 recipients need 1 segment"]
    plans = variants.plans_by_label(campaign)
    assert plans["B"].text({"first_name": "Ann"}) == (
        "Ann: 20 % off today only at http://go.example.com/l/aB3dE5gH"
    )
    # Untracked, B's recipients (and only they) need two segments each.
    campaign.track_links = False
    campaign.save()
    untracked = presend.run_presend_check(campaign).summary
    b = dict(untracked["variants"])["B"]
    assert untracked["segments"] == {"1": 40 - b, "2": b}


def test_the_preview_shows_each_variants_short_link_and_target(make_ab):
    campaign = make_ab(people=8, utm_source="sms")
    shown = {v.label: v.links for v in preview.variant_links(campaign)}
    sample = "http://go.example.com/l/aB3dE5gH"
    assert shown == {
        "A": [("${cm_link_1}", sample, "https://shop.example.com/a?utm_source=sms")],
        "B": [("${cm_link_1}", sample, B_TARGET + "&utm_source=sms")],
    }
    contacts = list(Contact.objects.order_by("pk"))
    previews = preview.preview_contacts(campaign, contacts)
    split = variants.Split.of(campaign)
    for contact, item in zip(contacts, previews, strict=True):
        assert item.variant == split.label(contact.pk)
        text = dict(item.fields)["text_message.text"]
        link = next(p for p in item.parameters if p.name == "cm_link_1")
        assert link.value == sample
        assert text.endswith(sample)
        assert ("offers/spring" in link.origin) == (item.variant == "B")


def test_the_preview_page_lists_the_variants_links(make_ab, client, marketer):
    campaign = make_ab(people=4)
    client.force_login(marketer)
    page = client.get(f"/admin/campaigns/campaign/{campaign.pk}/preview/")
    html = page.content.decode()
    assert "Tracked links of each A/B variant" in html
    assert 'data-variant="B"' in html
    assert "twenty-percent-off-everything-today" in html


# --- the winner by click rate ------------------------------------------------


def test_the_winner_is_picked_by_click_rate_from_people_not_preview_fetchers(
    make_ab, launch, django_capture_on_commit_callbacks
):
    campaign = launch(make_ab(EVERY_VARIANT_TESTED, test=CLICK_FIRST))
    a, b = _group(campaign, "A"), _group(campaign, "B")
    _deliver(a + b)
    # Every A recipient's link is fetched by WhatsApp for a preview, twice:
    # no clicks. One A recipient and half of B's open theirs, some twice.
    for r in a:
        assert open_link(r, "WhatsApp/2.23").startswith("302")
        open_link(r, "WhatsApp/2.23")
    open_link(a[0])
    for r in b[: len(b) // 2]:
        open_link(r)
        open_link(r)
    click_buffer.flush()
    assert Click.objects.filter(is_preview=True).count() == 2 * len(a)
    figures = ab_results.click_rate(campaign)
    assert figures == {"A": (1, len(a)), "B": (len(b) // 2, len(b))}
    with django_capture_on_commit_callbacks(execute=True):
        winner = ab_winner.pick_winner(
            campaign.pk, now=timezone.now() + timedelta(minutes=61)
        )
    assert winner == "B"
    test = ABTest.objects.get(pk=campaign.pk)
    assert test.winner_reason.startswith(
        "Picked automatically by click rate when the wait was over. B's click "
        "rate is higher than A's"
    )
    # The remainder goes out with B's message and B's links.
    held = Recipient.objects.filter(campaign=campaign, batch__ab_remainder=True)
    assert set(held.exclude(status=R.EXCLUDED).values_list("variant", flat=True)) == {
        "B"
    }
    b_link = TrackedLink.objects.get(campaign=campaign, target__contains="offers")
    assert set(
        ShortLink.objects.filter(recipient_id__in=held.values("pk")).values_list(
            "link_id", flat=True
        )
    ) == {b_link.pk}
    # Side by side: each variant's clicks, clickers and click rate.
    rows = {row.label: row for row in ab_results.variant_rows(campaign)}
    assert (rows["A"].clicks, rows["A"].clickers) == (1, 1)
    assert (rows["B"].clicks, rows["B"].clickers) == (2 * (len(b) // 2), len(b) // 2)
    assert rows["A"].click_rate == f"{100 / len(a):.1f} %"


def test_click_rate_counts_the_delivered_only_and_never_test_sends(make_ab, launch):
    campaign = launch(make_ab(EVERY_VARIANT_TESTED, test=CLICK_FIRST))
    a, b = _group(campaign, "A"), _group(campaign, "B")
    _deliver(a[:4] + b[:4])
    open_link(a[0])
    open_link(b[0])
    click_buffer.flush()
    _test_send_click(campaign, b[1])  # never counted
    assert ab_results.click_rate(campaign) == {"A": (1, 4), "B": (1, 4)}
    same = ab_results.compare(ab_results.click_rate(campaign), "click rate")
    assert (same.best, same.meaningful) == ("A", False)
    assert same.words == (
        "A and B have the same click rate so far: not enough evidence yet."
    )


def test_the_variant_table_counts_each_persons_clicks_under_their_variant(
    make_ab, launch, django_assert_num_queries
):
    campaign = launch(make_ab())
    a, b = _group(campaign, "A"), _group(campaign, "B")
    open_link(a[0])
    open_link(a[0])
    open_link(a[0])
    open_link(b[0])
    open_link(b[1], "WhatsApp/2.23")  # a preview fetch: not a click
    open_link(a[1])  # then taken out of the split: no variant's click
    click_buffer.flush()
    Recipient.objects.filter(pk=a[1].pk).update(variant="")
    _test_send_click(campaign, b[2])  # never counted

    with django_assert_num_queries(1):
        clicks = ab_results.variant_clicks(campaign)

    # (clicks, people who clicked): A's three clicks are one person's.
    assert clicks == {"A": (3, 1), "B": (1, 1)}


def test_no_clicks_yet_is_not_enough_evidence_and_goes_to_a(make_ab, launch):
    campaign = launch(make_ab(test=CLICK_FIRST))
    c = ab_results.compare(ab_results.click_rate(campaign), "click rate")
    assert (c.best, c.meaningful) == ("A", False)
    assert c.words == "Not enough evidence yet: no click rate to compare."


def test_a_clear_click_rate_difference_is_said_in_plain_words():
    c = ab_results.compare({"A": (12, 200), "B": (30, 200)}, "click rate")
    assert (c.best, c.other, c.meaningful) == ("B", "A", True)
    assert c.words == (
        "B's click rate is higher than A's; a difference this large would "
        f"happen by chance less than 1 time in 20 (p = {c.p:.3f})."
    )
    close = ab_results.compare({"A": (12, 200), "B": (15, 200)}, "click rate")
    assert not close.meaningful
    assert "not enough evidence yet: a difference this large could" in close.words


# --- only with tracked links ---------------------------------------------------


def test_click_rate_needs_tracked_links(make_ab, sender):
    campaign = make_ab(people=6, test=CLICK_FIRST, track_links=False)
    problems = launching.launch_problems(campaign)
    assert (
        "The winner by click rate needs tracked links: turn “track links” on, "
        "or pick the winner by another metric." in problems
    )
    with pytest.raises(launching.LaunchError):
        launching.launch(campaign, sender)
    assert [m.key for m in ab_results.offered(False)] == [
        "reply_rate",
        "delivery_rate",
    ]
    assert "click_rate" in [m.key for m in ab_results.offered(True)]
    # Without tracked links the dashboard shows no click columns.
    rows = ab_results.variant_rows(campaign)
    assert {r.clicks for r in rows} == {None}


def test_the_campaign_page_refuses_click_rate_without_tracked_links(
    client, marketer, make_launchable, make_template
):
    campaign = make_launchable()
    other = make_template("Spring B", "${first_name}: https://shop.example.com/b")
    client.force_login(marketer)
    page = client.get(change_url(campaign))
    # An untracked campaign is not offered the click rate...
    assert 'value="click_rate"' not in page.content.decode()
    test = {
        "test_share": "20",
        "wait_minutes": "30",
        "metric": "click_rate",
        "picking": "automatic",
    }
    data = with_variants(page, [("A", None, 50), ("B", other, 50)], test)
    refused = client.post(change_url(campaign), data)
    assert refused.status_code == 200
    assert not ABTest.objects.filter(campaign=campaign).exists()
    # ... and accepted once "track links" is on (in the same save).
    data["track_links"] = "on"
    assert client.post(change_url(campaign), data).status_code == 302
    assert ABTest.objects.get(campaign=campaign).metric == "click_rate"
    page = client.get(change_url(campaign))
    assert 'value="click_rate"' in page.content.decode()


def test_the_form_names_why_click_rate_is_refused(make_launchable):
    """A campaign page posted with the click-rate choice by a client that
    bypasses the offered choices gets the validation message."""
    from django.forms import inlineformset_factory

    from campaigns.admin.ab_tests import ABTestFormSet

    campaign = make_launchable()

    FormSet = inlineformset_factory(
        type(campaign),
        ABTest,
        formset=ABTestFormSet,
        fields=("test_share", "wait_minutes", "metric", "picking"),
        extra=1,
    )
    data = ab_test_form(
        {
            "test_share": "20",
            "wait_minutes": "30",
            "metric": "click_rate",
            "picking": "automatic",
        }
    )
    formset = FormSet(data, instance=campaign, prefix="ab_test")
    assert not formset.is_valid()
    assert formset.forms[0].errors["metric"] == [
        "The winner by click rate needs tracked links: turn “track links” on, "
        "or pick the winner by another metric."
    ]
    campaign.track_links = True
    assert FormSet(data, instance=campaign, prefix="ab_test").is_valid()
