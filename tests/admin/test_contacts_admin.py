"""The contacts admin as compliance admins and marketers use it."""

import csv
import io
from datetime import timedelta

import pytest
from django.contrib.admin import helpers
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from contacts.models import AuditEvent, ChannelIdentity, ConsentEvent, ListMembership
from contacts.services.consent import Evidence, record_consent
from contacts.services.identities import replace_identity

CHANGELIST = reverse("admin:contacts_contact_changelist")


def _ids(response) -> set[int]:
    return {c.pk for c in response.context["cl"].result_list}


@pytest.mark.parametrize(
    "typed",
    [
        "+1 415 555 0199",
        "(415) 555-0199",
        "415.555.0199",
        "0014155550199",
        "tel:+1-415-555-0199",
        "14155550199",
    ],
)
def test_phone_search_finds_the_contact_whatever_the_format(
    client, compliance_admin, make_contact, typed
):
    wanted = make_contact("+14155550199")
    make_contact("+14155550198")
    client.force_login(compliance_admin)
    response = client.get(CHANGELIST, {"q": typed})
    assert _ids(response) == {wanted.pk}


def test_phone_search_is_an_exact_index_lookup_not_a_like_scan(
    client, compliance_admin, make_contact
):
    make_contact("+14155550199")
    client.force_login(compliance_admin)
    with CaptureQueriesContext(connection) as queries:
        client.get(CHANGELIST, {"q": "(415) 555-0199"})
    sql = " ".join(q["sql"] for q in queries.captured_queries).upper()
    assert "LIKE" not in sql


def test_name_search_matches_the_start_of_first_or_last_name(
    client, compliance_admin, make_contact
):
    ada = make_contact(first_name="Ada", last_name="Lovelace")
    make_contact(first_name="Grace", last_name="Hopper")
    client.force_login(compliance_admin)
    assert _ids(client.get(CHANGELIST, {"q": "love"})) == {ada.pk}


def test_filters_by_list_channel_and_consent(
    client, compliance_admin, make_contact, make_list
):
    vip = make_list("VIP")
    in_vip = make_contact(consent="OPTED_IN", lists=[vip])
    opted_out = make_contact(consent="OPTED_OUT")
    whatsapp = make_contact(channel="WHATSAPP")
    client.force_login(compliance_admin)
    assert _ids(client.get(CHANGELIST, {"list": vip.pk})) == {in_vip.pk}
    assert _ids(client.get(CHANGELIST, {"consent": "MARKETING:OPTED_OUT"})) == {
        opted_out.pk
    }
    assert _ids(client.get(CHANGELIST, {"channel": "WHATSAPP"})) == {whatsapp.pk}


def test_a_replaced_number_no_longer_puts_its_contact_under_its_state_or_channel(
    client, compliance_admin, make_contact
):
    """The filters describe the numbers a campaign would use: a retired
    number keeps its opt-out in its ledger, but the contact's new number is
    what the consent and channel filters show."""
    moved = make_contact(consent="OPTED_OUT")
    replace_identity(moved.identities.get(), "+14155550999", actor=compliance_admin)
    still_out = make_contact(consent="OPTED_OUT")
    rcs = make_contact(channel="RCS")
    gone = make_contact(channel="RCS")
    ChannelIdentity.objects.filter(contact=gone).update(retired_at=timezone.now())
    client.force_login(compliance_admin)
    opted_out = {"consent": "MARKETING:OPTED_OUT"}
    assert _ids(client.get(CHANGELIST, opted_out)) == {still_out.pk}
    unknown = {"consent": "MARKETING:UNKNOWN"}
    assert moved.pk in _ids(client.get(CHANGELIST, unknown))
    assert _ids(client.get(CHANGELIST, {"channel": "RCS"})) == {rcs.pk}


def test_changelist_never_counts_the_whole_table(
    client, compliance_admin, make_contact
):
    for _ in range(3):
        make_contact()
    client.force_login(compliance_admin)
    from config.lib import pagination

    original = pagination.COUNT_CAP
    pagination.COUNT_CAP = 2
    try:
        response = client.get(CHANGELIST)
    finally:
        pagination.COUNT_CAP = original
    assert "more than 2 contacts" in response.content.decode()


def test_changelist_query_count_does_not_grow_with_rows(
    client, compliance_admin, make_contact, django_assert_max_num_queries
):
    for _ in range(30):
        make_contact()
    client.force_login(compliance_admin)
    with django_assert_max_num_queries(12):
        response = client.get(CHANGELIST)
    assert response.status_code == 200


def _action(client, action, contacts, **extra):
    data = {
        "action": action,
        "index": 0,
        helpers.ACTION_CHECKBOX_NAME: [c.pk for c in contacts],
        **extra,
    }
    return client.post(CHANGELIST, data)


def test_bulk_add_and_remove_list_members_are_audited(
    client, compliance_admin, make_contact, make_list
):
    lst = make_list("Spring")
    people = [make_contact(), make_contact()]
    client.force_login(compliance_admin)
    page = _action(client, "add_to_list", people)
    assert b"Add these contacts to" in page.content
    _action(client, "add_to_list", people, apply="1", contact_list=lst.pk)
    assert ListMembership.objects.filter(contact_list=lst).count() == 2
    _action(client, "remove_from_list", people[:1], apply="1", contact_list=lst.pk)
    assert ListMembership.objects.filter(contact_list=lst).count() == 1
    summaries = list(AuditEvent.objects.values_list("summary", flat=True))
    assert any("Added 2 contacts" in s for s in summaries)
    assert any("Removed 1 contacts" in s for s in summaries)


