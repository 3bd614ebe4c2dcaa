"""A marketer writes a template with live help: counter, warnings, picker, preview.

The page's script applies the server's rules (campaigns.authoring.sms,
campaigns.placeholders, campaigns.compliance.footer) from the tables the
server exports; the last tests run both on tricky texts and compare.
"""

import pytest
from playwright.sync_api import expect

from campaigns.authoring.sms import analyse
from campaigns.compliance import footer
from campaigns.models import MessageTemplate
from campaigns.placeholders import foreign_syntax
from tests.browser.conftest import SCREENS

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

ADD = "/admin/campaigns/messagetemplate/add/"
SHOTS = SCREENS / "tpl-editor"

TRICKY_TEXTS = [
    "",
    "a" * 160,
    "a" * 161,
    "a" * 306,
    "a" * 307,
    "€" * 80,  # 160 septets: one segment
    "€" * 81,  # 162 septets
    "a" * 152 + "€" + "a" * 10,
    # 306 septets, 2 parts if ESC + € could straddle a part boundary: 3
    "a" * 152 + "€" + "a" * 152,
    "[" * 77 + "a" * 9,
    "It\u2019s time",  # curly apostrophe: UCS-2
    "Café crème à 5 €, ça va?",  # é, è, à are GSM-7; ç is not (only Ç)
    "Hi 😀",
    "😀" * 35,  # 70 UTF-16 units: one segment
    "😀" * 36,
    "a" * 66 + "😀" + "b" * 10,
    # 134 units, 2 parts if a surrogate pair could be split: 3
    "a" * 66 + "😀" + "b" * 66,
    "Ελλάδα ΔΦΓ",  # lower-case Greek is UCS-2, the capitals in GSM-7 are not
    "line\r\nbreak\f",
    "tab\there",
    "Straße ÄÖÜäöü ß",
    "~^|\\{}[]",
]

FOREIGN_TEXTS = [
    "Hi {{first_name}}, {{ last_name }}!",
    "Hi {first_name} and ${ok}",
    "50% off with %code% today, 20% more",
    "[first_name] wins [Sale now]",
    "Hi $first_name. It costs $5",
    "Hi ${ first_name } and ${tier }",
    "Hi ${{first_name}} 😀 {{x}}",
    "Only ${first_name} here",
    "Odd {{first.name}} {{a-b}} $x.",
]


def shoot(page, name: str) -> None:
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / f"{name}.png"))


def counter(page):
    return page.locator("#tpl-counter")


