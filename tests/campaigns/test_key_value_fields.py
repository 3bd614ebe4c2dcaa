"""No raw JSON for business data (issue 14, point 6): a contact's attributes
and a campaign's values are edited as key/value rows that keep each value's
type; a duplicate or empty key, or a number that is not one, is refused with
the row named and the rows come back as typed; time zones are picked from
zoneinfo's list and an unknown one is refused with a suggestion; read-only
pages show tables, and the JSON only under "Advanced"."""

import re
from html import unescape
from html.parser import HTMLParser

import pytest
from django.urls import reverse

from campaigns.models import Campaign, TemplateParameter
from config.lib import key_values
from config.lib.time_zone_field import validate_zone_name, zone_names

ATTRIBUTES = {
    "tier": "gold",
    "visits": 12,
    "ratio": 4.5,
    "vip": True,
    "newsletter": False,
    "code": "0042",  # a text of digits stays a text
    "tags": ["spring", "vip"],
}


class FormReader(HTMLParser):
    """The fields of the page's main form as a browser posts them: enabled
    inputs, checked boxes, selected options, textareas; no buttons."""

    def __init__(self):
        super().__init__()
        self.pairs: list[tuple[str, str]] = []
        self._select = self._textarea = None
        self._multi_selected: list[str] = []

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if "disabled" in a or (not a.get("name") and tag != "option"):
            return
        if tag == "input":
            kind = a.get("type", "text")
            if kind in ("submit", "button", "file", "image"):
                return
            if kind in ("checkbox", "radio") and "checked" not in a:
                return
            default = "on" if kind in ("checkbox", "radio") else ""
            self.pairs.append((a["name"], a.get("value", default)))
        elif tag == "select":
            self._select, self._multi_selected = a["name"], []
            self._first = None
        elif tag == "option" and self._select:
            value = a.get("value", "")
            self._first = value if self._first is None else self._first
            if "selected" in a:
                self._multi_selected.append(value)
        elif tag == "textarea":
            self._textarea = [a["name"], ""]

    def handle_data(self, data):
        if self._textarea:
            self._textarea[1] += data

    def handle_endtag(self, tag):
        if tag == "select" and self._select:
            chosen = self._multi_selected or (
                [self._first] if self._first is not None else []
            )
            self.pairs += [(self._select, value) for value in chosen]
            self._select = None
        elif tag == "textarea" and self._textarea:
            self.pairs.append((self._textarea[0], self._textarea[1].lstrip("\n")))
            self._textarea = None


def form_of(html: str) -> list[tuple[str, str]]:
    start = html.index("<form", html.index('id="content-main"'))
    reader = FormReader()
    reader.feed(html[start : html.index("</form>", start)])
    return reader.pairs


def post_data(pairs) -> dict[str, list[str]]:
    data: dict[str, list[str]] = {}
    for name, value in pairs:
        data.setdefault(name, []).append(value)
    return data


def rows(pairs, name) -> list[tuple[str, str, str]]:
    data = post_data(pairs)
    keys, values = data.get(f"{name}__key", []), data.get(f"{name}__value", [])
    types = data.get(f"{name}__type", ["text"] * len(keys))
    return list(zip(keys, types, values, strict=True))


def with_rows(pairs, name, new_rows):
    """The form with the key/value rows of `name` replaced by `new_rows`."""
    kept = [
        (n, v)
        for n, v in pairs
        if n not in (f"{name}__key", f"{name}__type", f"{name}__value")
    ]
    for key, kind, value in new_rows:
        kept += [(f"{name}__key", key), (f"{name}__value", value)]
        if kind is not None:
            kept.append((f"{name}__type", kind))
    return post_data(kept)


def change_url(obj) -> str:
    meta = obj._meta
    return reverse(f"admin:{meta.app_label}_{meta.model_name}_change", args=[obj.pk])


def errors_of(response) -> str:
    """The page's error lists, as text."""
    lists = re.findall(
        r'<ul class="errorlist[^"]*"[^>]*>.*?</ul>', _text(response), re.S
    )
    return unescape(" ".join(re.sub(r"<[^>]+>", " ", chunk) for chunk in lists))


def _text(response) -> str:
    return response.content.decode()


# --- a contact's attributes -----------------------------------------------------


@pytest.fixture
def ada(make_contact):
    return make_contact(first_name="Ada", attributes=dict(ATTRIBUTES))


