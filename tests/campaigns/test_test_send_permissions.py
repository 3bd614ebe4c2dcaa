"""Test sends reach only seed lists that a Compliance user or a Sender marked,
of at most TEST_SEND_MAX_RECIPIENTS members, at most TEST_SEND_MAX_PER_HOUR
times an hour per user (issue 15: a Marketing user could test-send to any
list of up to 1,000 people, as often as they liked)."""

from datetime import timedelta

import pytest
from django.core.exceptions import PermissionDenied
from django.urls import reverse

from campaigns.admin.forms import CampaignForm
from campaigns.dispatch import test_send
from campaigns.models import Batch
from contacts import roles
from contacts.models import AuditEvent, ConsentState, ContactList
from contacts.services import seed_lists

IN = ConsentState.OPTED_IN


@pytest.fixture
def customers(make_list, make_contact):
    customers = make_list("Customers: 1,000 people")
    for n in range(3):
        make_contact(f"+1415555{n:04d}", consent=IN, lists=[customers])
    return customers


@pytest.fixture
def campaign(make_campaign, customers):
    return make_campaign(None, [customers], "Spring", seed_list=customers)


def batches_at_sinch(control) -> list[dict]:
    return control.state()["batches"]


def test_a_list_not_marked_as_a_seed_list_gets_no_test(
    sinch, control, campaign, marketer
):
    with pytest.raises(test_send.NotASeedList) as refused:
        test_send.send_test(campaign, marketer)
    assert "“Customers: 1,000 people” is not marked as a seed list" in str(
        refused.value
    )
    assert "a Compliance user or a Sender can mark it" in str(refused.value)
    assert not Batch.objects.exists()
    assert batches_at_sinch(control) == []


def test_the_test_send_page_of_marketing_says_so_and_sends_nothing(
    sinch, control, client, campaign, marketer
):
    client.force_login(marketer)
    url = reverse("admin:campaigns_campaign_test_send", args=[campaign.pk])
    assert "is not marked as a seed list" in client.get(url).content.decode()
    page = client.post(url, {"sequence": "1"}, follow=True).content.decode()
    assert "is not marked as a seed list" in page
    assert batches_at_sinch(control) == []


def test_once_a_sender_marks_it_the_test_goes_out(
    sinch, control, campaign, customers, sender, marketer
):
    seed_lists.set_seed_list(customers, seed=True, actor=sender)
    result = test_send.send_test(campaign, marketer)
    assert result.ok, result.message
    assert len(batches_at_sinch(control)) == 1


# --- who marks a seed list -----------------------------------------------------


@pytest.mark.parametrize(
    ("role", "may"),
    [
        (roles.VIEWER, False),
        (roles.MARKETING, False),
        (roles.SENDER, True),
        (roles.COMPLIANCE, True),
    ],
)
def test_only_compliance_and_senders_may_mark_seed_lists(role, may):
    assert roles.grants(role, "contacts", "mark_seed_list") is may


def test_marketing_creates_lists_but_cannot_mark_them(client, marketer, customers):
    with pytest.raises(
        PermissionDenied,
        match="Only a Sender or a Compliance user can mark a list as a seed list",
    ):
        seed_lists.set_seed_list(customers, seed=True, actor=marketer)

    client.force_login(marketer)
    add = client.post(
        reverse("admin:contacts_contactlist_add"),
        {"name": "Seed: colleagues", "description": "", "is_seed_list": "on"},
    )
    assert add.status_code == 302
    created = ContactList.objects.get(name="Seed: colleagues")
    assert created.is_seed_list is False
    change = reverse("admin:contacts_contactlist_change", args=[customers.pk])
    client.post(change, {"name": customers.name, "is_seed_list": "on"})
    customers.refresh_from_db()
    assert customers.is_seed_list is False
    assert customers.seed_marked_by is None


