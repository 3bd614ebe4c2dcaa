"""Writing help in the template editor: other placeholder syntaxes, the rules
the page gets from the server, and what the placeholder picker offers.

The page's script itself is driven in
tests/browser/test_template_editor_in_browser.py.
"""

import json
import re
from html.parser import HTMLParser

import pytest
from django.contrib.messages import get_messages
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from campaigns.authoring import sms, writing_help
from campaigns.models import MessageTemplate, TemplateParameter
from campaigns.placeholders import (
    FOREIGN_SYNTAXES,
    PlaceholderError,
    extract,
    foreign_syntax,
    foreign_syntax_rules,
)

ADD = reverse("admin:campaigns_messagetemplate_add")


@pytest.mark.parametrize(
    ("text", "written", "syntax"),
    [
        ("Hi {{first_name}}!", "{{first_name}}", "{{name}}"),
        ("Hi {{ first_name }}!", "{{ first_name }}", "{{name}}"),
        ("Hi {first_name}!", "{first_name}", "{name}"),
        ("Hi %first_name%!", "%first_name%", "%name%"),
        ("Hi [first_name]!", "[first_name]", "[name]"),
        ("Hi $first_name!", "$first_name", "$name without braces"),
        ("Hi $first_name.", "$first_name", "$name without braces"),
        ("Hi ${ first_name }!", "${ first_name }", "${ name } with spaces"),
        ("Hi ${first_name }!", "${first_name }", "${ name } with spaces"),
    ],
)
def test_other_syntaxes_are_found_with_the_placeholder_to_write(text, written, syntax):
    [found] = foreign_syntax(text)
    assert (found.written, found.name, found.position) == (written, "first_name", 4)
    assert found.syntax == syntax
    assert found.suggestion == "${first_name}"
    assert found.message == (
        f"“{written}” at character 4 is not a placeholder Sinch fills: it "
        "would be sent as written. Write ${first_name}."
    )


@pytest.mark.parametrize(
    "text",
    [
        "Hi ${first_name}, only $5 today",
        "50% off, and 20% more!",
        "Costs 10$ or 5 $ {",
        "Write to a@b.example [or call] {now please}",
        "${a.b-c} ${x}",
        "",
    ],
)
def test_well_formed_placeholders_and_amounts_are_not_reported(text):
    assert foreign_syntax(text) == []


def test_each_syntax_is_reported_in_order_with_character_positions():
    found = foreign_syntax("😀 {{a}} {b} %c% [d] $e ${ f }")
    assert [(f.name, f.position) for f in found] == [
        ("a", 3),  # the emoji is one character, as in the server's errors
        ("b", 9),
        ("c", 13),
        ("d", 17),
        ("e", 21),
        ("f", 24),
    ]
    assert [f.syntax for f in found] == [
        "{{name}}",
        "{name}",
        "%name%",
        "[name]",
        "$name without braces",
        "${ name } with spaces",
    ]
    assert {f.syntax for f in found} == set(FOREIGN_SYNTAXES)


@pytest.mark.parametrize("text", ["Hi $first_name", "Hi ${ first_name }"])
def test_syntaxes_the_server_refuses_name_the_placeholder_to_write(text):
    with pytest.raises(PlaceholderError) as info:
        extract(text)
    assert 'write "${first_name}"' in str(info.value)


def test_the_exported_pattern_finds_what_the_server_finds():
    rules = foreign_syntax_rules()
    # Syntax JavaScript's RegExp reads the same way: no Python-only groups.
    assert "(?P" not in rules["pattern"]
    assert "(?i" not in rules["pattern"]
    pattern = re.compile(rules["pattern"])
    assert pattern.groups == len(rules["groups"])
    assert set(rules["groups"]) == set(range(len(FOREIGN_SYNTAXES)))
    text = "{{a}} {b} %c% [d] $e ${ f } ${g }"
    assert [m.group(0) for m in pattern.finditer(text)] == [
        f.written for f in foreign_syntax(text)
    ]


def test_the_exported_gsm_tables_and_limits_are_the_servers():
    exported = writing_help.sms_rules()
    assert exported["gsm7_basic"] == sms.GSM7_BASIC
    assert exported["gsm7_extension"] == sms.GSM7_EXTENSION
    assert (exported["gsm7_single"], exported["gsm7_part"]) == (160, 153)
    assert (exported["ucs2_single"], exported["ucs2_part"]) == (70, 67)
    # The GSM 03.38 default alphabet less ESC, and its extension table.
    assert len(set(exported["gsm7_basic"])) == 127
    assert len(set(exported["gsm7_extension"])) == 10
    for char in exported["gsm7_basic"]:
        assert sms.analyse(char)[:2] == ("GSM-7", 1), repr(char)
    for char in exported["gsm7_extension"]:
        assert sms.analyse(char)[:2] == ("GSM-7", 2), repr(char)
    assert sms.analyse("\u2019").ucs2_chars == ("\u2019",)


