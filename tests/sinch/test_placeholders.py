"""${param} substitution, as Sinch applies it to every string of a message."""

from sinch.placeholders import missing_parameters, placeholders, render


def test_every_string_field_is_substituted_and_keys_are_not():
    message = {
        "card_message": {
            "title": "Hi ${first_name}",
            "description": "Code ${code}",
            "choices": [{"url_message": {"title": "Go", "url": "https://x/${code}"}}],
            "height": "MEDIUM",
        }
    }
    rendered = render(message, {"first_name": "Jane", "code": "4711"})
    assert rendered["card_message"]["title"] == "Hi Jane"
    assert rendered["card_message"]["description"] == "Code 4711"
    assert rendered["card_message"]["choices"][0]["url_message"]["url"] == (
        "https://x/4711"
    )
    assert message["card_message"]["title"] == "Hi ${first_name}"  # untouched


def test_parameter_values_are_never_expanded_again():
    text = render("Hello ${a}", {"a": "${b}", "b": "oops"})
    assert text == "Hello ${b}"


def test_a_missing_parameter_is_left_as_written():
    assert render("Hi ${first_name}, ${code}", {"first_name": "Jo"}) == (
        "Hi Jo, ${code}"
    )


def test_placeholders_and_missing_parameters_are_listed():
    message = {"text_message": {"text": "Hi ${first_name} ${first_name} ${last.name}"}}
    assert placeholders(message) == {"first_name", "last.name"}
    assert missing_parameters(message, {"first_name": "x"}) == {"last.name"}


def test_non_placeholders_are_left_alone():
    assert render("Price: $5 ${} ${ spaced } $name", {"name": "x"}) == (
        "Price: $5 ${} ${ spaced } $name"
    )
    assert render({"n": 3, "flag": True}, {}) == {"n": 3, "flag": True}
