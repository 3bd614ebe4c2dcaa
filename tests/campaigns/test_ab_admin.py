"""A/B tests in the admin: variants edited inline on a draft, the split shown
at the pre-send check and on the launch page, the variants side by side on
the dashboard, and only a Sender confirms a winner."""

import html
import re
from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from campaigns.models import ABTest, Variant
from campaigns.tracking import ab_winner
from tests.campaigns.conftest import EVERY_VARIANT_TESTED, change_url, with_variants
from tests.campaigns.test_ab_tests import TEST_FIRST


def text(response) -> str:
    page = response.content.decode()
    return html.unescape(re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", page)))


def test_a_marketer_adds_variants_and_test_first_on_the_campaign_page(
    client, marketer, make_launchable, make_template
):
    campaign = make_launchable()
    other = make_template("Spring B", "${first_name}: 20 % off")
    client.force_login(marketer)
    page = client.get(change_url(campaign))
    assert "A/B variants" in text(page)
    data = with_variants(
        page,
        [("A", None, 60), ("B", other, 40)],
        {
            "test_share": "20",
            "wait_minutes": "120",
            "metric": "delivery_rate",
            "picking": "confirm",
        },
    )
    assert client.post(change_url(campaign), data).status_code == 302
    assert list(
        Variant.objects.filter(campaign=campaign).values_list("label", "share")
    ) == [("A", 60), ("B", 40)]
    test = ABTest.objects.get(campaign=campaign)
    assert (test.test_share, test.wait_minutes, test.picking) == (20, 120, "confirm")


@pytest.mark.parametrize(
    ("rows", "message"),
    [
        ([("A", None, 100)], "An A/B test has 2 to 4 variants; this one has 1."),
        ([("A", None, 50), ("B", None, 30)], "shares add up to 80 %; make them 100 %"),
    ],
)
def test_variants_that_do_not_make_a_test_are_refused_with_a_reason(
    client, marketer, make_launchable, rows, message
):
    campaign = make_launchable()
    client.force_login(marketer)
    page = client.get(change_url(campaign))
    response = client.post(change_url(campaign), with_variants(page, rows))
    assert response.status_code == 200
    assert message in text(response)
    assert not Variant.objects.filter(campaign=campaign).exists()


def test_a_variant_template_with_a_placeholder_the_campaign_lacks_is_refused(
    client, marketer, make_launchable, make_template
):
    campaign = make_launchable()
    coupon = make_template("Coupon", "Use ${coupon} today")
    client.force_login(marketer)
    page = client.get(change_url(campaign))
    data = with_variants(page, [("A", None, 50), ("B", coupon, 50)])
    response = client.post(change_url(campaign), data)
    assert "Variant B's template uses ${coupon}" in text(response)


def test_the_presend_check_and_the_launch_page_show_recipients_per_variant(
    client, sender, make_ab
):
    campaign = make_ab(EVERY_VARIANT_TESTED, test=TEST_FIRST)
    split = dict(campaign.presend["variants"])
    client.force_login(sender)
    preview = reverse("admin:campaigns_campaign_preview", args=[campaign.pk])
    page = text(client.get(preview))
    assert f"variant A : {split['A']}" in page
    assert f"held for the winner (“test first”): {split['']}" in page
    launch_page = text(
        client.get(reverse("admin:campaigns_campaign_launch", args=[campaign.pk]))
    )
    assert "A/B split" in launch_page
    assert f"variant B : {split['B']}" in launch_page


def test_the_dashboard_compares_the_variants_and_a_sender_confirms_the_winner(
    client,
    sender,
    marketer,
    make_ab,
    launch,
    sinch,
):
    campaign = launch(make_ab(test={**TEST_FIRST, "picking": "confirm"}))
    url = reverse("admin:campaigns_campaign_dashboard", args=[campaign.pk])
    confirm = reverse("admin:campaigns_campaign_ab_winner", args=[campaign.pk])
    client.force_login(marketer)
    page = text(client.get(url))
    assert "A/B test" in page
    assert "Reply rate: Not enough evidence yet" in page or (
        "Reply rate: A and B have the same reply rate so far" in page
    )
    assert "Delivery rate:" in page
    assert "Confirm the winner" not in page
    assert client.post(confirm, {"label": "B"}).status_code == 403
    client.force_login(sender)
    assert "Confirm the winner" in text(client.get(url))
    early = text(client.post(confirm, {"label": "B"}, follow=True))
    assert "The test's wait is not over yet" in early
    ABTest.objects.filter(pk=campaign.pk).update(
        test_sent_at=timezone.now() - timedelta(hours=2)
    )
    done = text(client.post(confirm, {"label": "B"}, follow=True))
    assert "Variant B is sent to the rest of the audience." in done
    assert "Winner: variant B , chosen" in done or "Winner: variant B" in done
    assert f"by {sender}" in done
    assert ab_winner.pick_due_winners() == 0
    assert (
        client.get(
            reverse("admin:campaigns_campaign_ab_winner", args=[campaign.pk])
        ).status_code
        == 405
    )


def test_a_launched_campaigns_variants_are_read_only(
    client, marketer, make_ab, launch, sinch
):
    campaign = launch(make_ab())
    client.force_login(marketer)
    page = client.get(change_url(campaign)).content.decode()
    assert 'name="variants-0-share"' not in page
    assert "A/B variants" in page
