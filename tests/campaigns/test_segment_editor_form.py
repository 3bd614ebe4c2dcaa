"""The segment editor's form, read both ways (campaigns/admin/segment_form.py):
what a marketer's inputs post becomes the definition JSON the engine reads,
and a stored definition draws the same inputs again."""

from django.http import QueryDict

from campaigns.admin import segment_form as sf

FIELDS = sf.prepare_fields(
    [
        {
            "field": "first_name",
            "label": "First name",
            "kind": "text",
            "ops": [{"value": "equals", "label": "is"}, "in", "contains", "is_empty"],
        },
        {
            "field": "country",
            "label": "Country",
            "kind": "choice",
            "ops": ["equals", "in"],
            "choices": [["FR", "France"], ["DE", "Germany"]],
        },
        {
            "field": "created_at",
            "label": "Added on",
            "kind": "date",
            "ops": ["before", "within_days"],
            "op_labels": {"before": "is before", "within_days": "is within the last"},
        },
        {
            "field": "attribute",
            "label": "Attribute",
            "kind": "text",
            "needs_key": True,
            "ops": ["equals", "gt", "after", "in"],
        },
        {
            "field": "list",
            "label": "List",
            "kind": "list",
            "ops": ["in", "not_in"],
            "choices": [[1, "Customers"], [2, "Leads"]],
        },
        {
            "field": "consent",
            "label": "Consent",
            "kind": "consent",
            "ops": ["is"],
            "channels": [["SMS", "SMS"]],
            "purposes": [["MARKETING", "marketing"]],
            "choices": [["OPTED_IN", "opted in"]],
        },
        {
            "field": "engagement",
            "label": "Engagement",
            "kind": "campaign",
            "ops": ["replied"],
            "choices": [[7, "Spring sale"]],
        },
        {
            "field": "last_messaged",
            "label": "Last messaged",
            "kind": "days",
            "ops": ["not_in_days"],
        },
    ]
)


def posted(text: str) -> QueryDict:
    return QueryDict(text)


def test_two_groups_of_conditions_post_as_the_definition_the_engine_reads():
    data = posted(
        "match=any"
        "&g-0-match=all"
        "&g-0-c-0-field=first_name&g-0-c-0-op=in&g-0-c-0-value=Anna,%20Ben%20,,Cleo"
        "&g-0-c-3-field=attribute&g-0-c-3-op=gt&g-0-c-3-key=%20points&g-0-c-3-value=10.5"
        "&g-4-match=any"
        "&g-4-c-1-field=list&g-4-c-1-op=in&g-4-c-1-value=1&g-4-c-1-value=2"
        "&g-4-c-2-field=consent&g-4-c-2-op=is&g-4-c-2-channel=SMS"
        "&g-4-c-2-purpose=MARKETING&g-4-c-2-value=OPTED_IN"
        "&g-4-c-5-field=engagement&g-4-c-5-op=replied&g-4-c-5-campaign=7"
        "&g-4-c-6-field=last_messaged&g-4-c-6-op=not_in_days&g-4-c-6-value=30"
        "&csrfmiddlewaretoken=x&name=Spring"
    )

    assert sf.definition_from_post(data, FIELDS) == {
        "match": "any",
        "groups": [
            {
                "match": "all",
                "conditions": [
                    {
                        "field": "first_name",
                        "op": "in",
                        "value": ["Anna", "Ben", "Cleo"],
                    },
                    {"field": "attribute", "op": "gt", "value": 10.5, "key": "points"},
                ],
            },
            {
                "match": "any",
                "conditions": [
                    {"field": "list", "op": "in", "value": [1, 2]},
                    {
                        "field": "consent",
                        "op": "is",
                        "value": "OPTED_IN",
                        "channel": "SMS",
                        "purpose": "MARKETING",
                    },
                    {
                        "field": "engagement",
                        "op": "replied",
                        "value": None,
                        "campaign": 7,
                    },
                    {"field": "last_messaged", "op": "not_in_days", "value": 30},
                ],
            },
        ],
    }


def test_groups_and_conditions_keep_the_order_of_their_numbers_not_of_the_post():
    data = posted(
        "g-10-c-0-field=first_name&g-10-c-0-op=equals&g-10-c-0-value=B"
        "&g-2-c-9-field=first_name&g-2-c-9-op=equals&g-2-c-9-value=A2"
        "&g-2-c-1-field=first_name&g-2-c-1-op=equals&g-2-c-1-value=A1"
    )

    groups = sf.definition_from_post(data, FIELDS)["groups"]

    assert [[c["value"] for c in g["conditions"]] for g in groups] == [
        ["A1", "A2"],
        ["B"],
    ]


