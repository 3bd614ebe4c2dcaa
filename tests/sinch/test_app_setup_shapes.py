"""The app and its webhooks as Sinch may write them: every plausible shape is
read (sinch.wire's UNCONFIRMED notes), none is refused."""

import pytest

from sinch.app_setup import App, Webhook, webhooks_from_wire
from sinch.errors import SinchProtocolError
from sinch.setup_check import WARN, reply_linking


@pytest.mark.parametrize(
    ("policy", "days"),
    [
        ({"retention_type": "MESSAGE_EXPIRE_POLICY", "ttl_days": 3}, 3),
        ({"retention_type": "MESSAGE_EXPIRE_POLICY", "ttl_days": "5"}, 5),
        ({"retention_type": "MESSAGE_EXPIRE_POLICY"}, 0),  # proto3 leaves out a 0
        (None, None),  # not said at all
    ],
)
def test_dispatch_retention_is_read_from_every_shape(policy, days):
    data = {"id": "01APP", "processing_mode": "dispatch"}
    if policy is not None:
        data["dispatch_retention_policy"] = policy
    app = App.from_wire(data)
    assert app.processing_mode == "DISPATCH"
    assert app.dispatch_retention_days == days


def test_webhooks_are_read_from_the_documented_object_or_a_bare_list():
    item = {
        "id": "W1",
        "target": "https://x.example/h",
        "triggers": ["MESSAGE_INBOUND"],
    }
    assert webhooks_from_wire({"webhooks": [item]}) == webhooks_from_wire([item])
    assert webhooks_from_wire({}) == []
    with pytest.raises(SinchProtocolError):
        webhooks_from_wire("nonsense")


def test_a_webhook_without_target_type_is_dismissed_and_a_masked_secret_is_seen():
    webhook = Webhook.from_wire({"id": "W1", "target": "https://x", "secret": "****"})
    assert webhook.target_type == "DISMISS"
    assert webhook.secret_masked
    assert not Webhook.from_wire({"secret": "s3cret"}).secret_masked


def test_the_batch_status_trigger_may_be_spelt_otherwise():
    webhook = Webhook.from_wire({"triggers": ["MESSAGE_DELIVERY", "BATCH_STATUS"]})
    assert webhook.missing(["MESSAGE_DELIVERY", "BATCH_STATUS_UPDATE"]) == []
    assert webhook.missing(["MESSAGE_INBOUND"]) == ["MESSAGE_INBOUND"]


@pytest.mark.parametrize("mode", ["", "PROCESSING_MODE_UNSPECIFIED"])
def test_an_unknown_processing_mode_is_a_warning_that_says_so(mode):
    step = reply_linking(App("01APP", "", mode, None))
    assert step.status == WARN
    assert "whether replies can be linked to their campaign is unknown" in step.text
    assert (mode or "did not say") in step.text
