"""An erased number stays suppressed on every path (issue 11, deliverable 2).

One function decides (contacts.services.suppression.is_suppressed, with its
bulk forms); here: the creation paths and consent recording. The send paths
are in tests/campaigns/test_audience_suppression.py, the importer in
tests/contacts/test_contacts_erasure.py (reimporting an erased number).
"""

import pytest
from django.urls import reverse

from contacts.models import ChannelIdentity, ConsentEvent, ConsentState, Contact
from contacts.services.consent import Evidence, record_consent
from contacts.services.erasure import erase_contact, erased_identity
from contacts.services.identities import replace_identity
from contacts.services.suppression import (
    ErasedNumbers,
    SuppressedIdentityError,
    erased_numbers,
    is_suppressed,
    keyed_hasher,
)

ERASED = "+14155550142"
IN, OUT = ConsentState.OPTED_IN, ConsentState.OPTED_OUT


@pytest.fixture
def erased(make_contact):
    """Eve, whose SMS number ERASED was erased."""
    eve = make_contact(ERASED, consent=IN, first_name="Eve")
    erase_contact(contact=eve, actor=None)
    return eve


def _contact_form(**identity) -> dict:
    """The "Add contact" page as the browser posts it, with one identity."""
    return {
        "first_name": "Newcomer",
        "last_name": "",
        "external_id": "",
        "language": "",
        "time_zone": "",
        "attributes": "{}",
        "identities-TOTAL_FORMS": "1",
        "identities-INITIAL_FORMS": "0",
        "identities-MIN_NUM_FORMS": "0",
        "identities-MAX_NUM_FORMS": "1000",
        "identities-0-channel": identity.get("channel", "SMS"),
        "identities-0-identity": identity["identity"],
        "memberships-TOTAL_FORMS": "0",
        "memberships-INITIAL_FORMS": "0",
        "memberships-MIN_NUM_FORMS": "0",
        "memberships-MAX_NUM_FORMS": "1000",
    }


# --- the rule -----------------------------------------------------------------


@pytest.mark.parametrize("key", ["short", "k" * 64, "a much longer key " * 8])
@pytest.mark.parametrize(
    ("channel", "identity"),
    [("SMS", "+14155550142"), ("WHATSAPP", "+4915123456789"), ("MESSENGER", "psid-7")],
)
def test_the_bulk_hash_is_the_erasure_hash(settings, key, channel, identity):
    settings.ERASURE_HASH_KEY = key
    assert keyed_hasher(channel)(identity) == erased_identity(channel, identity)


def test_an_erased_number_is_suppressed_on_every_phone_channel(erased):
    assert is_suppressed("SMS", ERASED)
    assert is_suppressed("WHATSAPP", ERASED)
    assert not is_suppressed("SMS", "+14155550143")
    assert erased_numbers("RCS", [ERASED, "+14155550143", None]) == {ERASED}
    assert ErasedNumbers().among("SMS", [ERASED, "+14155550143"]) == {ERASED}


def test_topping_up_the_erased_numbers_asks_once_while_nobody_was_erased_since(
    make_contact, django_assert_num_queries
):
    # An import tops them up before each chunk: one probe of the erased
    # contacts' index, then their identities only when there are any.
    make_contact("+14155550143", consent=IN)
    erased = ErasedNumbers()
    with django_assert_num_queries(1):
        erased.refresh()
    assert erased.among("SMS", [ERASED]) == set()
    eve = make_contact(ERASED, consent=IN, first_name="Eve")
    erase_contact(contact=eve, actor=None)
    with django_assert_num_queries(2):
        erased.refresh()
    assert erased.among("SMS", [ERASED, "+14155550143"]) == {ERASED}


def test_a_replaced_number_is_suppressed_when_it_was_opted_out(
    make_contact, compliance_admin
):
    out = make_contact("+14155550151", consent=OUT).identities.get()
    ok = make_contact("+14155550152", consent=IN).identities.get()
    replace_identity(out, "+14155550161", actor=compliance_admin)
    replace_identity(ok, "+14155550162", actor=compliance_admin)
    assert is_suppressed("SMS", "+14155550151")
    assert not is_suppressed("SMS", "+14155550152")  # retired, but never said no


# --- creation paths -----------------------------------------------------------


def test_add_contact_refuses_an_erased_number(client, compliance_admin, erased):
    """Found problem 2: "Add contact" with the erased number was accepted."""
    client.force_login(compliance_admin)
    contacts = Contact.objects.count()

    response = client.post(
        reverse("admin:contacts_contact_add"),
        _contact_form(identity="(415) 555-0142"),
    )

    assert response.status_code == 200
    assert "suppressed" in response.content.decode()
    assert Contact.objects.count() == contacts
    assert not ChannelIdentity.objects.filter(identity=ERASED).exists()