def test_attributes_show_as_typed_rows_and_save_back_unchanged(
    client, compliance_admin, ada
):
    client.force_login(compliance_admin)
    page = client.get(change_url(ada))
    html = _text(page)
    pairs = form_of(html)

    shown = rows(pairs, "attributes")
    assert shown[-1] == ("", "text", "")  # a blank row to fill in
    # In the order the database keeps them (PostgreSQL's jsonb sorts keys).
    assert sorted(shown[:-1]) == [
        ("code", "text", "0042"),
        ("newsletter", "boolean", "false"),
        ("ratio", "number", "4.5"),
        ("tags", "json", '["spring", "vip"]'),
        ("tier", "text", "gold"),
        ("vip", "boolean", "true"),
        ("visits", "number", "12"),
    ]
    assert '<textarea name="attributes"' not in html  # no raw JSON editor
    assert "Advanced: the stored JSON" in html  # but it can be looked at

    response = client.post(change_url(ada), post_data(pairs))

    assert response.status_code == 302, errors_of(response)
    ada.refresh_from_db()
    assert ada.attributes == ATTRIBUTES
    assert type(ada.attributes["visits"]) is int
    assert type(ada.attributes["ratio"]) is float
    assert ada.attributes["vip"] is True


def test_rows_can_be_added_changed_retyped_and_removed(client, compliance_admin, ada):
    client.force_login(compliance_admin)
    pairs = form_of(_text(client.get(change_url(ada))))
    edited = [
        ("tier", "text", "platinum"),
        ("visits", "number", "13"),
        ("vip", "boolean", "no"),
        ("ratio", "text", "4.5"),  # now a text
        ("birthday", "text", "  1815-12-10 "),  # texts kept as typed
        ("", "text", ""),  # blank rows are ignored
    ]
    response = client.post(change_url(ada), with_rows(pairs, "attributes", edited))
    assert response.status_code == 302, errors_of(response)
    ada.refresh_from_db()
    assert ada.attributes == {
        "tier": "platinum",
        "visits": 13,
        "vip": False,
        "ratio": "4.5",
        "birthday": "  1815-12-10 ",
    }


@pytest.mark.parametrize(
    ("bad_rows", "message"),
    [
        (
            [("tier", "text", "gold"), ("tier", "text", "silver")],
            "Row 2 (tier): the key is already used on row 1; each key once.",
        ),
        (
            [("tier", "text", "gold"), ("", "text", "orphan value")],
            'Row 2: enter a key for the value "orphan value".',
        ),
        ([("visits", "number", "twelve")], 'Row 1 (visits): "twelve" is not a number'),
        ([("visits", "number", "nan")], 'Row 1 (visits): "nan" is not a number'),
        ([("vip", "boolean", "maybe")], 'a yes/no value is "true" or "false"'),
        ([("tags", "json", "[spring")], "Row 1 (tags): not valid JSON"),
    ],
)
def test_bad_rows_are_refused_with_the_row_named_and_nothing_is_lost(
    client, compliance_admin, ada, bad_rows, message
):
    client.force_login(compliance_admin)
    pairs = form_of(_text(client.get(change_url(ada))))
    posted = with_rows(pairs, "attributes", [*bad_rows, ("note", "text", "kept")])
    posted["first_name"] = ["Ada Augusta"]

    response = client.post(change_url(ada), posted)

    assert response.status_code == 200
    assert message in errors_of(response)
    # Every row comes back as typed, the other fields too; nothing is saved.
    again = form_of(_text(response))
    assert rows(again, "attributes") == [*bad_rows, ("note", "text", "kept")]
    assert post_data(again)["first_name"] == ["Ada Augusta"]
    ada.refresh_from_db()
    assert ada.attributes == ATTRIBUTES
    assert ada.first_name == "Ada"


def test_a_viewer_reads_the_attributes_as_a_table_not_json(client, viewer, ada):
    client.force_login(viewer)
    html = _text(client.get(change_url(ada)))
    assert '<table class="kv-table">' in html
    assert "<th>visits</th><td>12</td>" in html
    assert "<th>vip</th><td>true</td>" in html
    assert '{"tier"' not in html
    assert "&quot;tier&quot;" not in html


def test_a_script_posting_the_json_object_still_works(client, compliance_admin, ada):
    client.force_login(compliance_admin)
    pairs = [
        (n, v) for n, v in form_of(_text(client.get(change_url(ada)))) if "__" not in n
    ]
    pairs.append(("attributes", '{"tier": "bronze", "visits": 1}'))
    response = client.post(change_url(ada), post_data(pairs))
    assert response.status_code == 302, errors_of(response)
    ada.refresh_from_db()
    assert ada.attributes == {"tier": "bronze", "visits": 1}


# --- time zones ------------------------------------------------------------------


