"""`manage.py erase_contact`: the admin's erase button for requests by e-mail."""

from io import StringIO

import pytest
from django.core.management import CommandError, call_command

from contacts.models import AuditEvent, ChannelIdentity, Contact
from contacts.services.erasure import erased_identity

NUMBER = "+14155550101"


def erase(*args) -> str:
    out = StringIO()
    call_command("erase_contact", *args, stdout=out)
    return out.getvalue()


@pytest.fixture
def zebulon(make_contact):
    return make_contact(
        NUMBER, first_name="Zebulon", last_name="Quarterfield", attributes={"c": "Xyl"}
    )


def test_the_command_erases_the_person_named_by_their_number_in_any_format(
    zebulon, make_contact
):
    other = make_contact("+14155550102", first_name="Ada")
    output = erase(
        "--identity",
        "(415) 555-0101",
        "--reason",
        "E-mail from Zebulon Quarterfield of 2026-12-01",
    )

    zebulon.refresh_from_db()
    assert zebulon.erased_at is not None
    assert (zebulon.first_name, zebulon.last_name, zebulon.attributes) == ("", "", {})
    assert ChannelIdentity.objects.get(contact=zebulon).identity == erased_identity(
        "SMS", NUMBER
    )
    assert Contact.objects.get(pk=other.pk).erased_at is None
    # It says what it erased, without repeating the number or the name.
    assert f"Erased contact #{zebulon.pk}" in output
    assert "channel identities hashed and suppressed: 1" in output
    assert "4155550101" not in output
    assert "Zebulon" not in output
    # The reason is kept in the audit trail, without the person's data.
    audit = AuditEvent.objects.get(action=AuditEvent.Action.ERASURE)
    assert audit.details["reason"] == "E-mail from [erased] of 2026-12-01"


def test_the_command_erases_by_contact_id(zebulon):
    output = erase("--contact", str(zebulon.pk), "--reason", "ticket 4711")
    zebulon.refresh_from_db()
    assert zebulon.erased_at is not None
    assert f"Erased contact #{zebulon.pk}" in output


def test_a_second_request_for_the_same_number_finds_it_erased_through_the_hash(
    zebulon,
):
    erase("--identity", NUMBER, "--reason", "first request")
    audits = AuditEvent.objects.count()
    output = erase("--identity", "415-555-0101", "--reason", "second request")
    assert f"Contact #{zebulon.pk} was erased before: nothing to do." in output
    assert AuditEvent.objects.count() == audits


def test_an_unknown_number_or_contact_is_an_error_that_changes_nothing(zebulon):
    with pytest.raises(CommandError, match="No contact has the identity"):
        erase("--identity", "+14155550999", "--reason", "request")
    with pytest.raises(CommandError, match="No contact #999999"):
        erase("--contact", "999999", "--reason", "request")
    zebulon.refresh_from_db()
    assert zebulon.erased_at is None


def test_a_reason_is_required(zebulon):
    with pytest.raises(CommandError, match="reason"):
        erase("--contact", str(zebulon.pk))
    with pytest.raises(CommandError, match="reason"):
        erase("--contact", str(zebulon.pk), "--reason", "  ")
    zebulon.refresh_from_db()
    assert zebulon.erased_at is None
