"""Recording consent by hand (issue 11, deliverable 9): the user chooses
opt-in or opt-out, the identity is preselected, the time zone is shown; every
consent change moves the contact's "updated" time and is audited with who
acted and on which (masked) number."""

from datetime import timedelta

from django.urls import reverse
from django.utils import timezone

from contacts.models import AuditEvent, ChannelIdentity, ConsentEvent, Contact
from contacts.services.consent import Evidence, record_consent
from contacts.services.erasure import erase_contact

NUMBER = "+14155550101"


def _url(contact: Contact) -> str:
    return reverse("admin:contacts_contact_record_consent", args=[contact.pk])


def _post(identity: ChannelIdentity, **changes) -> dict:
    return {
        "identity": identity.pk,
        "purpose": "MARKETING",
        "source": "ADMIN",
        "occurred_at": timezone.localtime().strftime("%Y-%m-%d %H:%M:%S"),
        "evidence_note": "Ticket 4711: asked by phone",
        **changes,
    }


def test_the_form_has_no_default_kind(client, compliance_admin, make_contact):
    person = make_contact(NUMBER)
    identity = person.identities.get()
    client.force_login(compliance_admin)

    form = client.get(_url(person)).context["form"]
    # What the browser shows: the empty choice, selected; not "opt-in".
    kind = str(form["kind"])
    assert '<option value="" selected>' in kind
    assert 'value="OPT_IN" selected' not in kind

    response = client.post(_url(person), _post(identity))  # no kind chosen
    assert response.status_code == 200
    assert "kind" in response.context["form"].errors
    assert not ConsentEvent.objects.filter(identity=identity).exists()


def test_the_only_identity_is_preselected(client, compliance_admin, make_contact):
    person = make_contact(NUMBER)
    client.force_login(compliance_admin)
    form = client.get(_url(person)).context["form"]
    assert form["identity"].value() == person.identities.get().pk


def test_the_identity_asked_for_is_preselected(client, compliance_admin, make_contact):
    person = make_contact(NUMBER)
    whatsapp = ChannelIdentity.objects.create(
        contact=person, channel="WHATSAPP", identity=NUMBER
    )
    client.force_login(compliance_admin)
    assert client.get(_url(person)).context["form"]["identity"].value() is None
    form = client.get(_url(person), {"identity": whatsapp.pk}).context["form"]
    assert form["identity"].value() == whatsapp.pk


def test_the_form_says_which_time_zone_the_time_is_in(
    client, compliance_admin, make_contact, settings
):
    settings.TIME_ZONE = "America/New_York"
    person = make_contact(NUMBER)
    client.force_login(compliance_admin)
    page = client.get(_url(person)).content.decode()
    assert "America/New_York" in page


def test_every_consent_change_moves_the_contacts_updated_time(make_contact):
    person = make_contact(NUMBER)
    before = timezone.now() - timedelta(days=3)
    Contact.objects.filter(pk=person.pk).update(updated_at=before)

    record_consent(
        identity=person.identities.get(),
        kind="OPT_OUT",
        purpose="MARKETING",
        source="INBOUND_KEYWORD",
        evidence=Evidence(wording="STOP"),
        actor_name="inbound keyword",
    )

    person.refresh_from_db()
    assert person.updated_at > before


def test_the_audit_row_names_who_acted_and_the_masked_number(
    client, compliance_admin, make_contact
):
    person = make_contact(NUMBER)
    identity = person.identities.get()
    client.force_login(compliance_admin)

    response = client.post(_url(person), _post(identity, kind="OPT_OUT"))

    assert response.status_code == 302
    audit = AuditEvent.objects.filter(action=AuditEvent.Action.CONSENT).latest("id")
    assert audit.actor == compliance_admin
    assert "carla" in audit.summary
    assert "+1415•••0101" in audit.summary
    assert NUMBER not in audit.summary


def test_erasure_removes_the_masked_number_from_audit_rows(
    client, compliance_admin, make_contact
):
    """The masked form names a number well enough to tell it apart: once the
    person is erased it goes too (only the keyed hash stays)."""
    person = make_contact(NUMBER)
    client.force_login(compliance_admin)
    client.post(_url(person), _post(person.identities.get(), kind="OPT_OUT"))
    assert AuditEvent.objects.filter(summary__contains="+1415•••0101").exists()

    erase_contact(contact=person, actor=compliance_admin)

    assert not AuditEvent.objects.filter(summary__contains="+1415•••0101").exists()
    assert not AuditEvent.objects.filter(summary__contains="0101").exists()
