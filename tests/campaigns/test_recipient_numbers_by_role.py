"""Per-recipient downloads (the pre-send check and the results CSV) show whole
phone numbers only to those who may export contacts; the others who may
download them see them masked, and the audit trail says which they got."""

import csv
import io

import pytest
from django.urls import reverse

from campaigns.authoring import presend
from campaigns.models import Recipient
from contacts.models import AuditEvent, ConsentState

NUMBERS = ["+14155550101", "+14155550102"]
MASKED = ["'+1415•••0101", "'+1415•••0102"]


@pytest.fixture(autouse=True)
def media_root(settings, tmp_path):
    settings.MEDIA_ROOT = str(tmp_path / "media")


@pytest.fixture
def campaign(make_audience, make_campaign):
    audience = make_audience(opted_in=NUMBERS)
    campaign = make_campaign(lists=[audience], checked=True)
    for number in NUMBERS:
        Recipient.objects.create(
            campaign=campaign, identity=number, status=Recipient.Status.DELIVERED
        )
    return campaign


def identities(client, name, campaign):
    response = client.get(reverse(f"admin:{name}", args=[campaign.pk]))
    assert response.status_code == 200
    body = b"".join(response.streaming_content).decode("utf-8")
    return sorted(row["identity"] for row in csv.DictReader(io.StringIO(body)))


DOWNLOADS = ["campaigns_campaign_presend_csv", "campaigns_campaign_results_csv"]


@pytest.mark.parametrize("name", DOWNLOADS)
@pytest.mark.parametrize("role", ["compliance_admin", "superuser"])
def test_those_who_may_export_contacts_get_whole_numbers(
    request, client, campaign, name, role
):
    client.force_login(request.getfixturevalue(role))
    assert identities(client, name, campaign) == NUMBERS
    audit = AuditEvent.objects.get(action=AuditEvent.Action.EXPORT)
    assert "masked" not in audit.summary


@pytest.mark.parametrize("name", DOWNLOADS)
@pytest.mark.parametrize("role", ["marketer", "sender"])
def test_marketing_and_senders_get_masked_numbers(
    request, client, campaign, name, role
):
    client.force_login(request.getfixturevalue(role))
    assert identities(client, name, campaign) == MASKED
    audit = AuditEvent.objects.get(action=AuditEvent.Action.EXPORT)
    assert audit.summary.endswith("(phone numbers masked)")


@pytest.mark.parametrize("name", DOWNLOADS)
def test_a_viewer_downloads_neither(client, viewer, campaign, name):
    client.force_login(viewer)
    assert client.get(reverse(f"admin:{name}", args=[campaign.pk])).status_code == 403


def test_the_stored_check_keeps_whole_numbers_for_later_downloads(
    client, marketer, compliance_admin, campaign
):
    client.force_login(marketer)
    identities(client, DOWNLOADS[0], campaign)
    client.force_login(compliance_admin)
    assert identities(client, DOWNLOADS[0], campaign) == NUMBERS


def test_an_opted_out_persons_number_is_masked_too(
    client, marketer, make_contact, campaign
):
    make_contact(
        "+14155550109", consent=ConsentState.OPTED_OUT, lists=[campaign.lists.get()]
    )
    presend.run_presend_check(campaign)
    client.force_login(marketer)
    assert "'+1415•••0109" in identities(client, DOWNLOADS[0], campaign)
