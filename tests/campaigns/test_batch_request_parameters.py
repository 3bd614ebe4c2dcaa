"""Each recipient's parameters go to Sinch as frozen at launch: read from
the database as JSON text and sent as that text when every value is a
string (no decoding and encoding again, a million times per launch), else
decoded and each value sent as a string, as Sinch takes them."""

import json

from campaigns.dispatch import batch_request
from campaigns.models import Batch
from sinch.payloads import EncodedParameters


def request_for(make_campaign, parameters):
    campaign = make_campaign(name="Spring")
    batch = Batch.objects.create(campaign=campaign, sequence=1, metadata_key="s-1")
    entries = [(7, "+33612345678", parameters, [])]
    return batch_request.build_request(
        campaign,
        batch,
        entries,
        message=batch_request.app_message(batch_request.campaign_message(campaign)),
    )


def sent_parameters(request) -> dict:
    return json.loads(request.to_json())["recipient_and_params"][0]["parameters"]


def test_frozen_text_of_strings_is_sent_as_it_is(make_campaign):
    frozen = '{"first_name": "Zo\\u00e9", "offer": "20% off"}'
    request = request_for(make_campaign, frozen)
    assert request.recipients[0].parameters.__class__ is EncodedParameters
    assert frozen.encode() in request.to_json()
    assert sent_parameters(request) == {"first_name": "Zoé", "offer": "20% off"}


def test_frozen_text_with_a_value_that_is_not_a_string_is_sent_as_strings(
    make_campaign,
):
    request = request_for(make_campaign, '{"first_name": "Ann", "points": 3}')
    assert sent_parameters(request) == {"first_name": "Ann", "points": "3"}


def test_parameters_given_as_a_mapping_are_sent_as_strings(make_campaign):
    request = request_for(make_campaign, {"first_name": "Ann", "points": 3})
    assert sent_parameters(request) == {"first_name": "Ann", "points": "3"}
