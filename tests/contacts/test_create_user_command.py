"""manage.py create_user NAME --role ROLE: a staff user in the role's group,
audited, with clear refusals that create nothing."""

import io

import pytest
from django.contrib.auth.models import User
from django.core.management import CommandError, call_command

from contacts.models import AuditEvent


def run(*args, **options) -> str:
    out = io.StringIO()
    call_command("create_user", *args, stdout=out, **options)
    return out.getvalue()


@pytest.mark.django_db
def test_it_creates_a_staff_user_in_the_role_with_the_given_password():
    out = run(
        "mark",
        "--role",
        "Marketing",
        "--email",
        "mark@example.com",
        "--password",
        "s3cret-pass",
    )
    user = User.objects.get(username="mark")
    assert user.is_staff
    assert not user.is_superuser
    assert list(user.groups.values_list("name", flat=True)) == ["Marketing"]
    assert user.email == "mark@example.com"
    assert user.check_password("s3cret-pass")
    assert user.has_perm("campaigns.add_campaign")
    assert not user.has_perm("campaigns.launch_campaign")
    assert out == "Created staff user mark with the role Marketing.\n"
    assert "s3cret-pass" not in out
    audit = AuditEvent.objects.get(action=AuditEvent.Action.USER)
    assert audit.summary == "Created staff user mark with the role Marketing"
    assert audit.actor_label == "manage.py create_user"
    assert audit.target_id == str(user.pk)


@pytest.mark.django_db
def test_without_a_password_it_prints_a_generated_one_that_works():
    out = run("sandra", "--role", "sender", "--no-input")
    password = out.split("Password: ")[1].split()[0]
    assert len(password) >= 12
    user = User.objects.get(username="sandra")
    assert user.check_password(password)
    assert list(user.groups.values_list("name", flat=True)) == ["Sender"]


@pytest.mark.django_db
def test_an_unknown_role_is_refused_with_the_roles_to_choose_from():
    with pytest.raises(CommandError) as refused:
        run("x", "--role", "Admin", "--password", "pw-pw-pw")
    assert str(refused.value) == (
        "Unknown role 'Admin': choose one of Viewer, Marketing, Sender, Compliance."
    )
    assert not User.objects.filter(username="x").exists()
    assert not AuditEvent.objects.exists()


@pytest.mark.django_db
def test_an_existing_user_is_refused_and_left_as_it_was():
    run("carla", "--role", "Compliance", "--password", "first-one")
    with pytest.raises(CommandError) as refused:
        run("Carla", "--role", "Viewer", "--password", "second-one")
    assert str(refused.value) == "A user named 'Carla' exists already."
    carla = User.objects.get(username="carla")
    assert carla.check_password("first-one")
    assert list(carla.groups.values_list("name", flat=True)) == ["Compliance"]
    assert AuditEvent.objects.filter(action=AuditEvent.Action.USER).count() == 1


@pytest.mark.django_db
def test_a_bad_email_address_is_refused():
    with pytest.raises(CommandError, match="'not-an-address' is not an e-mail"):
        run("vera", "--role", "Viewer", "--email", "not-an-address", "--no-input")
    assert not User.objects.filter(username="vera").exists()
