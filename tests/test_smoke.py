from django.contrib.auth.models import Group


def test_roles_exist_after_migrate(db):
    assert set(Group.objects.values_list("name", flat=True)) >= {
        "Viewer",
        "Marketing",
        "Sender",
        "Compliance",
    }
