"""Staff accounts made from the command line (manage.py create_user)."""

import secrets

from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.contrib.auth.password_validation import validate_password
from django.core.exceptions import ValidationError
from django.core.validators import validate_email
from django.db import transaction

from contacts import roles
from contacts.models import AuditEvent
from contacts.services.audit import record_audit


class UserRefused(ValueError):
    """The account cannot be made; the message says why."""


def role_named(name: str) -> str:
    """The role spelled as in contacts.roles, whatever the case."""
    for role in roles.ROLES:
        if role.lower() == name.strip().lower():
            return role
    raise UserRefused(f"Unknown role {name!r}: choose one of {', '.join(roles.ROLES)}.")


def generated_password() -> str:
    return secrets.token_urlsafe(12)


def create_staff_user(
    username: str, role: str, *, email: str = "", password: str, by: str = ""
):
    """A staff user in the role's group, audited (who made it: `by`, or the
    command line). Raises UserRefused for an unknown role, a name in use, a
    bad address or a password the validators refuse."""
    User = get_user_model()
    username = username.strip()
    if not username:
        raise UserRefused("The username is empty.")
    role = role_named(role)
    if User.objects.filter(username__iexact=username).exists():
        raise UserRefused(f"A user named {username!r} exists already.")
    if email:
        try:
            validate_email(email)
        except ValidationError:
            raise UserRefused(f"{email!r} is not an e-mail address.") from None
    group = Group.objects.filter(name=role).first()
    if group is None:
        raise UserRefused(
            f"The {role} group does not exist yet: run `manage.py migrate` first."
        )
    candidate = User(username=username, email=email)
    try:
        validate_password(password, candidate)
    except ValidationError as exc:
        raise UserRefused("Password refused: " + " ".join(exc.messages)) from None
    with transaction.atomic():
        user = User.objects.create_user(
            username=username, email=email, password=password, is_staff=True
        )
        user.groups.add(group)
        record_audit(
            actor=None,
            label=by or "manage.py create_user",
            action=AuditEvent.Action.USER,
            target_type="user",
            target_id=user.pk,
            summary=f"Created staff user {username} with the role {role}",
            details={"role": role, "email_set": bool(email)},
        )
    return user