def test_the_footers_are_exported_by_language(settings):
    settings.COMPLIANCE_FOOTER_ORGANISATION = "Acme"
    settings.COMPLIANCE_FOOTER_OPT_OUT = "Reply STOP to opt out"
    settings.COMPLIANCE_FOOTER_BY_LANGUAGE = "de=Antworte STOP zum Abmelden"
    assert writing_help.footer_rules() == {
        "enabled": True,
        "problem": "",
        "footers": {
            "": {
                "line": "Acme: Reply STOP to opt out",
                "opt_out": "Reply STOP to opt out",
            },
            "de": {
                "line": "Acme: Antworte STOP zum Abmelden",
                "opt_out": "Antworte STOP zum Abmelden",
            },
        },
    }
    settings.COMPLIANCE_FOOTER_OPT_OUT = ""
    off = writing_help.footer_rules()
    assert not off["enabled"]
    assert "COMPLIANCE_FOOTER_OPT_OUT is empty" in off["problem"]
    settings.COMPLIANCE_FOOTER_ORGANISATION = ""
    settings.COMPLIANCE_FOOTER_BY_LANGUAGE = ""
    assert writing_help.footer_rules() == {
        "enabled": False,
        "problem": "",
        "footers": {},
    }


def test_attribute_keys_come_from_the_newest_contacts_only(make_contact, make_template):
    make_contact(attributes={"old_key": "x"})
    make_contact(attributes={"tier": "gold", "Bad Key": 1, "_private": 2})
    make_contact(attributes={"city": "Berlin", "first_name": "Jo", "cm_footer": 1})
    make_template(text="Hi ${shoe_size}")  # maps the attribute shoe_size

    with CaptureQueriesContext(connection) as queries:
        keys = writing_help.attribute_keys(sample=2)

    # Not the oldest contact's key; no key that cannot be a placeholder, and
    # no contact field (the picker lists those once).
    assert keys == ["city", "shoe_size", "tier"]
    assert len(queries) == 2
    assert all("LIMIT" in q["sql"].upper() for q in queries)
    assert "old_key" in writing_help.attribute_keys()


def test_campaign_values_in_use_are_offered(make_campaign, make_template):
    make_campaign(campaign_values={"offer": "20% off", "bad name": "x"})
    make_template(text="Code ${code}", parameters={"code": {"source": "CAMPAIGN"}})
    assert writing_help.campaign_value_names() == ["code", "offer"]


def test_saving_a_template_with_another_syntax_warns_and_keeps_it(client, marketer):
    client.force_login(marketer)
    response = client.post(ADD, _form(text="Hi {{first_name}}, [tier] today"))
    assert response.status_code == 302
    template = MessageTemplate.objects.get(name="Welcome")
    assert template.text == "Hi {{first_name}}, [tier] today"
    warnings = [str(m) for m in get_messages(response.wsgi_request)]
    assert (
        "Text: “{{first_name}}” at character 4 is not a placeholder Sinch "
        "fills: it would be sent as written. Write ${first_name}." in warnings
    )
    assert any("“[tier]” at character 20" in w and "${tier}" in w for w in warnings)


def test_a_card_title_with_another_syntax_is_named_on_save(make_template):
    template = make_template(kind="CARD", title="Hello %first_name%")
    assert template.foreign_placeholders() == [
        "Title: “%first_name%” at character 7 is not a placeholder Sinch "
        "fills: it would be sent as written. Write ${first_name}."
    ]
    assert make_template(text="Hi ${first_name}").foreign_placeholders() == []


def test_saving_dollar_name_is_refused_naming_the_placeholder_to_write(
    client, marketer
):
    client.force_login(marketer)
    response = client.post(ADD, _form(text="Hi ${ first_name }"))
    assert response.status_code == 200
    errors = response.context["adminform"].form.errors
    assert 'write "${first_name}"' in errors["text"][0]
    assert not MessageTemplate.objects.exists()


class _JsonScript(HTMLParser):
    def __init__(self, element_id):
        super().__init__()
        self.element_id, self.inside, self.data = element_id, False, ""

    def handle_starttag(self, tag, attrs):
        self.inside = tag == "script" and ("id", self.element_id) in attrs

    def handle_data(self, data):
        if self.inside:
            self.data += data


def test_the_editor_page_carries_the_rules_picker_and_samples(
    client, marketer, make_contact, make_template
):
    make_contact(attributes={"loyalty_tier": "gold"})
    template = make_template(text="Hi ${first_name}, ${tier}")
    template.parameters.filter(name="tier").update(default="Silver")
    client.force_login(marketer)
    page = client.get(
        reverse("admin:campaigns_messagetemplate_change", args=[template.pk])
    )
    html = page.content.decode()
    parser = _JsonScript("template-writing-help")
    parser.feed(html)
    config = json.loads(parser.data)
    assert config["sms"] == writing_help.sms_rules()
    assert config["foreign"] == foreign_syntax_rules()
    assert config["samples"]["tier"] == "Silver"
    assert config["samples"]["first_name"] == "First name"
    groups = {g["title"]: [n["name"] for n in g["names"]] for g in config["picker"]}
    assert groups["Contact fields"] == list(TemplateParameter.ContactField.values)
    assert "loyalty_tier" in groups["Attributes seen in the contacts"]
    assert 'data-name="loyalty_tier"' in html
    assert "campaigns/template_rules.js" in html
    assert "campaigns/template_writing.js" in html


def _form(**fields):
    data = {
        "name": "Welcome",
        "kind": "TEXT",
        "text": "Hi ${first_name}",
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