def test_bulk_opt_out_asks_for_evidence_first(client, compliance_admin, make_contact):
    person = make_contact(consent="OPTED_IN")
    client.force_login(compliance_admin)
    page = _action(
        client, "record_opt_out", [person], apply="1", purposes=["MARKETING"]
    )
    assert page.status_code == 200
    assert b"This field is required" in page.content
    assert not ConsentEvent.objects.filter(kind="OPT_OUT").exists()
    _action(
        client,
        "record_opt_out",
        [person],
        apply="1",
        purposes=["MARKETING"],
        evidence_note="Asked by phone, ticket 42",
    )
    identity = ChannelIdentity.objects.get(contact=person)
    assert identity.marketing_consent == "OPTED_OUT"
    event = ConsentEvent.objects.get(kind="OPT_OUT")
    assert event.evidence_note == "Asked by phone, ticket 42"
    assert event.actor == compliance_admin


def test_contact_page_shows_the_consent_history(client, compliance_admin, make_contact):
    person = make_contact(consent="OPTED_IN")
    client.force_login(compliance_admin)
    page = client.get(reverse("admin:contacts_contact_change", args=[person.pk]))
    html = page.content.decode()
    assert "History: campaigns, replies and consent" in html
    assert "Test fixture consent" in html
    assert "Opt-in, marketing" in html


def test_record_consent_view_appends_to_the_ledger(
    client, compliance_admin, make_contact
):
    person = make_contact()
    identity = person.identities.get()
    record_consent(
        identity=identity,
        kind="OPT_OUT",
        purpose="MARKETING",
        source="FORM",
        evidence=Evidence(note="old"),
        occurred_at=timezone.now() - timedelta(hours=1),
    )
    client.force_login(compliance_admin)
    url = reverse("admin:contacts_contact_record_consent", args=[person.pk])
    response = client.post(
        url,
        {
            "identity": identity.pk,
            "kind": "OPT_IN",
            "purpose": "MARKETING",
            "source": "FORM",
            "occurred_at": "2099-01-01 10:00",
            "evidence_note": "web form",
        },
    )
    assert b"in the future" in response.content
    assert identity.consent_events.count() == 1
    response = client.post(
        url,
        {
            "identity": identity.pk,
            "kind": "OPT_IN",
            "purpose": "MARKETING",
            "source": "FORM",
            "occurred_at": timezone.now().strftime("%Y-%m-%d %H:%M:%S"),
            "evidence_note": "web form",
        },
    )
    assert response.status_code == 302
    identity.refresh_from_db()
    assert identity.marketing_consent == "OPTED_IN"
    assert identity.consent_events.count() == 2


def test_erasure_from_the_admin_needs_a_post(client, compliance_admin, make_contact):
    person = make_contact(first_name="Eve")
    client.force_login(compliance_admin)
    url = reverse("admin:contacts_contact_erase", args=[person.pk])
    assert b"cannot be undone" in client.get(url).content
    person.refresh_from_db()
    assert person.first_name == "Eve"
    client.post(url)
    person.refresh_from_db()
    assert person.erased_at is not None
    assert person.first_name == ""


def test_export_action_streams_a_safe_csv(client, compliance_admin, make_contact):
    person = make_contact("+14155550111", first_name='=HYPERLINK("x")')
    client.force_login(compliance_admin)
    response = _action(client, "export_csv", [person])
    body = b"".join(response.streaming_content).decode()
    rows = list(csv.DictReader(io.StringIO(body)))
    assert rows[0]["identity"] == "+14155550111"
    assert rows[0]["first_name"] == '\'=HYPERLINK("x")'
    assert AuditEvent.objects.filter(action="EXPORT").exists()


def test_names_are_html_escaped_in_the_admin(client, compliance_admin, make_contact):
    make_contact(first_name="<script>alert(1)</script>")
    client.force_login(compliance_admin)
    html = client.get(CHANGELIST).content.decode()
    assert "<script>alert(1)</script>" not in html
    assert "&lt;script&gt;" in html


def test_ledger_and_audit_are_read_only_even_for_superusers(
    client, superuser, make_contact
):
    person = make_contact(consent="OPTED_IN")
    event = ConsentEvent.objects.get(identity__contact=person)
    client.force_login(superuser)
    change = reverse("admin:contacts_consentevent_change", args=[event.pk])
    delete = reverse("admin:contacts_consentevent_delete", args=[event.pk])
    page = client.get(change)
    assert page.status_code == 200
    assert b'name="_save"' not in page.content
    assert client.post(delete, {"post": "yes"}).status_code == 403
    assert client.get(reverse("admin:contacts_consentevent_add")).status_code == 403
    assert ConsentEvent.objects.filter(pk=event.pk).exists()


@pytest.mark.parametrize("sparse_limit", [0, 100_000])
def test_filters_give_the_same_contacts_whichever_plan_is_used(
    client, compliance_admin, make_contact, make_list, monkeypatch, sparse_limit
):
    """Few matches are filtered with IN, many with EXISTS: same answer either way."""
    from contacts.admin import filters

    monkeypatch.setattr(filters, "SPARSE_LIMIT", sparse_limit)
    vip = make_list("VIP")
    wanted = {make_contact(consent="OPTED_OUT", lists=[vip]).pk for _ in range(3)}
    make_contact(consent="OPTED_IN", lists=[vip])
    make_contact(consent="OPTED_OUT")
    client.force_login(compliance_admin)
    found = _ids(
        client.get(CHANGELIST, {"consent": "MARKETING:OPTED_OUT", "list": vip.pk})
    )
    assert found == wanted
