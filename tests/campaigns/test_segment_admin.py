"""Segments in the admin: Marketing builds them in a form (no SQL, no JSON),
the live count answers as the conditions change, the list counts only when
asked, and a segment's page leads to a campaign on it."""

import json
from html import escape

import pytest
from django.contrib.admin.models import LogEntry
from django.test import Client
from django.urls import reverse

from campaigns.models import Segment
from campaigns.segments import evaluate

ADD = reverse("admin:campaigns_segment_add")
CHANGELIST = reverse("admin:campaigns_segment_changelist")
COUNT = reverse("admin:campaigns_segment_count")

FRENCH = {
    "match": "all",
    "groups": [
        {
            "match": "all",
            "conditions": [{"field": "language", "op": "equals", "value": "fr"}],
        }
    ],
}


@pytest.fixture
def people(make_contact):
    """Three French speakers (two with 120 points or more), one German."""
    make_contact(first_name="Anna", language="fr", attributes={"points": 150})
    make_contact(first_name="Ben", language="fr", attributes={"points": 120})
    make_contact(first_name="Cleo", language="fr", attributes={"points": 10})
    make_contact(first_name="Dirk", language="de", attributes={"points": 500})


def count(client, payload, **extra):
    body = payload if isinstance(payload, str | bytes) else json.dumps(payload)
    return client.post(COUNT, body, content_type="application/json", **extra)


def editor_post(**fields):
    """The editor's inputs: French speakers with more than `points` points,
    as the page posts them."""
    data = {
        "name": "French regulars",
        "description": "Loyal French speakers",
        "match": "all",
        "g-0-match": "all",
        "g-0-c-0-field": "language",
        "g-0-c-0-op": "equals",
        "g-0-c-0-value": "fr",
        "g-0-c-1-field": "attribute",
        "g-0-c-1-op": "gt",
        "g-0-c-1-key": "points",
        "g-0-c-1-value": "100",
    }
    data.update(fields)
    return data


# --- the live count -------------------------------------------------------------


def test_the_live_count_says_how_many_match_and_says_it_in_words(
    client, marketer, people
):
    client.force_login(marketer)

    response = count(client, {"definition": FRENCH})

    assert response.status_code == 200
    answer = response.json()
    assert answer["count"] == 3
    assert answer["errors"] == []
    assert "fr" in answer["description"]
    assert isinstance(answer["ms"], int)
    assert answer["ms"] >= 0
    assert "no-store" in response["Cache-Control"]


def test_the_live_count_names_what_is_missing_and_counts_nothing(
    client, marketer, people, monkeypatch
):
    client.force_login(marketer)
    monkeypatch.setattr(evaluate, "count", lambda d: pytest.fail("counted"))
    incomplete = {
        "match": "all",
        "groups": [
            {
                "match": "all",
                "conditions": [
                    {"field": "attribute", "op": "gt", "key": "", "value": "ten"}
                ],
            }
        ],
    }

    answer = count(client, {"definition": incomplete}).json()

    assert answer["count"] is None
    assert answer["description"] == ""
    assert any("attribute" in e for e in answer["errors"])
    assert any("number" in e for e in answer["errors"])


@pytest.mark.parametrize(
    ("body", "words"),
    [
        ("{not json", "not JSON"),
        (b"\xff\xfe", "not JSON"),
        ("[1, 2]", "no definition"),
        ('{"groups": []}', "no definition"),
    ],
)
def test_the_live_count_refuses_a_body_it_cannot_read_with_a_clear_error(
    client, marketer, body, words
):
    client.force_login(marketer)

    response = count(client, body)

    assert response.status_code == 400
    answer = response.json()
    assert answer["count"] is None
    assert words in answer["errors"][0]


def test_the_live_count_is_for_those_who_build_segments(
    client, viewer, compliance_admin, sender, people
):
    for persona in (viewer, compliance_admin):
        client.force_login(persona)
        response = count(client, {"definition": FRENCH})
        assert response.status_code == 403, persona
        assert "may not" in response.json()["errors"][0]
    client.force_login(sender)
    assert count(client, {"definition": FRENCH}).json()["count"] == 3


def test_the_live_count_needs_a_staff_login(client, outsider, people):
    assert count(client, {"definition": FRENCH}).status_code == 302  # to the login
    client.force_login(outsider)
    assert count(client, {"definition": FRENCH}).status_code == 302


