"""An import merges a file's names and attributes into existing contacts in
the database itself (contacts.importing.merging: the UPDATE is made ready,
then sent), against what is stored at that moment: the file's values win, a
blank cell and every key the file does not name are kept, and a contact that
nothing changes is not written."""

import json
from datetime import timedelta

from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from contacts.importing.merging import attributes_text, prepare_merge
from contacts.importing.rows import ParsedRow
from contacts.models import Contact

ODD = 'quote " backslash \\ tab\tnewline\n brace { ünï'


def row(line, *, external_id="", attributes=None, **fields):
    return ParsedRow(
        line,
        "SMS",
        f"+4915123456{line:03d}",
        external_id,
        fields,
        attributes or {},
    )


def test_the_files_values_join_what_is_stored_key_by_key(make_contact):
    stored = {"tier": "gold", "nested": {"points": [1, 2.5, None]}, ODD: ODD}
    contact = make_contact(first_name="Old", last_name="Name", attributes=stored)
    file_rows = [
        row(2, first_name="New", attributes={"tier": "silver", "city": "Köln"}),
        row(3, language="de", attributes={"tier": "platinum", "odd": ODD}),
    ]
    prepare_merge({contact.pk: file_rows}, timezone.now())()

    contact.refresh_from_db()
    assert (contact.first_name, contact.last_name, contact.language) == (
        "New",
        "Name",  # not in the file: kept
        "de",
    )
    assert contact.attributes == {
        "tier": "platinum",  # the later row wins
        "nested": {"points": [1, 2.5, None]},
        ODD: ODD,
        "city": "Köln",
        "odd": ODD,
    }


def test_a_value_stored_after_the_merge_was_made_ready_is_kept(make_contact):
    contact = make_contact(attributes={"tier": "gold"})
    send = prepare_merge(
        {contact.pk: [row(2, attributes={"city": "Ulm"})]}, timezone.now()
    )
    # An admin's edit between the chunk's preparation and its writes.
    Contact.objects.filter(pk=contact.pk).update(
        last_name="Edited", attributes={"tier": "gold", "vip": "yes"}
    )
    send()
    contact.refresh_from_db()
    assert contact.last_name == "Edited"
    assert contact.attributes == {"tier": "gold", "vip": "yes", "city": "Ulm"}


def test_a_contact_without_external_id_takes_the_files_and_keeps_its_own(
    make_contact,
):
    without = make_contact(external_id="")
    with_one = make_contact(external_id="CRM-1")
    prepare_merge(
        {
            without.pk: [row(2), row(3, external_id="CRM-9"), row(4, external_id="X")],
            with_one.pk: [row(5, external_id="CRM-2")],
        },
        timezone.now(),
    )()
    without.refresh_from_db()
    with_one.refresh_from_db()
    assert (without.external_id, with_one.external_id) == ("CRM-9", "CRM-1")


def test_only_the_contacts_that_change_are_written(make_contact):
    earlier = timezone.now() - timedelta(days=1)
    same = make_contact(first_name="Same", attributes={"tier": "gold"})
    changed = make_contact(first_name="Same", attributes={"tier": "gold"})
    Contact.objects.update(updated_at=earlier)
    erased = make_contact(first_name="Gone")
    Contact.objects.filter(pk=erased.pk).update(erased_at=earlier, first_name="")
    file_rows = {
        same.pk: [row(2, first_name="Same", attributes={"tier": "gold"})],
        changed.pk: [row(3, first_name="Same", attributes={"tier": "silver"})],
        erased.pk: [row(4, first_name="Back", attributes={"tier": "gold"})],
    }
    with CaptureQueriesContext(connection) as queries:
        prepare_merge(file_rows, timezone.now())()

    assert Contact.objects.get(pk=same.pk).updated_at == earlier
    assert Contact.objects.get(pk=changed.pk).updated_at > earlier
    assert Contact.objects.get(pk=changed.pk).attributes == {"tier": "silver"}
    gone = Contact.objects.get(pk=erased.pk)
    assert (gone.first_name, gone.attributes) == ("", {})  # never written again
    # The stored contacts are not read into Python first.
    reads = [
        q["sql"]
        for q in queries
        if q["sql"].lstrip().upper().startswith("SELECT")
        and "contacts_contact" in q["sql"]
    ]
    assert reads == []


def test_stored_attributes_that_are_not_an_object_are_replaced(make_contact):
    contact = make_contact()
    Contact.objects.filter(pk=contact.pk).update(attributes=["a", "list"])
    prepare_merge({contact.pk: [row(2, attributes={"a": "1"})]}, timezone.now())()
    contact.refresh_from_db()
    assert contact.attributes == {"a": "1"}


def test_attributes_are_stored_as_json_dumps_would_write_them():
    odd = {
        "city": 'Lis"bon\\',
        "note": "tab\there, new\nline, ünïcödé, emoji 🙂, nul-free \x01",
        "": "",
    }
    for attributes in ({}, {"tier": "gold"}, odd, {"points": 3, "tags": ["a"]}):
        assert attributes_text(attributes) == json.dumps(attributes)
        assert json.loads(attributes_text(attributes)) == attributes
