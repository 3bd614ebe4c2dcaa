"""Fixtures for campaign tests that talk to Sinch: a real simulator on an
ephemeral port, and the product's own client aimed at it."""

import pytest

from sinch.client import get_sinch_client
from sinch.config import CREDENTIAL_SETTINGS
from sinch.simulator import Simulator
from tests.sinch.conftest import ACCOUNT, Control, fast_knobs


@pytest.fixture
def sim():
    simulator = Simulator(account=ACCOUNT, knobs=fast_knobs())
    simulator.start()
    yield simulator
    simulator.stop()


@pytest.fixture
def control(sim):
    return Control(sim)


@pytest.fixture
def sinch(settings, sim):
    """The product's own client (settings, no credentials) aimed at `sim`."""
    for name in CREDENTIAL_SETTINGS:
        setattr(settings, name, "")
    settings.SINCH_BATCH_API_URL = sim.url
    settings.SINCH_AUTH_URL = sim.url
    get_sinch_client.cache_clear()
    yield sim
    get_sinch_client.cache_clear()


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
    from campaigns import presend
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
