"""Every admin changelist, every filter parameter, odd values: never a 500.

A bad filter value is ignored or shows an empty result; it never breaks the
page. The walk finds the changelists and their filters from the admin site
itself, so a new changelist or filter is covered without editing this test.
"""

import random
from urllib.parse import urlencode

import pytest
from django.contrib import admin
from django.urls import reverse

ODD_VALUES = [
    "²",  # a digit to str.isdigit(), not to int()
    "١٢",  # Arabic-Indic digits
    "-1",
    "99999999999999999999999999",
    "1.5",
    "x",
    "\x00",
    "' OR 1=1 --",
    "2026-13-45",
    "a" * 3000,
    "😀",
    ":",
]
# Parameters every changelist reads, and ones the product's own links use.
COMMON = ["q", "o", "p", "all", "_to_field", "campaign__id__exact"]


def _changelists():
    found = []
    for model, model_admin in admin.site._registry.items():
        opts = model._meta
        name = f"admin:{opts.app_label}_{opts.model_name}_changelist"
        if opts.app_label in ("contacts", "campaigns"):
            found.append(pytest.param(model, model_admin, name, id=name[6:]))
    return found


def _filter_parameters(client, url) -> list[str]:
    response = client.get(url)
    assert response.status_code == 200, url
    changelist = response.context["cl"]
    names = set(COMMON)
    for spec in changelist.filter_specs:
        names.update(spec.expected_parameters())
    hierarchy = changelist.date_hierarchy
    if hierarchy:
        names.update(f"{hierarchy}__{part}" for part in ("year", "month", "day"))
    return sorted(names)


@pytest.fixture
def some_rows(make_contact, make_list, make_campaign):
    """A row or two everywhere, so that every filter has choices to show."""
    make_list("Customers")
    make_contact("+4915112345671", first_name="Ada")
    make_campaign()


@pytest.mark.parametrize(("model", "model_admin", "name"), _changelists())
def test_odd_filter_values_never_answer_500(
    client, superuser, some_rows, model, model_admin, name
):
    client.force_login(superuser)
    url = reverse(name)
    parameters = _filter_parameters(client, url)
    rng = random.Random(name)
    for parameter in parameters:
        # The findings always, then a seeded sample of the rest.
        for value in ODD_VALUES[:2] + rng.sample(ODD_VALUES[2:], 4):
            response = client.get(f"{url}?{urlencode({parameter: value})}", follow=True)
            assert response.status_code < 500, (parameter, value)
    # A few combinations of two odd parameters at once.
    for _ in range(10):
        query = {p: rng.choice(ODD_VALUES) for p in rng.sample(parameters, 2)}
        response = client.get(f"{url}?{urlencode(query)}", follow=True)
        assert response.status_code < 500, query


# --- the findings, one by one ---------------------------------------------------


@pytest.mark.parametrize("value", ["²", "١٢", "99999999999999999999999999"])
def test_a_list_filter_value_that_is_no_id_is_ignored_with_a_message(
    client, superuser, make_contact, make_list, value
):
    make_list("Customers")
    make_contact("+4915112345671", first_name="Ada")
    client.force_login(superuser)
    url = reverse("admin:contacts_contact_changelist")
    response = client.get(f"{url}?{urlencode({'list': value})}")
    assert response.status_code == 200
    page = response.content.decode()
    assert "The list filter value" in page
    assert "it is ignored" in page
    assert "Ada" in page


@pytest.mark.parametrize(
    ("name", "parameter"),
    [
        ("admin:contacts_auditevent_changelist", "at__year"),
        ("admin:campaigns_inboundmessage_changelist", "received_at__year"),
        ("admin:campaigns_launchapproval_changelist", "requested_at__year"),
    ],
)
def test_a_date_hierarchy_year_past_the_calendar_is_ignored_with_a_message(
    client, superuser, name, parameter
):
    client.force_login(superuser)
    url = reverse(name)
    response = client.get(f"{url}?{parameter}=99999999999999999999")
    assert response.status_code == 200
    assert "The date filter value" in response.content.decode()


@pytest.mark.parametrize("parameter", ["q", "list", "o"])
def test_a_nul_character_in_a_filter_value_is_dropped(
    client, superuser, make_contact, parameter
):
    make_contact("+4915112345671", first_name="Ada")
    client.force_login(superuser)
    url = reverse("admin:contacts_contact_changelist")
    response = client.get(f"{url}?{parameter}=%00", follow=True)
    assert response.status_code == 200
    assert "Ada" in response.content.decode()
    assert response.context["request"].GET[parameter] == ""
