"""Fixtures for campaign tests (the simulator ones are in tests/conftest.py)."""

from datetime import timedelta

import pytest
from django.utils import timezone


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
def freeze_killed_mid_way(monkeypatch):
    """Run a campaign's freeze as a worker killed after its second chunk of
    members (drain loops are not started by it; run them by hand)."""
    from campaigns.authoring import audience
    from campaigns.dispatch import drain, freeze
    from campaigns.models import Campaign

    monkeypatch.setattr(drain, "start", lambda *a, **k: None)

    def run(campaign_id: int, chunk_size: int) -> None:
        real_rows = audience.member_rows

        def dies_after_two_chunks(*args, **kwargs):
            for n, rows in enumerate(real_rows(*args, **kwargs)):
                if n == 2:
                    raise SystemExit("worker killed")
                yield rows

        monkeypatch.setattr(audience, "member_rows", dies_after_two_chunks)
        with pytest.raises(SystemExit):
            freeze.freeze_recipients(campaign_id, chunk_size=chunk_size)
        monkeypatch.setattr(audience, "member_rows", real_rows)
        # Time passes: the lease the dead worker held on the launch runs out,
        # so the task run again may take it (campaigns.dispatch.launch_recovery).
        Campaign.objects.filter(pk=campaign_id).update(
            launch_lease_at=timezone.now() - timedelta(days=1)
        )

    return run


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


@pytest.fixture
def launch(launched_campaign):
    """launch(campaign): launched as the Sender, its batches sent now, read
    back (modules whose `launch` makes the campaign too define their own)."""
    return launched_campaign


AB_TEXTS = ("Hi ${first_name}, spring sale!", "${first_name}: 20 % off today only")

# An audience large enough that a "test first" group gives every variant
# several people whatever ids the database hands out. The split hashes the
# campaign's and the contacts' ids, and PostgreSQL's ids depend on the tests
# run before: with 40 people and a 30 % test, about 1 id range in 300 left a
# variant with nobody; with 120, none in 18,000 tried.
EVERY_VARIANT_TESTED = 120


@pytest.fixture
def make_ab(make_audience, make_template, make_campaign):
    """A campaign to `people` opted-in customers (+14155550000 on) with
    variants A (the campaign's template, texts[0]) and B, C, D (a template of
    their own, texts[1]) of `shares`; `test`: ABTest fields; the pre-send
    check run. `fields` go to the campaign."""
    from campaigns.authoring import presend
    from campaigns.models import ABTest, Variant

    def make(people=40, shares=(50, 50), test=None, texts=AB_TEXTS, **fields):
        template = make_template("Spring A", texts[0])
        other = make_template("Spring B", texts[1])
        customers = make_audience("Customers", people, phone="+1415555{:04d}")
        campaign = make_campaign(template, [customers], "Spring AB", **fields)
        for label, share in zip("ABCD", shares, strict=False):
            Variant.objects.create(
                campaign=campaign,
                label=label,
                share=share,
                template=None if label == "A" else other,
            )
        if test is not None:
            ABTest.objects.create(campaign=campaign, **test)
        presend.run_presend_check(campaign)
        campaign.refresh_from_db()
        return campaign

    return make


def change_url(campaign) -> str:
    from django.urls import reverse

    return reverse("admin:campaigns_campaign_change", args=[campaign.pk])


def ab_test_form(test: dict | None) -> dict:
    """The campaign page's "test first" inline as posted: its management
    form, and `test`'s fields when given (no test otherwise)."""
    data = {
        "ab_test-TOTAL_FORMS": "1" if test else "0",
        "ab_test-INITIAL_FORMS": "0",
        "ab_test-MIN_NUM_FORMS": "0",
        "ab_test-MAX_NUM_FORMS": "1",
    }
    for key, value in (test or {}).items():
        data[f"ab_test-0-{key}"] = value
    return data


def with_variants(response, rows, test=None) -> dict:
    """The change page's form as posted back, with variant rows (label,
    template or None, share) and optionally the "test first" form."""
    from tests.campaigns.test_channel_properties_admin import _as_rendered

    data = _as_rendered(response.context["adminform"].form)
    data.update(
        {
            "variants-TOTAL_FORMS": str(len(rows)),
            "variants-INITIAL_FORMS": "0",
            "variants-MIN_NUM_FORMS": "0",
            "variants-MAX_NUM_FORMS": "4",
        }
    )
    for n, (label, template, share) in enumerate(rows):
        data[f"variants-{n}-label"] = label
        data[f"variants-{n}-template"] = template.pk if template else ""
        data[f"variants-{n}-share"] = str(share)
    data.update(ab_test_form(test))
    return data


@pytest.fixture
def message_sent(make_template):
    """Record a message another campaign sent `contact` (for the frequency
    cap): its recipient in `status`, in a batch Sinch accepted (`accepted`),
    scheduled at `at` (`scheduled`: its send_after) or accepted then (sent at
    once). `campaign`: the sending campaign, by default a new one of `purpose`."""
    import uuid

    from campaigns.models import Batch, Campaign, Recipient

    template = None

    def record(
        contact,
        at,
        *,
        purpose="MARKETING",
        status=Recipient.Status.DELIVERED,
        accepted=True,
        scheduled=False,
        is_test=False,
        campaign=None,
    ):
        nonlocal template
        if campaign is None:
            template = template or make_template("Earlier offer")
            campaign = Campaign.objects.create(
                name=f"Earlier {purpose.lower()} campaign",
                template=template,
                purpose=purpose,
                status=Campaign.Status.COMPLETED,
            )
        batch = Batch.objects.create(
            campaign=campaign,
            sequence=Batch.objects.filter(campaign=campaign).count() + 1,
            is_test=is_test,
            metadata_key=uuid.uuid4().hex,
            status=Batch.Status.ACCEPTED if accepted else Batch.Status.FAILED,
            send_after=at if scheduled else None,
            submitted_at=(at - timedelta(days=1) if scheduled else at)
            if accepted
            else None,
        )
        identity = contact.identities.first()
        return Recipient.objects.create(
            campaign=campaign,
            batch=batch,
            index=0,
            contact=contact,
            identity=identity.identity if identity else "",
            is_test=is_test,
            status=status,
        )

    return record


@pytest.fixture
def short_links(settings, monkeypatch):
    """Short links on http://go.example.com; clicks stay buffered until the
    test flushes them (no flusher thread), and nothing is left from the
    last test: no buffered click, no remembered miss, no cached link."""
    from campaigns.tracking import click_buffer, redirect

    settings.SHORT_LINK_BASE_URL = "http://go.example.com"
    monkeypatch.setattr(click_buffer, "_start", lambda: None)
    click_buffer._buffer.clear()
    redirect._misses.clear()
    redirect.forget_links()
    yield
    click_buffer._buffer.clear()


def through_the_redirect(code: str, agent: str, address: str = "10.1.1.1") -> str:
    """Open /l/<code> through the redirect's own WSGI door (as gunicorn
    serves it, before the middleware); the status line it answered."""
    from campaigns.tracking import redirect

    answers = []
    environ = {
        "REQUEST_METHOD": "GET",
        "PATH_INFO": f"/l/{code}",
        "HTTP_USER_AGENT": agent,
        "REMOTE_ADDR": address,
    }
    redirect.wsgi_app(environ, lambda status, headers: answers.append(status))
    return answers[0]
