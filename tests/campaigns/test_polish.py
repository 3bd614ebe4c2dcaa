"""Polish of the campaign pages: a refused action says which role may do it,
on an admin page; buttons that make no sense are not offered; the launch page
reloaded after the launch says who launched it; a test send shows what its
delivery receipts said; every admin page has the favicon; counts agree with
their nouns."""

import html
import re
from datetime import timedelta
from pathlib import Path

import pytest
from django.conf import settings
from django.urls import reverse
from django.utils import timezone

from campaigns.authoring import presend
from campaigns.models import Batch, Campaign, Recipient
from campaigns.tracking import dashboard
from tests.campaigns.test_receipts import process, receipt

S = Campaign.Status
R = Recipient.Status


def url(name: str, campaign: Campaign) -> str:
    return reverse(f"admin:campaigns_campaign_{name}", args=[campaign.pk])


def text(response) -> str:
    body = response.content.decode()
    body = re.sub(r"<(script|style)\b.*?</\1>", " ", body, flags=re.S)
    body = re.sub(r"</?(strong|em|a|span|code)\b[^>]*>", "", body)
    return html.unescape(re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", body)).strip())


@pytest.fixture
def campaign(launchable_campaign):
    return launchable_campaign


def set_status(campaign: Campaign, status: str, **fields) -> Campaign:
    Campaign.objects.filter(pk=campaign.pk).update(status=status, **fields)
    campaign.refresh_from_db()
    return campaign


# --- refused actions ----------------------------------------------------------


def test_a_marketer_refused_the_launch_is_told_only_a_sender_may(
    client, marketer, campaign
):
    client.force_login(marketer)

    response = client.get(url("launch", campaign))

    assert response.status_code == 403
    page = response.content.decode()
    assert "Only a Sender can launch a campaign." in text(response)
    # An admin page: the site header, the user's tools, the way home.
    assert 'id="site-name"' in page
    assert "Sinch campaign manager" in page
    assert 'id="user-tools"' in page
    assert f'href="{reverse("admin:index")}"' in page


@pytest.mark.parametrize(
    ("who", "name", "method", "expected"),
    [
        (
            "viewer",
            "test_send",
            "get",
            "Only a Marketing user or a Sender can send a test",
        ),
        ("marketer", "pause", "post", "Only a Sender can pause or resume a campaign."),
        ("marketer", "cancel", "get", "Only a Sender can cancel a campaign."),
        (
            "marketer",
            "cap_exemption",
            "post",
            "Only a Compliance user can exempt a campaign from the frequency cap",
        ),
        ("viewer", "retry", "get", "Only a Marketing user or a Sender can retry"),
        (
            "viewer",
            "duplicate",
            "post",
            "Only a Marketing user or a Sender can duplicate",
        ),
        (
            "compliance_admin",
            "presend",
            "post",
            "Only a Marketing user or a Sender can run a pre-send check.",
        ),
    ],
)
def test_each_refused_campaign_action_names_the_roles_that_may(
    client, request, campaign, who, name, method, expected
):
    client.force_login(request.getfixturevalue(who))

    response = getattr(client, method)(url(name, campaign))

    assert response.status_code == 403
    assert expected in text(response)


def test_djangos_own_pages_refused_name_the_roles_too(client, viewer):
    client.force_login(viewer)

    response = client.get(reverse("admin:campaigns_campaign_add"))

    assert response.status_code == 403
    assert "Only a Marketing user or a Sender can add a campaign." in text(response)


@pytest.mark.parametrize(
    ("who", "page", "expected"),
    [
        (
            "viewer",
            "delete",
            "Only a Marketing user or a Sender can delete this campaign.",
        ),
        ("marketer", "erase", "Only a Compliance user can erase a person's data."),
        ("marketer", "import", "Only a Compliance user can import contacts."),
    ],
)
def test_other_refused_admin_pages_name_the_roles_too(
    client, request, campaign, make_contact, who, page, expected
):
    pages = {
        "delete": url("delete", campaign),
        "erase": reverse("admin:contacts_contact_erase", args=[make_contact().pk]),
        "import": reverse("admin:contacts_importjob_upload"),
    }
    client.force_login(request.getfixturevalue(who))

    response = client.get(pages[page])

    assert response.status_code == 403
    assert expected in text(response)


def test_a_launched_campaign_refuses_a_pre_send_check_by_its_status(
    client, marketer, campaign
):
    set_status(campaign, S.COMPLETED)
    client.force_login(marketer)

    response = client.post(url("presend", campaign))

    assert response.status_code == 403
    assert (
        "Only a draft can be changed: this campaign is completed, so nobody "
        "can run a pre-send check now." in text(response)
    )


# --- buttons that make no sense are not offered --------------------------------


def links(client, campaign) -> str:
    return client.get(url("change", campaign)).content.decode()


def add_failed(campaign: Campaign, *, test: bool = False) -> None:
    batch = Batch.objects.create(
        campaign=campaign, sequence=1, is_test=test, metadata_key=f"k-{test}"
    )
    Recipient.objects.create(
        campaign=campaign,
        batch=batch,
        index=0,
        is_test=test,
        identity="+14155550000",
        status=R.FAILED,
        failure_code="RECIPIENT_NOT_REACHABLE",
    )


def test_retry_is_offered_only_when_something_failed(client, marketer, campaign):
    set_status(campaign, S.COMPLETED, launched_at=timezone.now())
    client.force_login(marketer)
    add_failed(campaign, test=True)  # a failed test send is no campaign failure
    assert 'id="retry-link"' not in links(client, campaign)

    add_failed(campaign)

    assert 'id="retry-link"' in links(client, campaign)


@pytest.mark.parametrize("status", [S.COMPLETED, S.CANCELLED, S.FAILED])
def test_no_test_send_once_a_campaign_has_ended(client, marketer, campaign, status):
    client.force_login(marketer)
    assert ">Send test</a>" in links(client, campaign)  # a draft: yes
    set_status(campaign, status, launched_at=timezone.now())

    assert ">Send test</a>" not in links(client, campaign)
    page = client.get(url("test_send", campaign))
    assert "a test send no longer tests anything" in text(page)
    assert 'class="test-send-form"' not in page.content.decode()
    after = client.post(url("test_send", campaign), {"sequence": "1"}, follow=True)
    assert "a test send no longer tests anything" in text(after)
    assert not Batch.objects.filter(is_test=True).exists()


@pytest.mark.parametrize("status", [S.COMPLETED, S.CANCELLED, S.FAILED])
def test_a_finished_campaign_offers_no_launch_cancel_or_pause(
    client, sender, campaign, status
):
    set_status(campaign, status, launched_at=timezone.now())
    client.force_login(sender)

    page = links(client, campaign)

    for button in ("launch-link", "cancel-link", "pause-button", "resume-button"):
        assert f'id="{button}"' not in page
    preview = client.get(url("preview", campaign)).content.decode()
    assert 'id="launch-link"' not in preview


def test_a_scheduled_campaign_still_offers_its_cancel(client, sender, campaign):
    set_status(campaign, S.SCHEDULED, launched_at=timezone.now())
    client.force_login(sender)

    assert 'id="cancel-link"' in links(client, campaign)
    assert 'id="launch-link"' not in links(client, campaign)


# --- the launch page after the launch --------------------------------------------


def test_the_launch_page_reloaded_after_the_launch_says_who_and_when(
    client, sender, campaign, small_batches
):
    Campaign.objects.filter(pk=campaign.pk).update(
        send_at=timezone.now() + timedelta(days=9), send_time_zone="Europe/Berlin"
    )
    campaign.refresh_from_db()
    presend.run_presend_check(campaign)
    client.force_login(sender)
    assert client.post(url("launch", campaign)).status_code == 302
    campaign.refresh_from_db()
    assert campaign.launched_by == sender

    response = client.get(url("launch", campaign))

    assert response.status_code == 200
    page = text(response)
    at = timezone.localtime(campaign.launched_at, timezone.get_fixed_timezone(60))
    assert "This campaign was launched by sandra at" in page
    assert "Europe/Berlin" in page
    assert at.strftime("%Y-%m-%d") in page
    body = response.content.decode()
    assert f'id="launch-dashboard-link" href="{url("dashboard", campaign)}"' in body
    assert 'id="launch-button"' not in body


def test_the_launch_page_of_a_draft_still_offers_the_launch(client, sender, campaign):
    client.force_login(sender)

    body = client.get(url("launch", campaign)).content.decode()

    assert 'id="launch-button"' in body
    assert 'id="launch-done"' not in body


# --- test sends show their delivery status -----------------------------------------


def test_the_test_send_page_shows_what_the_receipts_said(client, marketer, campaign):
    batch = Batch.objects.create(
        campaign=campaign,
        sequence=1,
        is_test=True,
        size=3,
        metadata_key="test-1",
        status=Batch.Status.ACCEPTED,
        sinch_batch_id="01TESTBATCH0001",
    )
    seeds = [
        Recipient.objects.create(
            campaign=campaign,
            batch=batch,
            index=n,
            is_test=True,
            identity=f"+1415555990{n}",
            status=R.SUBMITTED,
        )
        for n in range(3)
    ]
    receipt(seeds[0], "DELIVERED")
    receipt(seeds[1], "FAILED", reason="RECIPIENT_NOT_REACHABLE")
    process()
    client.force_login(marketer)

    page = client.get(url("test_send", campaign))

    cell = re.search(
        r'<td class="test-send-delivery">(.*?)</td>', page.content.decode()
    ).group(1)
    assert cell == "1 delivered, 1 failed, 1 awaiting a receipt"

    receipt(seeds[0], "READ")
    receipt(seeds[2], "DELIVERED")
    process()
    page = client.get(url("test_send", campaign)).content.decode()
    assert "2 delivered (1 read), 1 failed</td>" in page


# --- the favicon and the wording -------------------------------------------------


def test_every_admin_page_links_the_favicon(client, marketer, campaign):
    client.force_login(marketer)

    for page in (
        reverse("admin:index"),
        reverse("admin:campaigns_campaign_changelist"),
        url("change", campaign),
        url("preview", campaign),
    ):
        assert (
            '<link rel="icon" type="image/svg+xml" '
            'href="/static/campaigns/favicon.svg">'
        ) in client.get(page).content.decode()
    svg = Path(settings.BASE_DIR) / "campaigns/static/campaigns/favicon.svg"
    assert svg.read_text().startswith("<svg")


def test_a_single_message_reads_in_the_singular(make_campaign):
    fig = {"counts": {"cancelled": 0}, "expected": 1, "outcome": 0, "complete": False}
    campaign = make_campaign(status=S.SUBMITTED)

    assert dashboard.headline(campaign, fig) == (
        "0 of 1 message has an outcome; waiting for 1."
    )
    fig["expected"], fig["outcome"] = 3, 1
    assert dashboard.headline(campaign, fig) == (
        "1 of 3 messages has an outcome; waiting for 2."
    )