def test_the_live_count_takes_a_post_with_the_csrf_token(marketer, people):
    strict = Client(enforce_csrf_checks=True)
    strict.force_login(marketer)

    assert strict.get(COUNT).status_code == 405
    assert count(strict, {"definition": FRENCH}).status_code == 403  # no token
    strict.get(ADD)  # sets the CSRF cookie, as the editor page does
    token = strict.cookies["csrftoken"].value
    answer = count(strict, {"definition": FRENCH}, HTTP_X_CSRFTOKEN=token)
    assert answer.status_code == 200
    assert answer.json()["count"] == 3


# --- saving through the editor ----------------------------------------------------


def test_a_marketer_saves_a_segment_built_in_the_form(client, marketer, people):
    client.force_login(marketer)

    response = client.post(ADD, editor_post())

    assert response.status_code == 302
    segment = Segment.objects.get(name="French regulars")
    assert segment.created_by == marketer
    assert segment.definition == {
        "match": "all",
        "groups": [
            {
                "match": "all",
                "conditions": [
                    {"field": "language", "op": "equals", "value": "fr"},
                    {"field": "attribute", "op": "gt", "value": 100, "key": "points"},
                ],
            }
        ],
    }
    assert evaluate.count(segment.definition) == 2


def test_a_segment_with_errors_is_not_saved_and_keeps_what_was_typed(client, marketer):
    client.force_login(marketer)

    response = client.post(
        ADD, editor_post(**{"g-0-c-1-key": "", "g-0-c-1-value": "lots"})
    )

    assert response.status_code == 200
    assert not Segment.objects.exists()
    page = response.content.decode()
    assert "choose which attribute" in page
    assert "enter a number" in page
    # Everything typed is drawn again: the name, the value "lots", the "fr".
    assert 'value="French regulars"' in page
    assert 'name="g-0-c-1-value"' in page
    assert 'value="lots"' in page
    assert 'name="g-0-c-0-value" class="segment-input segment-input-text"' in page
    assert 'value="fr"' in page


def test_add_and_remove_without_javascript_redraw_the_form_and_save_nothing(
    client, marketer
):
    client.force_login(marketer)

    response = client.post(ADD, editor_post(segment_action="add-group"))

    assert response.status_code == 200
    assert not Segment.objects.exists()
    page = response.content.decode()
    assert "Not saved yet" in page
    assert 'name="g-1-match"' in page
    assert 'name="g-1-c-0-field"' in page
    assert 'value="fr"' in page  # the first group is still there

    response = client.post(ADD, editor_post(segment_action="remove-condition:0:1"))
    page = response.content.decode()
    assert 'name="g-0-c-1-field"' not in page
    assert 'name="g-0-c-0-field"' in page


def test_a_sender_edits_a_segment_and_a_viewer_only_reads_it(
    client, sender, viewer, people
):
    segment = Segment.objects.create(name="French", definition=FRENCH)
    change = reverse("admin:campaigns_segment_change", args=[segment.pk])

    client.force_login(sender)
    response = client.post(change, editor_post(name="French"))
    assert response.status_code == 302
    segment.refresh_from_db()
    assert evaluate.count(segment.definition) == 2

    client.force_login(viewer)
    page = client.get(change).content.decode()
    assert 'name="g-0-c-0-field"' not in page  # no builder
    assert "points" in page  # the conditions, in words
    assert client.post(change, editor_post(name="Hacked")).status_code == 403
    assert client.post(ADD, editor_post(name="Other")).status_code == 403
    segment.refresh_from_db()
    assert segment.name == "French"


def test_compliance_cannot_see_the_editor(client, compliance_admin):
    client.force_login(compliance_admin)
    assert client.get(ADD).status_code == 403


# --- the list and the segment page ---------------------------------------------------


def test_the_list_shows_each_segment_in_words_and_counts_only_when_asked(
    client, marketer, people, monkeypatch, make_campaign
):
    french = Segment.objects.create(
        name="French", description="French speakers", definition=FRENCH
    )
    Segment.objects.create(name="Nobody yet", definition={"groups": []})
    make_campaign(name="Spring").segments.add(french)
    client.force_login(marketer)
    counted = []
    real_count = evaluate.count
    monkeypatch.setattr(evaluate, "count", lambda d: counted.append(d) or real_count(d))

    page = client.get(CHANGELIST).content.decode()

    assert counted == []  # no count on page load
    assert "French speakers" in page
    assert "Incomplete: " in page
    assert "1 campaign" in page
    row_count = reverse("admin:campaigns_segment_row_count", args=[french.pk])
    assert f'data-count-url="{row_count}"' in page
    answer = client.get(row_count).json()
    assert answer["count"] == 3
    assert answer["errors"] == []
    assert len(counted) == 1


