"""Every admin form that parses input, odd values in each field: never a 500.

The walk opens each add page and each change page of the contacts and
campaigns admin (one row of each), reads the form as the browser would post
it, then posts it again with one field at a time set to an odd value: dates
past the calendar, numbers too big for anything, JSON nested without end,
pseudo time zones, phone numbers that are none, NUL characters.
"""

import random
from html.parser import HTMLParser

import pytest
from django.contrib import admin
from django.urls import NoReverseMatch, reverse

from campaigns.models import MessageTemplate, Segment
from contacts.importing.jobs import create_import_job
from contacts.models import ImportJob

ODD_VALUES = [
    "9999-12-31",
    "31/12/9999",
    "23:59:59",
    "0001-01-01",
    "99999999999999999999999999",
    "-99999999999999999999",
    "1e308",
    "nan",
    "²",
    "١٢",
    "\x00",
    '{"a":' * 3000 + "1" + "}" * 3000,
    "[" * 5_000,
    '{"k": "\\u0000"}',
    "localtime",
    "Factory",
    "Etc/GMT+12",
    "+999999999999999999999",
    "+49 (0) 151 ½",
    "a" * 20_000,
    "😀",
]
SEED = 15
PER_FIELD = 2
EXTRA_PAGES = [
    ("contacts_contact_record_consent", "contact"),
    ("campaigns_campaign_test_send", "campaign"),
    ("contacts_importjob_upload", None),
    ("contacts_importjob_review", "importjob"),
]
SKIP = {"csrfmiddlewaretoken", "_save", "_continue", "_addanother", "action"}


class _Form(HTMLParser):
    """The fields of the page's first POST form, as a browser posts them."""

    def __init__(self):
        super().__init__()
        self.in_form = self.done = False
        self.data: dict[str, list[str]] = {}
        self.names: list[str] = []
        self._textarea = self._select = None
        self._selected: list[str] = []
        self._first_option = None

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if self.done:
            return
        if (
            tag == "form"
            and (a.get("method") or "").lower() == "post"
            and a.get("id") != "logout-form"
        ):
            self.in_form = True
        if not self.in_form or not a.get("name"):
            if tag == "option" and self._select is not None:
                value = a.get("value", "")
                if self._first_option is None:
                    self._first_option = value
                if "selected" in a:
                    self._selected.append(value)
            return
        name = a["name"]
        if name not in self.names:
            self.names.append(name)
        if tag == "input":
            kind = (a.get("type") or "text").lower()
            if kind in ("checkbox", "radio"):
                if "checked" in a:
                    self.data.setdefault(name, []).append(a.get("value", "on"))
            elif kind not in ("submit", "button", "file"):
                self.data.setdefault(name, []).append(a.get("value", ""))
        elif tag == "textarea":
            self._textarea = name
            self.data.setdefault(name, []).append("")
        elif tag == "select":
            self._select, self._selected, self._first_option = name, [], None

    def handle_data(self, data):
        if self._textarea:
            self.data[self._textarea][-1] += data

    def handle_endtag(self, tag):
        if tag == "textarea":
            self._textarea = None
        elif tag == "select" and self._select is not None:
            self.data[self._select] = self._selected or []
            self._select = None
        elif tag == "form" and self.in_form:
            self.in_form, self.done = False, True


def _pages():
    urls = []
    for model in admin.site._registry:
        opts = model._meta
        if opts.app_label not in ("contacts", "campaigns"):
            continue
        prefix = f"admin:{opts.app_label}_{opts.model_name}"
        urls.append(pytest.param(f"{prefix}_add", model, id=f"{opts.model_name} add"))
        urls.append(
            pytest.param(f"{prefix}_change", model, id=f"{opts.model_name} change")
        )
    # The admin's own forms outside add and change pages.
    for name, model_name in EXTRA_PAGES:
        model = next(
            (m for m in admin.site._registry if m._meta.model_name == model_name),
            None,
        )
        urls.append(pytest.param(f"admin:{name}", model, id=name))
    return urls


@pytest.fixture
def some_rows(make_contact, make_list, make_campaign, write_csv):
    path = write_csv([["phone", "first_name"], ["+4915112345672", "Bea"]])
    create_import_job(
        path=path,
        original_name="contacts.csv",
        actor=None,
        target_list=make_list("Imported"),
        default_channel="SMS",
        purpose="MARKETING",
        consent_mode=ImportJob.ConsentMode.NONE,
        consent_source="IMPORT",
        consent_evidence="",
    )
    make_list("Customers")
    make_contact("+4915112345671", first_name="Ada", time_zone="Europe/Berlin")
    make_campaign()
    MessageTemplate.objects.get_or_create(name="Plain", kind="TEXT", text="Hi")
    condition = {"field": "language", "op": "equals", "value": "fr"}
    Segment.objects.create(
        name="French",
        definition={
            "match": "all",
            "groups": [{"match": "all", "conditions": [condition]}],
        },
    )


@pytest.mark.parametrize(("name", "model"), _pages())
def test_odd_values_in_any_form_field_never_answer_500(
    client, superuser, some_rows, name, model
):
    client.force_login(superuser)
    if model is not None and not name.endswith("_add"):
        row = model.objects.order_by("pk").first()
        if row is None:
            pytest.skip(f"no {model._meta.verbose_name} to change in this setup")
        url = reverse(name, args=[row.pk])
    else:
        try:
            url = reverse(name)
        except NoReverseMatch:
            pytest.skip("no add page")
    page = client.get(url, follow=True)
    if page.status_code == 403 or page.redirect_chain:
        pytest.skip("read-only or no such page for a superuser")
    assert page.status_code == 200
    form = _Form()
    form.feed(page.content.decode())
    fields = [n for n in form.names if n not in SKIP]
    if not fields:
        pytest.skip("a read-only page: no form fields")
    rng = random.Random(f"{SEED}:{name}")
    posted = 0
    for field in fields:
        for value in rng.sample(ODD_VALUES, PER_FIELD):
            data = {**form.data, field: [value]}
            try:
                response = client.post(url, data)
            except Exception as exc:
                pytest.fail(f"{field}={value[:60]!r}: {exc.__class__.__name__}: {exc}")
            assert response.status_code < 500, (field, value[:60])
            posted += 1
    assert posted