@pytest.mark.parametrize("role", ["sender", "compliance_admin"])
def test_a_sender_or_compliance_marks_it_in_the_admin_and_it_is_recorded(
    request, client, customers, role
):
    user = request.getfixturevalue(role)
    client.force_login(user)
    change = reverse("admin:contacts_contactlist_change", args=[customers.pk])
    response = client.post(change, {"name": customers.name, "is_seed_list": "on"})
    assert response.status_code == 302
    customers.refresh_from_db()
    assert customers.is_seed_list is True
    assert customers.seed_marked_by == user
    assert customers.seed_marked_at is not None
    audit = AuditEvent.objects.get(action=AuditEvent.Action.LIST_CHANGE)
    assert audit.actor == user
    assert "as a seed list" in audit.summary
    listing = client.get(reverse("admin:contacts_contactlist_changelist"))
    assert user.username in listing.content.decode()
    # Saving again without a change records nothing new.
    client.post(change, {"name": customers.name, "is_seed_list": "on"})
    assert AuditEvent.objects.filter(action=AuditEvent.Action.LIST_CHANGE).count() == 1
    # Unmarking is recorded too.
    client.post(change, {"name": customers.name})
    customers.refresh_from_db()
    assert customers.is_seed_list is False
    assert AuditEvent.objects.filter(action=AuditEvent.Action.LIST_CHANGE).count() == 2


def test_the_campaign_form_offers_only_seed_lists(campaign, make_list, customers):
    seed = make_list("Seed: colleagues", seed=True)
    other = make_list("Newsletter")
    offered = set(CampaignForm().fields["seed_list"].queryset)
    assert seed in offered
    assert other not in offered
    assert customers not in offered
    # A campaign keeps the list it had, so its form still saves.
    assert customers in set(
        CampaignForm(instance=campaign).fields["seed_list"].queryset
    )


# --- how large, how often ----------------------------------------------------


def test_a_seed_list_over_25_members_is_refused_by_default(
    sinch, control, campaign, customers, sender, make_contact, marketer
):
    seed_lists.set_seed_list(customers, seed=True, actor=sender)
    for n in range(23):
        make_contact(f"+1415556{n:04d}", consent=IN, lists=[customers])
    with pytest.raises(test_send.SeedListTooLarge, match="has 26 members"):
        test_send.send_test(campaign, marketer)
    assert batches_at_sinch(control) == []


def test_a_user_past_the_hourly_limit_is_refused_and_it_is_recorded(
    sinch, control, settings, campaign, customers, sender, marketer
):
    settings.TEST_SEND_MAX_PER_HOUR = 2
    seed_lists.set_seed_list(customers, seed=True, actor=sender)
    for _ in range(2):
        assert test_send.send_test(campaign, marketer).ok

    with pytest.raises(test_send.TooManyTestSends) as refused:
        test_send.send_test(campaign, marketer)
    message = str(refused.value)
    assert "You made 2 test sends in the last hour; the limit is 2 per hour" in (
        message
    )
    assert "Nothing was sent. The next test send is possible at" in message
    assert len(batches_at_sinch(control)) == 2
    refusal = AuditEvent.objects.get(summary__startswith="Test send refused")
    assert refusal.actor == marketer
    assert refusal.details["refused"] == "rate limit"

    # Another user has their own allowance.
    assert test_send.send_test(campaign, sender).ok
    # An hour later the first may send again.
    Batch.objects.filter(requested_by=marketer).update(
        created_at=Batch.objects.get(sequence=1).created_at - timedelta(hours=1)
    )
    assert test_send.send_test(campaign, marketer).ok


def test_the_hourly_limit_message_reaches_the_page(
    sinch, control, settings, client, campaign, customers, sender, marketer
):
    settings.TEST_SEND_MAX_PER_HOUR = 1
    seed_lists.set_seed_list(customers, seed=True, actor=sender)
    client.force_login(marketer)
    url = reverse("admin:campaigns_campaign_test_send", args=[campaign.pk])
    assert "You have 1 of 1 test send left this hour" in client.get(url).text
    client.post(url, {"sequence": "1"})
    assert "You have 0 of 1 test send left this hour" in client.get(url).text
    page = client.post(url, {"sequence": "2"}, follow=True).content.decode()
    assert "the limit is 1 per hour (TEST_SEND_MAX_PER_HOUR)" in page
    assert len(batches_at_sinch(control)) == 1