def test_a_value_that_is_not_a_number_is_kept_as_typed_for_validate_to_name():
    data = posted(
        "g-0-c-0-field=attribute&g-0-c-0-op=gt&g-0-c-0-key=points&g-0-c-0-value=ten"
        "&g-0-c-1-field=created_at&g-0-c-1-op=within_days&g-0-c-1-value="
    )

    conditions = sf.definition_from_post(data, FIELDS)["groups"][0]["conditions"]

    assert conditions[0]["value"] == "ten"
    assert conditions[1]["value"] is None
    view = sf.editor_view(sf.definition_from_post(data, FIELDS), FIELDS)
    shown = view["groups"][0]["conditions"][0]
    assert (shown["value_text"], shown["value_is_number"]) == ("ten", False)


def test_a_stored_definition_draws_the_inputs_that_post_it_again():
    definition = {
        "match": "all",
        "groups": [
            {
                "match": "any",
                "conditions": [
                    {"field": "country", "op": "in", "value": ["FR", "DE"]},
                    {"field": "created_at", "op": "before", "value": "2026-01-31"},
                    {
                        "field": "attribute",
                        "op": "after",
                        "key": "renewal",
                        "value": "2026-02-01",
                    },
                    {"field": "first_name", "op": "is_empty", "value": None},
                ],
            },
        ],
    }

    view = sf.editor_view(definition, FIELDS)
    inputs = [(c["prefix"], c["input"]) for c in view["groups"][0]["conditions"]]
    assert inputs == [
        ("g-0-c-0", "multi"),
        ("g-0-c-1", "date"),
        ("g-0-c-2", "date"),
        ("g-0-c-3", "none"),
    ]
    country = view["groups"][0]["conditions"][0]
    assert country["selected"] == {"FR", "DE"}
    # What those inputs post reads back as the same definition.
    data = QueryDict(mutable=True)
    data.update({"match": "all", "g-0-match": "any"})
    for c in view["groups"][0]["conditions"]:
        data[f"{c['prefix']}-field"] = c["field"]["field"]
        data[f"{c['prefix']}-op"] = c["op"]
        if c["field"].get("needs_key"):
            data[f"{c['prefix']}-key"] = c["extras"]["key"]
        if c["input"] == "multi":
            data.setlist(f"{c['prefix']}-value", sorted(c["selected"], reverse=True))
        elif c["input"] != "none":
            data[f"{c['prefix']}-value"] = c["value_text"]
    assert sf.definition_from_post(data, FIELDS) == definition


def test_each_operator_gets_the_input_that_fits_it():
    by = {f["field"]: f for f in FIELDS}
    assert by["first_name"]["inputs"] == {
        "equals": "text",
        "in": "tags",
        "contains": "text",
        "is_empty": "none",
    }
    assert by["attribute"]["inputs"] == {
        "equals": "text",
        "gt": "number",
        "after": "date",
        "in": "tags",
    }
    assert by["country"]["inputs"] == {"equals": "select", "in": "multi"}
    assert by["created_at"]["inputs"] == {"before": "date", "within_days": "number"}
    assert by["consent"]["inputs"] == {"is": "select"}
    assert by["engagement"]["inputs"] == {"replied": "none"}
    assert by["list"]["op_choices"] == [
        ["in", "is in any of"],
        ["not_in", "is in none of"],
    ]
    assert by["first_name"]["op_choices"][0] == ["equals", "is"]
    # The catalogue's own words win; a number of days says "days" after it.
    assert by["created_at"]["op_choices"][1] == ["within_days", "is within the last"]
    assert by["created_at"]["units"] == {"within_days": "days"}


def test_add_and_remove_buttons_work_without_javascript():
    definition = sf.blank_definition(FIELDS)

    sf.apply_action(definition, "add-group", FIELDS)
    sf.apply_action(definition, "add-condition:1", FIELDS)
    assert [len(g["conditions"]) for g in definition["groups"]] == [1, 2]
    sf.apply_action(definition, "remove-condition:1:0", FIELDS)
    sf.apply_action(definition, "remove-group:0", FIELDS)
    sf.apply_action(definition, "remove-group:9", FIELDS)  # gone already: nothing
    assert [len(g["conditions"]) for g in definition["groups"]] == [1]
    assert definition["groups"][0]["conditions"][0] == {
        "field": "first_name",
        "op": "equals",
        "value": None,
    }


def test_a_definition_of_the_wrong_shape_shows_as_one_blank_group():
    for broken in (None, [], {"groups": "x"}, "text"):
        view = sf.editor_view(broken, FIELDS)
        assert len(view["groups"]) == 1
        assert view["groups"][0]["conditions"][0]["field"]["field"] == "first_name"
