"""The four roles and what each may do, as rules and as synced auth groups."""

import pytest
from django.contrib.auth.models import Group, Permission

from contacts import roles
from contacts.roles import grants

CONTACT_MODELS = [
    "contact",
    "channelidentity",
    "contactlist",
    "listmembership",
    "consentevent",
    "auditevent",
    "importjob",
]
COMPLIANCE_ACTIONS = [
    "import_contacts",
    "export_contacts",
    "erase_contact",
    "record_consent",
]
NEVER_FOR_ANYONE = [
    "delete_contact",
    "delete_channelidentity",
    "add_consentevent",
    "change_consentevent",
    "delete_consentevent",
    "add_auditevent",
    "change_auditevent",
    "delete_auditevent",
]


def _codenames(role):
    return {
        (p.content_type.app_label, p.codename)
        for p in Group.objects.get(name=role).permissions.select_related("content_type")
    }


def _contacts_permissions():
    return set(
        Permission.objects.filter(content_type__app_label="contacts").values_list(
            "codename", flat=True
        )
    )


# --- the rules --------------------------------------------------------------------


@pytest.mark.parametrize("role", roles.ROLES)
@pytest.mark.parametrize("codename", NEVER_FOR_ANYONE)
def test_no_role_may_delete_contacts_or_rewrite_ledgers(role, codename):
    assert not grants(role, "contacts", codename)


@pytest.mark.parametrize("role", roles.ROLES)
@pytest.mark.parametrize("app_label", ["auth", "admin", "django_q", "sessions"])
def test_roles_grant_nothing_outside_our_apps(role, app_label):
    for codename in (
        "view_user",
        "add_user",
        "change_group",
        "delete_task",
        "view_schedule",
    ):
        assert not grants(role, app_label, codename)


@pytest.mark.parametrize("model", CONTACT_MODELS)
def test_viewer_only_views(model):
    assert grants(roles.VIEWER, "contacts", f"view_{model}")
    for action in ("add", "change", "delete"):
        assert not grants(roles.VIEWER, "contacts", f"{action}_{model}")
    assert not grants(roles.VIEWER, "campaigns", "add_campaign")
    assert not grants(roles.VIEWER, "campaigns", "launch_campaign")


@pytest.mark.parametrize("role", [roles.MARKETING, roles.SENDER])
@pytest.mark.parametrize("model", CONTACT_MODELS)
def test_marketing_and_sender_only_view_contacts_but_build_lists(role, model):
    assert grants(role, "contacts", f"view_{model}")
    lists = model in ("contactlist", "listmembership")
    for action in ("add", "change"):
        assert grants(role, "contacts", f"{action}_{model}") == lists
    assert not grants(role, "contacts", f"delete_{model}")


@pytest.mark.parametrize("role", [roles.MARKETING, roles.SENDER, roles.VIEWER])
@pytest.mark.parametrize("codename", COMPLIANCE_ACTIONS)
def test_only_compliance_imports_exports_erases_and_records_consent(role, codename):
    assert not grants(role, "contacts", codename)
    assert grants(roles.COMPLIANCE, "contacts", codename)


def test_marketing_works_on_campaigns_but_only_senders_send():
    assert grants(roles.MARKETING, "campaigns", "add_campaign")
    assert grants(roles.MARKETING, "campaigns", "change_messagetemplate")
    for codename in (
        "launch_campaign",
        "cancel_campaign",
        "pause_campaign",
        "resume_campaign",
    ):
        assert not grants(roles.MARKETING, "campaigns", codename)
        assert grants(roles.SENDER, "campaigns", codename)
        assert not grants(roles.COMPLIANCE, "campaigns", codename)


def test_compliance_only_views_campaigns():
    assert grants(roles.COMPLIANCE, "campaigns", "view_campaign")
    assert not grants(roles.COMPLIANCE, "campaigns", "change_campaign")


def test_compliance_manages_contacts_and_lists():
    for codename in (
        "add_contact",
        "change_contact",
        "view_contact",
        "add_contactlist",
        "change_contactlist",
        "delete_contactlist",
        "add_listmembership",
        "delete_listmembership",
        "view_consentevent",
        "view_auditevent",
    ):
        assert grants(roles.COMPLIANCE, "contacts", codename), codename


# --- the synced groups ------------------------------------------------------------


def test_every_role_group_exists(db):
    assert set(Group.objects.values_list("name", flat=True)) >= set(roles.ROLES)


def test_viewer_group_holds_only_view_permissions(db):
    perms = _codenames(roles.VIEWER)
    assert ("contacts", "view_contact") in perms
    assert ("contacts", "view_consentevent") in perms
    assert all(codename.startswith("view_") for _, codename in perms)
    assert {app for app, _ in perms} <= set(roles.OUR_APPS)


@pytest.mark.parametrize("role", [roles.MARKETING, roles.SENDER])
def test_marketing_and_sender_groups_cannot_change_contacts(db, role):
    contacts = {c for app, c in _codenames(role) if app == "contacts"}
    assert "view_contact" in contacts
    changes = {c for c in contacts if not c.startswith("view_")}
    # A Sender also marks the seed lists test sends go to; Marketing does not.
    extra = roles.SENDER_CONTACTS if role == roles.SENDER else set()
    assert changes == roles.MARKETING_CONTACTS | extra, contacts
    assert not contacts & set(COMPLIANCE_ACTIONS)


def test_compliance_group_holds_its_actions_and_never_the_forbidden_ones(db):
    contacts = {c for app, c in _codenames(roles.COMPLIANCE) if app == "contacts"}
    assert set(COMPLIANCE_ACTIONS) <= contacts
    assert {"add_contact", "change_contact", "view_auditevent"} <= contacts
    assert not contacts & set(NEVER_FOR_ANYONE)
    # Everything else of the contacts app is there.
    assert contacts == _contacts_permissions() - set(NEVER_FOR_ANYONE)


def test_groups_match_the_rules_exactly(db):
    for role in roles.ROLES:
        expected = {
            (p.content_type.app_label, p.codename)
            for p in Permission.objects.select_related("content_type")
            if grants(role, p.content_type.app_label, p.codename)
        }
        assert _codenames(role) == expected, role


def test_sync_roles_repairs_a_tampered_group(db):
    group = Group.objects.get(name=roles.MARKETING)
    group.permissions.add(Permission.objects.get(codename="delete_contact"))
    roles.sync_roles(Group, Permission)
    assert ("contacts", "delete_contact") not in _codenames(roles.MARKETING)


def test_personas_get_exactly_their_role(
    viewer, marketer, sender, compliance_admin, outsider
):
    for action in COMPLIANCE_ACTIONS:
        assert compliance_admin.has_perm(f"contacts.{action}")
        for user in (viewer, marketer, sender, outsider):
            assert not user.has_perm(f"contacts.{action}"), (user, action)
    for user in (viewer, marketer, sender, compliance_admin):
        assert user.has_perm("contacts.view_contact")
        assert not user.has_perm("contacts.delete_contact")
        assert not user.has_perm("contacts.change_consentevent")
        assert not user.has_perm("contacts.delete_consentevent")
        assert not user.has_perm("contacts.change_auditevent")
        assert not user.has_perm("contacts.delete_auditevent")
    for user in (viewer, marketer, sender):
        assert not user.has_perm("contacts.change_contact")
        assert not user.has_perm("contacts.add_contact")
    assert not outsider.has_perm("contacts.view_contact")
