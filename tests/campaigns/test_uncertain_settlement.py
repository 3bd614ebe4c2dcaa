"""An uncertain batch is settled whatever shape Sinch's answers take, is sent
again only when that is safe, and never stays uncertain unseen
(campaigns.dispatch.settlement), against the simulator."""

from datetime import timedelta

import pytest
from django.utils import timezone

from campaigns.dispatch import drain, settlement
from campaigns.models import Batch, Campaign, WebhookEvent
from campaigns.tracking import health, receipts
from sinch import client as sinch_client
from tests.campaigns.test_dispatch_faults import ago, at_sinch, backdate, batches
from tests.campaigns.test_receipts import store

B = Batch.Status


@pytest.fixture
def campaign(make_launchable):
    return make_launchable(list_name="Customers of Spring", opted_out=["+14155559999"])


@pytest.fixture
def client(sinch):
    return sinch_client.get_sinch_client()


def lose_the_answer(campaign, client, control, monkeypatch, launched_campaign):
    """Launch; Sinch stores the batch but its answer never reaches us."""
    launched_campaign(campaign, dispatch=False)
    monkeypatch.setattr(client.transport, "timeout", (2.0, 0.3))
    control.knobs(timeout_ratio=1, timeout_s=1)
    drain.run_dispatcher(campaign.pk)
    control.knobs(timeout_ratio=0)
    (batch,) = batches(campaign)
    assert (batch.status, batch.sinch_batch_id) == (B.UNCERTAIN, "")
    (remote,) = control.state()["batches"]
    control.wait_for_batch(remote["batch_id"], "PROCESSED")
    return batch, remote["batch_id"]


def deliver(control, kind: str) -> None:
    """The simulator's recorded callbacks of `kind` reach the webhook."""
    for callback in control.state(limit=1000)["callbacks"]:
        if callback["kind"] == kind:
            store(callback["body"])
    receipts.process_pending()


@pytest.mark.parametrize("shape", ["list", "object"])
def test_an_uncertain_batch_is_found_by_metadata_in_either_list_shape(
    campaign, client, control, monkeypatch, launched_campaign, shape
):
    control.knobs(metadata_list_shape=shape)
    batch, sinch_id = lose_the_answer(
        campaign, client, control, monkeypatch, launched_campaign
    )
    assert settlement.settle_uncertain_batches(campaign.pk)["found"] == 1
    batch.refresh_from_db()
    assert (batch.status, batch.sinch_batch_id) == (B.ACCEPTED, sinch_id)
    assert batch.remote_status == "PROCESSED"


@pytest.mark.parametrize(
    ("style", "kind"),
    [("rest", "BATCH_STATUS_UPDATE"), ("event", "MESSAGE_DELIVERY")],
)
def test_when_the_list_cannot_be_read_a_callback_gives_the_id_to_read_by(
    campaign, client, control, monkeypatch, launched_campaign, style, kind
):
    """A status update carrying the batch's metadata key (rest style), or a
    receipt for one of its people (the event style's updates carry no
    metadata), tells Sinch's id; the batch is then read by that id."""
    control.knobs(batch_status_style=style)
    batch, sinch_id = lose_the_answer(
        campaign, client, control, monkeypatch, launched_campaign
    )
    control.wait_for_counter("callbacks_emitted", 8)
    deliver(control, kind)
    batch.refresh_from_db()
    assert (batch.status, batch.sinch_batch_id) == (B.UNCERTAIN, sinch_id)
    control.post("inject", responses=[{"status": 404}])  # the list: not supported
    assert settlement.settle_uncertain_batches(campaign.pk)["found"] == 1
    batch.refresh_from_db()
    assert batch.status == B.ACCEPTED
    assert batch.sinch_batch_id == sinch_id
    assert at_sinch(control) == [batch.metadata_key]