def test_typing_updates_the_counter_warnings_picker_and_preview(
    page, live_server, login, marketer, make_contact
):
    make_contact(attributes={"loyalty_tier": "gold"})
    page.set_viewport_size({"width": 1366, "height": 768})
    login("mark", next_url=ADD)

    # GSM-7: 160 characters fit one SMS, the 161st makes two.
    page.fill("#id_text", "a" * 159)
    page.locator("#id_text").press("End")
    page.locator("#id_text").press_sequentially("a")
    expect(counter(page)).to_contain_text("160 characters, 1 SMS segment (GSM-7)")
    page.locator("#id_text").press_sequentially("a")
    expect(counter(page)).to_contain_text("161 characters, 2 SMS segments (GSM-7)")
    expect(counter(page)).to_contain_text("153 per segment")

    # A curly apostrophe switches to UCS-2 and is named; é is fine.
    page.fill("#id_text", "Café: it\u2019s time")
    expect(counter(page)).to_contain_text("15 characters, 1 SMS segment (UCS-2)")
    expect(counter(page)).to_contain_text("UCS-2 because of: \u2019 (U+2019)")
    expect(counter(page)).to_contain_text("é is fine in GSM-7")
    shoot(page, "ucs2-1366x768")
    # An invisible culprit is named, not shown.
    page.fill("#id_text", "Café:\u00a0it's time")
    expect(counter(page)).to_contain_text("because of: no-break space (U+00A0)")
    page.fill("#id_text", "Café: it's time")
    expect(counter(page)).to_contain_text("(GSM-7)")
    expect(counter(page)).not_to_contain_text("UCS-2")

    # Another tool's syntax is named with the placeholder to write.
    page.fill("#id_text", "Hi {{first_name}}, see you")
    warning = page.locator(".field-text .tpl-syntax-warnings")
    expect(warning).to_contain_text("“{{first_name}}” is not a placeholder")
    expect(warning).to_contain_text("Write ${first_name}.")
    shoot(page, "syntax-warning-1366x768")
    page.fill("#id_text", "Hi ${first_name}, see you")
    expect(warning).to_have_count(0)

    # The picker inserts at the cursor; the preview shows sample values.
    page.fill("#id_text", "Hello ! Your tier: ")
    page.locator("#id_text").evaluate("t => t.setSelectionRange(6, 6)")
    picker = page.locator("#tpl-picker")
    picker.get_by_role("button", name="First name").click()
    expect(page.locator("#id_text")).to_have_value("Hello ${first_name}! Your tier: ")
    page.locator("#id_text").press("End")
    picker.get_by_role("button", name="loyalty_tier").click()
    expect(page.locator("#id_text")).to_have_value(
        "Hello ${first_name}! Your tier: ${loyalty_tier}"
    )
    bubble = page.locator("#tpl-bubble")
    expect(bubble).to_have_text("Hello First name! Your tier: Loyalty tier")
    expect(bubble.locator("mark.tpl-sample")).to_have_count(2)
    expect(counter(page)).to_contain_text("sample values for 2 placeholders")
    page.fill("#id_name", "Spring hello")
    shoot(page, "editor-1366x768")
    page.screenshot(path=str(SHOTS / "editor-1366-full.png"), full_page=True)

    # The preview sits beside the form at 1366 px, below it on a phone.
    help_box = page.locator("#tpl-help").bounding_box()
    text_box = page.locator("#id_text").bounding_box()
    assert help_box["x"] > text_box["x"] + text_box["width"]
    assert help_box["x"] + help_box["width"] <= 1366
    page.set_viewport_size({"width": 390, "height": 844})
    page.locator("#id_text").scroll_into_view_if_needed()
    shoot(page, "editor-390x844")
    page.locator("#tpl-help").scroll_into_view_if_needed()
    shoot(page, "editor-390x844-preview")
    page.screenshot(path=str(SHOTS / "editor-390-full.png"), full_page=True)
    help_box = page.locator("#tpl-help").bounding_box()
    text_box = page.locator("#id_text").bounding_box()
    assert help_box["y"] > text_box["y"] + text_box["height"]
    assert help_box["x"] + help_box["width"] <= 390
    assert page.evaluate("document.documentElement.scrollWidth") <= 390


def test_saving_warns_about_another_syntax_and_keeps_the_template(
    page, live_server, login, marketer
):
    page.set_viewport_size({"width": 1366, "height": 768})
    login("mark", next_url=ADD)
    page.fill("#id_name", "Curly")
    page.fill("#id_text", "Hi {{first_name}}, 20% off. Reply STOP to opt out")
    page.click("input[name=_continue]")
    messages = page.locator(".messagelist")
    expect(messages).to_contain_text("Text: “{{first_name}}” at character 4")
    expect(messages).to_contain_text("Write ${first_name}.")
    assert MessageTemplate.objects.get(name="Curly").text.startswith("Hi {{")
    # Still shown live on the saved template's page.
    expect(page.locator(".field-text .tpl-syntax-warnings")).to_contain_text(
        "${first_name}"
    )
    shoot(page, "saved-warning-1366x768")


def test_the_footer_a_marketing_sms_gets_is_counted(
    page, live_server, login, marketer, settings
):
    settings.COMPLIANCE_FOOTER_ORGANISATION = "Acme"
    settings.COMPLIANCE_FOOTER_OPT_OUT = "Reply STOP to opt out"
    settings.COMPLIANCE_FOOTER_BY_LANGUAGE = "de=Antworte STOP zum Abmelden"
    login("mark", next_url=ADD)
    page.fill("#id_text", "a" * 130)
    expect(counter(page)).to_contain_text("130 characters, 1 SMS segment")
    expect(counter(page)).to_contain_text(
        "the compliance footer “Acme: Reply STOP to opt out” is added: "
        "158 characters, 1 segment (GSM-7); up to 2 segments with the de footer."
    )
    expect(page.locator("#tpl-bubble-footer")).to_have_text(
        "Acme: Reply STOP to opt out (added on marketing SMS)"
    )
    page.fill("#id_text", "Sale! Reply stop to opt out.")
    expect(counter(page)).to_contain_text("ends with the compliance footer")
    expect(page.locator("#tpl-bubble-footer")).to_be_hidden()


