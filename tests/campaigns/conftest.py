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


OLGA = {"+14155559999": "Olga"}


@pytest.fixture
def make_launchable(make_audience, make_template, make_campaign):
    """A campaign of "Hi ${first_name}, spring sale!" to seven opted-in
    customers (+14155550000 to +14155550006) and, by default, Olga, opted out
    (+14155559999); the pre-send check passed. `fields` go to the campaign."""

    def make(name="Spring", *, list_name="Customers", opted_out=OLGA, **fields):
        template = make_template(name, "Hi ${first_name}, spring sale!")
        customers = make_audience(
            list_name, 7, phone="+1415555{:04d}", opted_out=opted_out
        )
        return make_campaign(template, [customers], name, checked=True, **fields)

    return make


@pytest.fixture
def launchable_campaign(make_launchable):
    """Seven opted-in customers and Olga, opted out; the pre-send check passed."""
    return make_launchable()


@pytest.fixture
def launched_campaign(make_launchable, sender, django_capture_on_commit_callbacks):
    """Launch `campaign` (a new launchable one, of `fields`, when None) as the
    Sender and return it read back. `dispatch`: the launch's on-commit work runs
    (the batches go to Sinch now); without it the recipients are frozen into
    batches and the drain loops are not started."""
    from campaigns.dispatch import launching

    def launch(campaign=None, *, dispatch=True, **fields):
        assert campaign is None or not fields, "fields make a new campaign"
        if campaign is None:
            campaign = make_launchable(**fields)
        with django_capture_on_commit_callbacks(execute=dispatch):
            launching.launch(campaign, sender)
        campaign.refresh_from_db()
        return campaign

    return launch