def test_the_segment_page_links_to_a_new_campaign_on_it_and_lists_its_campaigns(
    client, marketer, viewer, make_campaign
):
    segment = Segment.objects.create(name="French", definition=FRENCH)
    make_campaign(name="Spring sale").segments.add(segment)
    make_campaign(name="Unrelated")
    client.force_login(marketer)

    page = client.get(
        reverse("admin:campaigns_segment_change", args=[segment.pk])
    ).content.decode()

    add_url = reverse("admin:campaigns_campaign_add") + f"?segments={segment.pk}"
    assert f'href="{add_url}"' in page
    assert "Spring sale" in page
    assert "Unrelated" not in page
    # The campaign form opens with the segment chosen.
    form = client.get(add_url).context["adminform"].form
    assert form.initial["segments"] == [str(segment.pk)]

    client.force_login(viewer)  # may not create campaigns: no link
    page = client.get(
        reverse("admin:campaigns_segment_change", args=[segment.pk])
    ).content.decode()
    assert "Create campaign on this segment" not in page


def test_a_segment_a_campaign_uses_cannot_be_deleted(client, marketer, make_campaign):
    used = Segment.objects.create(name="Used", definition=FRENCH)
    unused = Segment.objects.create(name="Unused", definition=FRENCH)
    make_campaign().segments.add(used)
    client.force_login(marketer)

    delete = reverse("admin:campaigns_segment_delete", args=[used.pk])
    assert client.post(delete, {"post": "yes"}).status_code == 403
    delete = reverse("admin:campaigns_segment_delete", args=[unused.pk])
    assert client.post(delete, {"post": "yes"}).status_code == 302
    assert list(Segment.objects.values_list("name", flat=True)) == ["Used"]


def test_the_list_reads_the_names_it_shows_once_per_page_not_once_per_row(
    client, marketer, make_list
):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    client.force_login(marketer)

    def queries_for_a_list_of(n: int) -> int:
        for _ in range(n):
            listed = make_list()
            Segment.objects.create(
                name=f"On {listed.name}",
                definition={
                    "match": "all",
                    "groups": [
                        {
                            "match": "all",
                            "conditions": [
                                {"field": "list", "op": "in", "value": [listed.pk]}
                            ],
                        }
                    ],
                },
            )
        with CaptureQueriesContext(connection) as queries:
            page = client.get(CHANGELIST).content.decode()
        assert escape(f'on list "{listed.name}"') in page
        return len(queries)

    assert queries_for_a_list_of(2) == queries_for_a_list_of(5)


def test_the_history_says_the_new_conditions_and_erasure_scrubs_an_id_from_it(
    client, marketer, compliance_admin, make_contact
):
    """The change message holds the conditions in words; one naming a
    person's external id is theirs, and erasing them scrubs it."""
    from contacts.services.erasure import erase_contact

    person = make_contact("+14155550777", first_name="Zoltan", external_id="CRM-98765")
    client.force_login(marketer)
    one = {
        "name": "One customer",
        "match": "all",
        "g-0-match": "all",
        "g-0-c-0-field": "external_id",
        "g-0-c-0-op": "equals",
        "g-0-c-0-value": "CRM-00001",
    }
    assert client.post(ADD, one).status_code == 302
    segment = Segment.objects.get(name="One customer")
    change = reverse("admin:campaigns_segment_change", args=[segment.pk])
    assert client.post(change, {**one, "g-0-c-0-value": "CRM-98765"}).status_code == 302
    entry = LogEntry.objects.filter(object_id=str(segment.pk)).latest("pk")
    assert "Conditions: external id is CRM-98765" in entry.get_change_message()

    erase_contact(contact=person, actor=compliance_admin)

    entry.refresh_from_db()
    assert "CRM-98765" not in entry.change_message


def test_the_bulk_delete_action_keeps_a_segment_a_campaign_uses(
    client, marketer, make_campaign
):
    used = Segment.objects.create(name="Used", definition=FRENCH)
    unused = Segment.objects.create(name="Unused", definition=FRENCH)
    make_campaign(name="Spring sale").segments.add(used)
    client.force_login(marketer)
    action = {"action": "delete_selected", "_selected_action": [used.pk, unused.pk]}

    page = client.post(CHANGELIST, action).content.decode()
    assert "Spring sale" in page
    client.post(CHANGELIST, {**action, "post": "yes"})

    assert set(Segment.objects.values_list("name", flat=True)) == {"Used", "Unused"}
    client.post(
        CHANGELIST,
        {"action": "delete_selected", "_selected_action": [unused.pk], "post": "yes"},
    )
    assert list(Segment.objects.values_list("name", flat=True)) == ["Used"]