def test_the_time_zone_is_picked_from_the_iana_list(client, compliance_admin, ada):
    client.force_login(compliance_admin)
    html = _text(client.get(change_url(ada)))
    assert 'list="id_time_zone_zones"' in html
    datalist = re.search(r'<datalist id="id_time_zone_zones">(.*?)</datalist>', html)
    options = re.findall(r'<option value="([^"]+)">', datalist.group(1))
    assert options == list(zone_names())
    assert {"Europe/Berlin", "America/New_York", "Asia/Kolkata"} <= set(options)

    pairs = form_of(html)
    data = post_data(pairs)
    data["time_zone"] = ["Asia/Tokyo"]
    assert client.post(change_url(ada), data).status_code == 302
    ada.refresh_from_db()
    assert ada.time_zone == "Asia/Tokyo"


@pytest.mark.parametrize(
    ("typed", "hint"),
    [
        ("Europe/Berln", "Did you mean Europe/Berlin?"),
        ("berlin", "Did you mean Europe/Berlin?"),
        ("europe/paris", "Did you mean Europe/Paris?"),
        ("Mars/Olympus_Mons", "type a city to search the list"),
    ],
)
def test_an_unknown_time_zone_is_refused_with_a_suggestion(
    client, compliance_admin, ada, typed, hint
):
    client.force_login(compliance_admin)
    data = post_data(form_of(_text(client.get(change_url(ada)))))
    data["time_zone"] = [typed]
    response = client.post(change_url(ada), data)
    assert response.status_code == 200
    errors = errors_of(response)
    assert f'"{typed}" is not a known time zone' in errors
    assert hint in errors
    assert f'value="{typed}"' in _text(response)  # kept as typed
    ada.refresh_from_db()
    assert ada.time_zone == ""


def test_zone_names_are_validated_exactly():
    validate_zone_name("")
    validate_zone_name("UTC")
    validate_zone_name("America/Argentina/Buenos_Aires")
    for bad in ("europe/berlin", "Berlin", "Europe/Berlin ", "../etc/passwd"):
        with pytest.raises(Exception, match="not a known time zone"):
            validate_zone_name(bad)


# --- a campaign's values and fallback zone --------------------------------------


@pytest.fixture
def template(make_template):
    return make_template(
        "Spring sale",
        "Hi ${first_name}, ${offer} until ${until}",
        parameters={
            "offer": {"source": TemplateParameter.Source.CAMPAIGN},
            "until": {"source": TemplateParameter.Source.CAMPAIGN},
        },
    )


@pytest.fixture
def draft(make_campaign, make_list, template):
    return make_campaign(
        template,
        [make_list("Customers")],
        name="Spring",
        campaign_values={"offer": "20% off", "until": "Sunday"},
    )


def test_campaign_values_are_text_rows_and_save_back(client, marketer, draft):
    client.force_login(marketer)
    html = _text(client.get(change_url(draft)))
    pairs = form_of(html)
    assert rows(pairs, "campaign_values") == [
        ("offer", "text", "20% off"),
        ("until", "text", "Sunday"),
        ("", "text", ""),
    ]
    assert 'name="campaign_values__type"' not in html  # texts only: no type column
    # The template's campaign placeholders are offered as keys.
    keys = re.search(r'<datalist id="id_campaign_values_keys">(.*?)</datalist>', html)
    assert set(re.findall(r'value="([^"]+)"', keys.group(1))) == {"offer", "until"}
    assert 'list="id_campaign_values_keys"' in html
    assert 'list="id_fallback_time_zone_zones"' in html

    edited = with_rows(
        pairs, "campaign_values", [("offer", None, "30"), ("until", None, "Monday")]
    )
    edited["fallback_time_zone"] = ["America/Chicago"]
    response = client.post(change_url(draft), edited)

    assert response.status_code == 302, errors_of(response)
    draft.refresh_from_db()
    assert draft.campaign_values == {"offer": "30", "until": "Monday"}  # texts
    assert draft.fallback_time_zone == "America/Chicago"


@pytest.mark.parametrize(
    ("bad_rows", "field", "value", "message"),
    [
        (
            [("offer", None, "20%"), ("offer", None, "30%")],
            "fallback_time_zone",
            "",
            "Row 2 (offer): the key is already used on row 1",
        ),
        (
            [("", None, "20%"), ("until", None, "Sunday")],
            "fallback_time_zone",
            "",
            'Row 1: enter a key for the value "20%".',
        ),
        (
            [("offer", None, "20%"), ("until", None, "Sunday")],
            "fallback_time_zone",
            "Asia/Tokio",
            "Did you mean Asia/Tokyo?",
        ),
    ],
)
def test_a_bad_campaign_form_is_refused_and_keeps_what_was_typed(
    client, marketer, draft, bad_rows, field, value, message
):
    client.force_login(marketer)
    pairs = form_of(_text(client.get(change_url(draft))))
    posted = with_rows(pairs, "campaign_values", bad_rows)
    posted[field] = [value]
    response = client.post(change_url(draft), posted)
    assert response.status_code == 200
    assert message in errors_of(response)
    again = form_of(_text(response))
    assert [(k, v) for k, _, v in rows(again, "campaign_values")] == [
        (k, v) for k, _, v in bad_rows
    ]
    assert post_data(again)[field] == [value]
    draft.refresh_from_db()
    assert draft.campaign_values == {"offer": "20% off", "until": "Sunday"}
    assert draft.fallback_time_zone == ""


