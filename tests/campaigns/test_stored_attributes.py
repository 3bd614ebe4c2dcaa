"""Reading a contact's stored attributes in the member query: decoded only
when a used key may be there, never wrong."""

import json

from campaigns.authoring import stored_attributes


def test_an_attribute_that_is_there_is_read():
    raw = json.dumps({"tier": "gold", "city": "Lyon"})
    needles = stored_attributes.needles(["tier"])
    assert stored_attributes.read(raw, needles)["tier"] == "gold"


def test_attributes_without_the_used_key_are_not_decoded_and_read_as_empty():
    needles = stored_attributes.needles(["tier"])
    assert (
        stored_attributes.read('{"city": "Lyon"}', needles) is stored_attributes.EMPTY
    )
    assert stored_attributes.read("{}", needles) == {}


def test_a_key_stored_json_may_escape_is_always_looked_up_by_decoding():
    key = 'say "hi"'
    assert stored_attributes.needles([key]) is None
    raw = json.dumps({key: "yes"})  # stored as "say \"hi\""
    assert stored_attributes.read(raw, None) == {key: "yes"}


def test_attributes_already_decoded_by_the_driver_are_used_as_they_are():
    assert stored_attributes.read({"tier": "gold"}, ['"tier"']) == {"tier": "gold"}
    assert stored_attributes.read(None, None) == {}