def test_the_inline_of_an_existing_contact_refuses_an_erased_number(
    client, compliance_admin, erased, make_contact
):
    sam = make_contact("+14155550199", first_name="Sam")
    client.force_login(compliance_admin)
    data = _contact_form(identity=ERASED, channel="WHATSAPP")
    data.update(
        {
            "first_name": "Sam",
            "identities-TOTAL_FORMS": "2",
            "identities-INITIAL_FORMS": "1",
            "identities-0-id": str(sam.identities.get().pk),
            "identities-0-contact": str(sam.pk),
            "identities-0-channel": "SMS",
            "identities-0-identity": "+14155550199",
            "identities-1-channel": "WHATSAPP",
            "identities-1-identity": ERASED,
        }
    )

    response = client.post(
        reverse("admin:contacts_contact_change", args=[sam.pk]), data
    )

    assert response.status_code == 200
    assert "suppressed" in response.content.decode()
    assert list(sam.identities.values_list("identity", flat=True)) == ["+14155550199"]


def test_the_identity_admin_refuses_an_erased_number(
    client, compliance_admin, erased, make_contact
):
    sam = make_contact("+14155550199")
    client.force_login(compliance_admin)
    response = client.post(
        reverse("admin:contacts_channelidentity_add"),
        {"contact": sam.pk, "channel": "WHATSAPP", "identity": ERASED},
    )
    assert response.status_code == 200
    assert "suppressed" in response.content.decode()
    assert not ChannelIdentity.objects.filter(identity=ERASED).exists()


def test_replace_number_refuses_an_erased_number(
    client, compliance_admin, erased, make_contact
):
    sam = make_contact("+14155550199")
    identity = sam.identities.get()
    client.force_login(compliance_admin)
    url = reverse("admin:contacts_contact_replace_identity", args=[sam.pk, identity.pk])

    response = client.post(url, {"new_identity": ERASED, "retire": "on"})

    assert response.status_code == 200
    assert "suppressed" in response.content.decode()
    assert list(sam.identities.values_list("identity", "retired_at")) == [
        ("+14155550199", None)
    ]


# --- consent recording --------------------------------------------------------


def test_an_opt_in_for_an_erased_number_is_refused_an_opt_out_recorded(erased):
    """A number live before its owner was erased elsewhere (WhatsApp for
    someone else): nobody can opt it in now, anyone can opt it out."""
    sam = Contact.objects.create(first_name="Sam")
    # Written as it was before the rule (creation paths refuse it now).
    whatsapp = ChannelIdentity.objects.create(
        contact=sam, channel="WHATSAPP", identity=ERASED
    )
    evidence = Evidence(note="phone call")

    with pytest.raises(SuppressedIdentityError):
        record_consent(
            identity=whatsapp,
            kind="OPT_IN",
            purpose="MARKETING",
            source="ADMIN",
            evidence=evidence,
        )
    assert not whatsapp.consent_events.exists()
    record_consent(
        identity=whatsapp,
        kind="OPT_OUT",
        purpose="MARKETING",
        source="ADMIN",
        evidence=evidence,
    )
    whatsapp.refresh_from_db()
    assert whatsapp.marketing_consent == OUT


def test_the_record_consent_page_refuses_to_opt_in_an_erased_number(
    client, compliance_admin, erased
):
    sam = Contact.objects.create(first_name="Sam")
    whatsapp = ChannelIdentity.objects.create(
        contact=sam, channel="WHATSAPP", identity=ERASED
    )
    client.force_login(compliance_admin)
    response = client.post(
        reverse("admin:contacts_contact_record_consent", args=[sam.pk]),
        {
            "identity": whatsapp.pk,
            "kind": "OPT_IN",
            "purpose": "MARKETING",
            "source": "ADMIN",
            "occurred_at": "2025-01-01 10:00",
            "evidence_note": "phone call",
        },
    )
    assert response.status_code == 200
    assert "suppressed" in response.content.decode()
    assert not ConsentEvent.objects.filter(identity=whatsapp).exists()


def test_an_erased_identity_itself_cannot_be_opted_in(erased):
    hashed = erased.identities.get()
    with pytest.raises(SuppressedIdentityError):
        record_consent(
            identity=hashed,
            kind="OPT_IN",
            purpose="TRANSACTIONAL",
            source="API",
            evidence=Evidence(note="api"),
        )
    hashed.refresh_from_db()
    assert hashed.transactional_consent == OUT
