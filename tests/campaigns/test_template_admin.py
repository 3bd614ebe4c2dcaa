"""Templates in the admin: Marketing writes them, Viewer and Compliance only read."""

import json
from html.parser import HTMLParser

import pytest
from django.urls import reverse

from campaigns.models import MessageTemplate

ADD = reverse("admin:campaigns_messagetemplate_add")
CHANGELIST = reverse("admin:campaigns_messagetemplate_changelist")
KIND_EXTRA = {
    "CHANNEL_TEMPLATE": ["template_channel", "template_parameters"],
    "LOCATION": ["latitude", "longitude", "overrides-group"],
    "OMNI_TEMPLATE": ["template_parameters", "overrides-group"],
    "CAROUSEL": ["cards-group", "overrides-group"],
    "LIST": ["list_items-group", "overrides-group"],
}


def _form(**fields):
    data = {
        "name": "Welcome",
        "kind": "TEXT",
        "text": "Hi ${first_name}, your tier is ${tier}",
        "title": "",
        "description": "",
        "media_url": "",
        "choices": "",
        "template_channel": "WHATSAPP",
        "template_id": "",
        "template_language": "",
        "template_parameters": "{}",
        "parameters-TOTAL_FORMS": 0,
        "parameters-INITIAL_FORMS": 0,
    }
    data.update(fields)
    return data


def test_a_marketer_creates_a_template_through_the_add_form(client, marketer):
    client.force_login(marketer)
    response = client.post(ADD, _form())
    assert response.status_code == 302
    template = MessageTemplate.objects.get(name="Welcome")
    assert template.placeholders == ["first_name", "tier"]
    assert set(template.parameters.values_list("name", flat=True)) == {
        "first_name",
        "tier",
    }

    change = reverse("admin:campaigns_messagetemplate_change", args=[template.pk])
    page = client.get(change)
    assert page.status_code == 200
    assert "&quot;text_message&quot;" in page.content.decode()
    assert "parameters-0-source" in page.content.decode()


def test_a_malformed_placeholder_is_shown_on_its_field(client, marketer):
    client.force_login(marketer)
    response = client.post(ADD, _form(text="Hi ${first name}"))
    assert response.status_code == 200
    errors = response.context["adminform"].form.errors
    assert list(errors) == ["text"]
    assert "at character 11" in errors["text"][0]
    assert not MessageTemplate.objects.exists()


def test_parameter_sources_are_edited_in_the_inline(client, marketer):
    client.force_login(marketer)
    client.post(ADD, _form())
    template = MessageTemplate.objects.get()
    tier = template.parameters.get(name="tier")
    first = template.parameters.get(name="first_name")
    change = reverse("admin:campaigns_messagetemplate_change", args=[template.pk])
    data = _form(
        text="Hi ${first_name}, your tier is ${tier}",
        **{
            "parameters-TOTAL_FORMS": 2,
            "parameters-INITIAL_FORMS": 2,
            "parameters-0-id": first.pk,
            "parameters-0-template": template.pk,
            "parameters-0-source": "CONTACT_FIELD",
            "parameters-0-contact_field": "first_name",
            "parameters-0-attribute": "",
            "parameters-0-default": "friend",
            "parameters-1-id": tier.pk,
            "parameters-1-template": template.pk,
            "parameters-1-source": "ATTRIBUTE",
            "parameters-1-contact_field": "",
            "parameters-1-attribute": "loyalty_tier",
            "parameters-1-default": "",
        },
    )
    response = client.post(change, data)
    assert response.status_code == 302
    tier.refresh_from_db()
    first.refresh_from_db()
    assert (tier.attribute, first.default) == ("loyalty_tier", "friend")


@pytest.mark.parametrize("persona", ["viewer", "compliance_admin"])
def test_viewers_and_compliance_only_view_templates(client, request, persona):
    client.force_login(request.getfixturevalue(persona))
    assert client.get(CHANGELIST).status_code == 200
    assert client.get(ADD).status_code == 403
    assert client.post(ADD, _form()).status_code == 403
    assert not MessageTemplate.objects.exists()


def test_the_sinch_message_preview_is_escaped(client, marketer):
    client.force_login(marketer)
    client.post(ADD, _form(text="<script>alert(1)</script> ${tier}"))
    template = MessageTemplate.objects.get()
    change = reverse("admin:campaigns_messagetemplate_change", args=[template.pk])
    page = client.get(change).content.decode()
    assert "<script>alert(1)</script>" not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt; ${tier}" in page


def test_the_changelist_searches_by_name_and_filters_by_kind(
    client, viewer, make_template
):
    make_template("Spring sale", "a", kind="TEXT")
    make_template("Winter", kind="MEDIA", media_url="https://x")
    client.force_login(viewer)
    found = client.get(CHANGELIST, {"q": "spring"}).context["cl"].result_list
    assert [t.name for t in found] == ["Spring sale"]
    media = client.get(CHANGELIST, {"kind__exact": "MEDIA"}).context["cl"].result_list
    assert [t.name for t in media] == ["Winter"]


class _KindSelect(HTMLParser):
    """Finds the attributes of the kind <select> on an admin page."""

    def __init__(self, html: str):
        super().__init__()
        self.attrs: dict[str, str | None] = {}
        self.feed(html)

    def handle_starttag(self, tag, attrs):
        if tag == "select" and ("name", "kind") in attrs:
            self.attrs = dict(attrs)


@pytest.mark.parametrize("kind", list(MessageTemplate.Kind))
def test_the_page_carries_the_fields_of_each_kind(
    client, marketer, kind, make_template
):
    template = make_template(
        "T", "a", kind=kind, media_url="https://x", choices="y", title="t"
    )
    client.force_login(marketer)
    change = reverse("admin:campaigns_messagetemplate_change", args=[template.pk])
    for url in (ADD, change):
        html = client.get(url).content.decode()
        assert "campaigns/template_kind.js" in html
        kind_fields = json.loads(_KindSelect(html).attrs["data-kind-fields"])
        assert set(kind_fields) == set(MessageTemplate.Kind.values)
        # The model's text fields of the kind, plus the kind's other fields
        # and its rows; every kind but the channel template may be overridden
        # per channel.
        assert kind_fields[kind] == list(MessageTemplate.KIND_FIELDS[kind]) + (
            KIND_EXTRA.get(kind, ["overrides-group"])
        )
        # Without JavaScript every field is on the page.
        for name in ("text", "title", "media_url", "choices", "template_id"):
            assert f'name="{name}"' in html


def test_the_page_says_placeholders_work_in_any_text_field(client, marketer):
    client.force_login(marketer)
    html = client.get(ADD).content.decode()
    assert "work in any text field" in html
    form = client.get(ADD).context["adminform"].form
    for name in ("text", "title", "description", "media_url", "choices"):
        assert "${first_name} work here" in form.fields[name].help_text
