"""Fixtures for campaign tests (the simulator ones are in tests/conftest.py)."""

import pytest


@pytest.hookimpl(wrapper=True)
def pytest_runtest_call(item):
    """After every campaigns test that used the database, each campaign's kept
    counts equal a full count of its recipients: no code path moved
    recipients without reporting it (campaigns.counters)."""
    result = yield
    if {"db", "transactional_db"} & set(item.fixturenames):
        from campaigns import counters
        from campaigns.models import CampaignCount

        for campaign_id in set(
            CampaignCount.objects.values_list("campaign_id", flat=True)
        ):
            assert counters.counts(campaign_id) == counters.actual(campaign_id), (
                f"campaign {campaign_id}: kept counts drifted from the recipients"
            )
    return result


@pytest.fixture
def small_batches(monkeypatch):
    """Batches of 3 recipients, so a few contacts make several batches."""
    from sinch import wire

    monkeypatch.setattr(wire, "MAX_RECIPIENTS", 3)


@pytest.fixture
def launchable_campaign(db, make_contact, make_list):
    """Seven opted-in customers and Olga, opted out; the pre-send check passed."""
    from campaigns.authoring import presend
    from campaigns.models import Campaign, MessageTemplate

    template = MessageTemplate.objects.create(
        name="Spring", text="Hi ${first_name}, spring sale!"
    )
    customers = make_list("Customers")
    for n in range(7):
        make_contact(f"+1415555{n:04d}", consent="OPTED_IN", lists=[customers])
    make_contact(
        "+14155559999", consent="OPTED_OUT", lists=[customers], first_name="Olga"
    )
    campaign = Campaign.objects.create(name="Spring", template=template)
    campaign.lists.add(customers)
    presend.run_presend_check(campaign)
    campaign.refresh_from_db()
    return campaign