def test_a_batch_sinch_is_known_to_have_is_never_sent_again(
    campaign, client, control, monkeypatch, launched_campaign, settings
):
    """The list finds nothing (a page it does not show, say) and the read by
    id fails: the batch waits, however long, because a callback proved Sinch
    has it; after DISPATCH_UNCERTAIN_ALERT_S it says what the operator can do."""
    batch, sinch_id = lose_the_answer(
        campaign, client, control, monkeypatch, launched_campaign
    )
    deliver(control, "BATCH_STATUS_UPDATE")
    assert Batch.objects.get(pk=batch.pk).sinch_batch_id == sinch_id
    monkeypatch.setattr(type(client), "batches_by_metadata", lambda *a: [])
    backdate(batch, uncertain_since=ago(settings.DISPATCH_UNCERTAIN_GRACE_S + 1))
    control.post("inject", responses=[{"status": 404}])  # the id: not found
    counts = settlement.settle_uncertain_batches(campaign.pk)
    assert (counts["resubmit"], counts["waiting"]) == (0, 1)
    batch.refresh_from_db()
    assert batch.status == B.UNCERTAIN
    assert at_sinch(control) == [batch.metadata_key]  # sent once
    backdate(batch, uncertain_since=ago(settings.DISPATCH_UNCERTAIN_ALERT_S + 60))
    control.post("inject", responses=[{"status": 404}])
    assert settlement.settle_uncertain_batches(campaign.pk)["alerted"] == 1
    batch.refresh_from_db()
    assert batch.status == B.UNCERTAIN
    assert batch.last_error.startswith("Outcome still uncertain after 61 minutes")
    assert "no longer knows that batch id" in batch.last_error
    assert "cancel the campaign" in batch.last_error
    stuck = next(c for c in health.checks() if c.key == "batches")
    assert stuck.level == health.BAD
    assert "Outcome still uncertain" in stuck.rows[0]["error"]
    assert at_sinch(control) == [batch.metadata_key]
    # Once Sinch answers by id again, it settles.
    assert settlement.settle_uncertain_batches(campaign.pk)["found"] == 1
    assert Batch.objects.get(pk=batch.pk).status == B.ACCEPTED


def test_without_an_id_an_unreadable_list_never_leads_to_a_resend(
    campaign, client, control, settings, launched_campaign
):
    """Sinch never got it (a 500 before storing), but nobody can tell: while
    the list cannot be read the batch waits, and is surfaced in time; once
    the list reads and does not name it, it is sent again, once."""
    launched_campaign(campaign, dispatch=False)
    control.post("inject", responses=[{"status": 500}])
    drain.run_dispatcher(campaign.pk)
    (batch,) = batches(campaign)
    assert batch.status == B.UNCERTAIN
    backdate(batch, uncertain_since=ago(settings.DISPATCH_UNCERTAIN_ALERT_S + 1))
    control.post("inject", responses=[{"status": 404}])
    counts = settlement.settle_uncertain_batches(campaign.pk)
    assert (counts["resubmit"], counts["alerted"]) == (0, 1)
    batch.refresh_from_db()
    assert "Sinch could not be asked" in batch.last_error
    assert at_sinch(control) == []
    drain.run_dispatcher(campaign.pk)  # the list reads now: resent, once
    batch.refresh_from_db()
    assert batch.status == B.ACCEPTED
    assert at_sinch(control) == [batch.metadata_key]
    assert Campaign.objects.get(pk=campaign.pk).status == Campaign.Status.SUBMITTED
    assert not WebhookEvent.objects.exists()


def test_the_campaign_page_shows_why_a_batch_is_still_uncertain(
    campaign, client, control, settings, launched_campaign, sender
):
    launched_campaign(campaign, dispatch=False)
    control.post("inject", responses=[{"status": 500}])
    drain.run_dispatcher(campaign.pk)
    (batch,) = batches(campaign)
    backdate(batch, uncertain_since=timezone.now() - timedelta(hours=2))
    control.post("inject", responses=[{"status": 404}])
    settlement.settle_uncertain_batches(campaign.pk)
    from django.test import Client
    from django.urls import reverse

    browser = Client()
    browser.force_login(sender)
    page = browser.get(reverse("admin:campaigns_campaign_change", args=[campaign.pk]))
    html = page.content.decode()
    assert "Outcome still uncertain after 120 minutes" in html
    assert "look its metadata key up in Sinch" in html