def test_a_missing_campaign_value_is_still_named(client, marketer, draft):
    client.force_login(marketer)
    pairs = form_of(_text(client.get(change_url(draft))))
    posted = with_rows(pairs, "campaign_values", [("offer", None, "20% off")])
    response = client.post(change_url(draft), posted)
    assert response.status_code == 200
    assert "No value for the campaign placeholder until" in errors_of(response)


def test_a_launched_campaign_shows_its_values_and_properties_as_tables(
    client, marketer, draft
):
    Campaign.objects.filter(pk=draft.pk).update(
        status=Campaign.Status.COMPLETED,
        channel_properties={"SMS_FLASH_MESSAGE": "true"},
        channel_priority_order=["SMS", "WHATSAPP"],
    )
    client.force_login(marketer)
    html = _text(client.get(change_url(draft)))
    assert "<th>offer</th><td>20% off</td>" in html
    assert "<th>SMS_FLASH_MESSAGE</th><td>true</td>" in html
    assert "SMS → WHATSAPP" in html
    for raw in ('{"offer"', "&quot;offer&quot;", '["SMS"', "[&quot;SMS"):
        assert raw not in html


def test_the_field_reads_rows_and_round_trips_every_type():
    field = key_values.KeyValueField()
    posted = key_values.PostedRows(
        [key_values.rows_of(ATTRIBUTES)[i] for i in range(len(ATTRIBUTES))]
    )
    assert field.clean(posted) == ATTRIBUTES
    assert field.clean(key_values.PostedRows([("n", "number", "-3e2")])) == {
        "n": -300.0
    }
    assert not field.has_changed(ATTRIBUTES, posted)
    assert field.has_changed(ATTRIBUTES, key_values.PostedRows([]))


def test_read_only_records_show_their_json_as_tables_or_words(
    client, superuser, draft, make_contact, make_list
):
    """A recipient's values, an approval's lists, an audit row's details."""
    from django.utils import timezone

    from campaigns.models import LaunchApproval, Recipient
    from contacts.models import AuditEvent

    person = make_contact(first_name="Ada")
    recipient = Recipient.objects.create(
        campaign=draft,
        contact=person,
        identity="+14155550100",
        status=Recipient.Status.EXCLUDED,
        parameters={"first_name": "Ada", "offer": "20% off"},
    )
    approval = LaunchApproval.objects.create(
        campaign=draft,
        requested_at=timezone.now(),
        fingerprint="f" * 64,
        audience=2,
        lists=[{"id": 1, "name": "Customers"}, {"id": 2, "name": "VIP"}],
    )
    audit = AuditEvent.objects.create(
        actor_label="carla",
        action=AuditEvent.Action.EXPORT,
        target_type="campaign",
        summary="Exported",
        details={"rows": 12, "lists": ["Customers"]},
    )
    client.force_login(superuser)
    pages = {
        recipient: ["<th>offer</th><td>20% off</td>", "<th>first_name</th><td>Ada"],
        approval: ["Customers, VIP"],
        audit: ["<th>rows</th><td>12</td>", '["Customers"]'],
    }
    for record, shown in pages.items():
        html = _text(client.get(change_url(record)))
        for words in shown:
            assert words.replace('"', "&quot;") in html, words
        for raw in ("{&quot;", "[{&quot;", '{"'):
            assert raw not in html, (record, raw)


def test_the_send_time_zone_is_picked_from_the_list_and_checked(
    client, marketer, draft
):
    client.force_login(marketer)
    pairs = form_of(_text(client.get(change_url(draft))))
    posted = post_data(pairs)
    posted.update(
        send_mode=["later"],
        send_at_local_0=["2031-05-04"],
        send_at_local_1=["10:00"],
        send_time_zone=["Europe/Berln"],
    )
    response = client.post(change_url(draft), posted)
    assert response.status_code == 200
    assert "Did you mean Europe/Berlin?" in errors_of(response)
    assert 'list="id_send_time_zone_zones"' in _text(response)
    posted["send_time_zone"] = ["Europe/Berlin"]
    response = client.post(change_url(draft), posted)
    assert response.status_code == 302, errors_of(response)
    draft.refresh_from_db()
    assert draft.send_time_zone == "Europe/Berlin"
    assert draft.send_at.isoformat() == "2031-05-04T08:00:00+00:00"
