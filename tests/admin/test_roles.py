"""What each role may and may not do in the admin (one persona per role)."""

import pytest
from django.urls import reverse

from contacts.models import Contact

CHANGELIST = reverse("admin:contacts_contact_changelist")
ADD = reverse("admin:contacts_contact_add")
COMPLIANCE_ACTIONS = {"add_to_list", "remove_from_list", "record_opt_out", "export_csv"}


def _actions(client) -> set[str]:
    response = client.get(CHANGELIST)
    assert response.status_code == 200
    form = response.context["action_form"]
    if form is None:  # no action available at all
        return set()
    return {name for name, _ in form.fields["action"].choices}


def _new_contact_form():
    return {
        "first_name": "New",
        "last_name": "Person",
        "external_id": "",
        "language": "",
        "time_zone": "",
        "attributes": "{}",
        "identities-TOTAL_FORMS": 1,
        "identities-INITIAL_FORMS": 0,
        "identities-0-channel": "SMS",
        "identities-0-identity": "(415) 555-0142",
        "memberships-TOTAL_FORMS": 0,
        "memberships-INITIAL_FORMS": 0,
    }


@pytest.mark.parametrize("persona", ["viewer", "marketer", "sender"])
def test_viewers_marketers_and_senders_see_contacts_but_cannot_change_them(
    client, request, persona, make_contact
):
    person = make_contact(first_name="Kept")
    client.force_login(request.getfixturevalue(persona))
    assert _actions(client) & COMPLIANCE_ACTIONS == set()
    change = reverse("admin:contacts_contact_change", args=[person.pk])
    page = client.get(change)
    assert page.status_code == 200
    assert b'name="_save"' not in page.content
    assert client.post(change, {"first_name": "Changed"}).status_code == 403
    assert client.post(ADD, _new_contact_form()).status_code == 403
    for name in (
        "admin:contacts_contact_record_consent",
        "admin:contacts_contact_erase",
    ):
        assert client.get(reverse(name, args=[person.pk])).status_code == 403
        assert client.post(reverse(name, args=[person.pk])).status_code == 403
    person.refresh_from_db()
    assert person.first_name == "Kept"
    assert person.erased_at is None


def test_compliance_admin_manages_contacts_consent_lists_and_exports(
    client, compliance_admin, make_contact
):
    person = make_contact()
    client.force_login(compliance_admin)
    assert _actions(client) >= COMPLIANCE_ACTIONS
    response = client.post(ADD, _new_contact_form())
    assert response.status_code == 302
    created = Contact.objects.get(first_name="New")
    assert created.identities.get().identity == "+14155550142"
    for name in (
        "admin:contacts_contact_record_consent",
        "admin:contacts_contact_erase",
    ):
        assert client.get(reverse(name, args=[person.pk])).status_code == 200


def test_nobody_can_delete_a_contact_only_erase(client, compliance_admin, make_contact):
    person = make_contact()
    client.force_login(compliance_admin)
    delete = reverse("admin:contacts_contact_delete", args=[person.pk])
    assert client.post(delete, {"post": "yes"}).status_code == 403
    assert Contact.objects.filter(pk=person.pk).exists()


def test_people_outside_the_staff_are_sent_to_the_login_page(client, outsider):
    client.force_login(outsider)
    response = client.get(CHANGELIST)
    assert response.status_code == 302
    assert "/admin/login/" in response["Location"]


def test_staff_without_a_role_sees_nothing(client, make_user):
    client.force_login(make_user("nobody"))
    assert client.get(CHANGELIST).status_code == 403


def test_marketers_cannot_read_or_change_users_and_roles(client, marketer):
    client.force_login(marketer)
    assert client.get(reverse("admin:auth_user_changelist")).status_code == 403
    assert client.get(reverse("admin:auth_group_changelist")).status_code == 403
