"""The four roles (auth groups) and which permissions each holds.

The rules work on app labels and codename prefixes, so permissions of models
added by later migrations (campaigns, batches, ...) fall into place: the
roles are re-synchronised after every migrate.
"""

VIEWER = "Viewer"
MARKETING = "Marketing"
SENDER = "Sender"
COMPLIANCE = "Compliance"
ROLES = (VIEWER, MARKETING, SENDER, COMPLIANCE)

# Sending and stopping sends is what separates Sender from Marketing.
SEND_PREFIXES = ("launch_", "cancel_", "pause_", "resume_")
# Exemptions from a compliance guard (e.g. campaigns.exempt_frequency_cap) are
# Compliance's alone: those who write or send campaigns never waive them.
COMPLIANCE_PREFIXES = ("exempt_",)
# Ledgers are append-only and contacts are erased, never deleted.
NEVER = {
    "delete_contact",
    "delete_channelidentity",
    "add_consentevent",
    "change_consentevent",
    "delete_consentevent",
    "add_auditevent",
    "change_auditevent",
    "delete_auditevent",
}
OUR_APPS = ("contacts", "campaigns")
# Marketing (and Sender: Marketing who may send) builds its audiences: lists
# (seed lists too) and who is on them; never consent, identities or contacts.
MARKETING_CONTACTS = {
    "add_contactlist",
    "change_contactlist",
    "add_listmembership",
    "change_listmembership",
}

# Those who may send mark the lists test sends may go to (Compliance holds
# every contacts permission); Marketing builds lists but does not mark them.
SENDER_CONTACTS = {"mark_seed_list"}


def grants(role: str, app_label: str, codename: str) -> bool:
    """Whether `role` holds the permission `app_label.codename`."""
    if app_label not in OUR_APPS or codename in NEVER:
        return False
    is_view = codename.startswith("view_")
    if codename.startswith(COMPLIANCE_PREFIXES):
        return role == COMPLIANCE
    if role == VIEWER:
        return is_view
    if role in (MARKETING, SENDER):
        if app_label == "contacts":
            return (
                is_view
                or codename in MARKETING_CONTACTS
                or (role == SENDER and codename in SENDER_CONTACTS)
            )
        return role == SENDER or not codename.startswith(SEND_PREFIXES)
    if role == COMPLIANCE:
        return app_label == "contacts" or is_view
    return False


def sync_roles(group_model, permission_model) -> None:
    """Create the role groups and give each exactly its permissions."""
    perms = list(
        permission_model.objects.filter(
            content_type__app_label__in=OUR_APPS
        ).select_related("content_type")
    )
    for role in ROLES:
        group, _ = group_model.objects.get_or_create(name=role)
        group.permissions.set(
            [p for p in perms if grants(role, p.content_type.app_label, p.codename)]
        )


def sync_roles_after_migrate(app_config, using="default", **kwargs) -> None:
    """post_migrate (also sent by flush): once per run, after the last app,
    when every app's permissions exist."""
    from django.apps import apps
    from django.contrib.auth.models import Group, Permission

    if app_config is list(apps.get_app_configs())[-1]:
        sync_roles(Group, Permission)


# How a refusal names the people of a role.
_MEMBER = {
    VIEWER: "a Viewer",
    MARKETING: "a Marketing user",
    SENDER: "a Sender",
    COMPLIANCE: "a Compliance user",
}


def roles_with(perm: str) -> list[str]:
    """The roles that hold `perm` ("app_label.codename"), in ROLES order."""
    app_label, _, codename = perm.partition(".")
    return [role for role in ROLES if grants(role, app_label, codename)]


def refusal(perm: str, doing: str) -> str:
    """Why a user without `perm` may not do `doing` ("launch a campaign"):
    "Only a Sender can launch a campaign." (a superuser, when no role may)."""
    holders = [_MEMBER[role] for role in roles_with(perm)] or ["a superuser"]
    who = (
        holders[0]
        if len(holders) == 1
        else (", ".join(holders[:-1]) + " or " + holders[-1])
    )
    return f"Only {who} can {doing}."