def test_a_card_previews_its_title_text_and_buttons(page, live_server, login, marketer):
    page.set_viewport_size({"width": 1366, "height": 768})
    login("mark", next_url=ADD)
    page.select_option("#id_kind", "CARD")
    page.fill("#id_title", "Spring sale, ${first_name}")
    page.fill("#id_description", "20% off for ${tier} members")
    page.fill("#id_choices", "Shop now | https://shop.example\nNo thanks")
    bubble = page.locator("#tpl-bubble")
    expect(bubble.locator(".tpl-bubble-title")).to_have_text("Spring sale, First name")
    expect(bubble).to_contain_text("20% off for Tier members")
    expect(bubble.locator(".tpl-chip")).to_have_text(["Shop now", "No thanks"])
    # A card's SMS text is its title and description; no footer on a card.
    expect(counter(page)).to_contain_text("Counted: Title, Description")
    page.locator("#id_title").click()
    page.locator("#id_title").press("End")
    page.locator("#tpl-picker").get_by_role("button", name="Last name").click()
    expect(page.locator("#id_title")).to_have_value(
        "Spring sale, ${first_name}${last_name}"
    )
    shoot(page, "card-1366x768")


def test_a_viewer_sees_the_preview_and_count_of_a_saved_template(
    page, live_server, login, viewer, make_template
):
    template = make_template(text="Hi ${first_name}, it\u2019s ${tier} week")
    template.parameters.filter(name="tier").update(default="gold")
    url = f"/admin/campaigns/messagetemplate/{template.pk}/change/"
    page.set_viewport_size({"width": 1366, "height": 768})
    login("vera", next_url=url)
    expect(page.locator("#tpl-bubble")).to_have_text(
        "Hi First name, it\u2019s gold week"
    )
    expect(counter(page)).to_contain_text("UCS-2 because of: \u2019 (U+2019)")
    expect(page.locator("#tpl-picker")).to_have_count(0)  # nothing to write in
    shoot(page, "viewer-1366x768")


def test_the_page_counts_as_the_server_does(page, live_server, login, marketer):
    login("mark", next_url=ADD)
    in_page = page.evaluate(
        "texts => texts.map(t => window.templateWritingHelp.analyse(t))",
        TRICKY_TEXTS,
    )
    for text, js in zip(TRICKY_TEXTS, in_page, strict=True):
        py = analyse(text)
        assert (js["encoding"], js["units"], js["segments"], js["ucs2_chars"]) == (
            py.encoding,
            py.units,
            py.segments,
            list(py.ucs2_chars),
        ), text


def test_the_page_finds_other_syntaxes_as_the_server_does(
    page, live_server, login, marketer
):
    login("mark", next_url=ADD)
    in_page = page.evaluate(
        "texts => texts.map(t => window.templateWritingHelp.foreignSyntax(t))",
        FOREIGN_TEXTS,
    )
    for text, js in zip(FOREIGN_TEXTS, in_page, strict=True):
        py = [f._asdict() for f in foreign_syntax(text)]
        assert js == py, text
    assert sum(map(len, in_page)) >= 12  # the texts do hold foreign placeholders


def test_the_page_skips_the_footer_as_the_server_does(
    page, live_server, login, marketer, settings
):
    settings.COMPLIANCE_FOOTER_ORGANISATION = "Straße GmbH"
    settings.COMPLIANCE_FOOTER_OPT_OUT = "Reply STOP to opt out"
    texts = [
        "Hi",
        "Hi. Reply STOP to opt out",
        "Hi. reply  stop to\nopt out!",
        "Hi. STRASSE GMBH: Reply STOP to opt out.",
        "Hi. Reply STOP to opt out now",
    ]
    login("mark", next_url=ADD)
    in_page = page.evaluate(
        "texts => texts.map(t => window.templateWritingHelp.footerValues(t)[''])",
        texts,
    )
    conf = footer.footer_settings()
    line = conf.line(conf.opt_out)
    expected = [
        ""
        if footer.ends_with(t, line) or footer.ends_with(t, conf.opt_out)
        else "\n" + line
        for t in texts
    ]
    assert in_page == expected
    assert expected.count("") == 3
