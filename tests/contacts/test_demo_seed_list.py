"""`make run` users can try a test send: the demo data has a seed list."""

import io

from django.core.management import call_command

from campaigns.dispatch import test_send
from contacts.demo import SEED_LIST, ensure_demo_seed_list
from contacts.management.commands import bootstrap_demo
from contacts.models import ContactList


def test_bootstrap_creates_a_seed_list_once(db, monkeypatch, tmp_path):
    monkeypatch.setattr(bootstrap_demo, "LOGIN_FILE", tmp_path / "login.txt")
    out = io.StringIO()
    call_command("bootstrap_demo", stdout=out)
    assert f"Created the seed list “{SEED_LIST}” (3 people)" in out.getvalue()
    seed = ContactList.objects.get(name=SEED_LIST)
    assert seed.is_seed_list
    assert seed.memberships.count() == 3
    call_command("bootstrap_demo", stdout=io.StringIO())
    assert ContactList.objects.filter(name=SEED_LIST).count() == 1


def test_a_test_send_to_the_demo_seed_list_reaches_all_three(
    sinch, control, make_campaign, make_list, marketer
):
    ensure_demo_seed_list()
    seed = ContactList.objects.get(name=SEED_LIST)
    campaign = make_campaign(None, [make_list()], seed_list=seed)
    result = test_send.send_test(campaign, marketer)
    assert result.ok, result.message
    assert result.sent == 3
