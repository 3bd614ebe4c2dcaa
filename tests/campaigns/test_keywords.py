"""Keywords in replies (campaigns.tracking.keywords): STOP, START and HELP,
however they are typed, in several languages; START and HELP only when the
whole message is one, STOP also as a word in a sentence unless exact matching
is set."""

import pytest

from campaigns.tracking import keywords


@pytest.mark.parametrize(
    "text",
    [
        "STOP",
        "stop",
        " stop!",
        "Stop.",
        "  STOP  \n",
        "¡STOP!",
        "STOPALL",
        "stop all",
        "UNSUBSCRIBE",
        "Unsubscribe.",
        "CANCEL",
        "end",
        "Quit!",
        "REVOKE",
        "OPTOUT",
        "opt out",
        "OPT-OUT",
        "Opt Out!!",
        "opt_out",
        "Baja",  # es
        "PARAR",  # es
        "arrêt",  # fr, accent or not
        "ARRET",
        "Stopp",  # de
        "abmelden",  # de
    ],
)
def test_stop_words_are_recognised_however_typed(text):
    assert keywords.classify(text) == keywords.STOP


@pytest.mark.parametrize("text", ["START", "start.", "Unstop", "UN-STOP", "Alta"])
def test_start_words(text):
    assert keywords.classify(text) == keywords.START


@pytest.mark.parametrize("text", ["HELP", "help?", " Info ", "Ayuda", "AIDE", "Hilfe"])
def test_help_words(text):
    assert keywords.classify(text) == keywords.HELP


@pytest.mark.parametrize(
    "text",
    [
        "",
        "   ",
        "!!!",
        "please stop",
        "stop sending me these",
        "cancel my order",
        "The end",
        "stopped",
        "Do you have it in blue?",
        "start time?",
    ],
)
def test_with_exact_matching_other_messages_are_ordinary_replies(text, settings):
    # Issue 11 (7): this was the default; sentences containing a stop word now
    # opt out unless INBOUND_STOP_MATCH=exact.
    settings.INBOUND_STOP_MATCH = "exact"
    assert keywords.classify(text) == ""


@pytest.mark.parametrize(
    "text",
    [
        "",
        "!!!",
        "stopped",
        "Do you have it in blue?",
        "start time?",
        "endless summer",
        "I want to start now",
        "help me choose",
    ],
)
def test_replies_without_a_stop_word_as_a_word_are_ordinary(text):
    assert keywords.classify(text) == ""


def test_a_language_can_be_added_in_the_settings(settings):
    settings.INBOUND_KEYWORDS = {
        "it": {"stop": ["Annulla"], "start": ["INIZIA"], "help": ["AIUTO"]}
    }
    assert keywords.classify("annulla!") == keywords.STOP
    assert keywords.classify("Inizia") == keywords.START
    assert keywords.classify("aiuto") == keywords.HELP
    assert keywords.classify("STOP") == keywords.STOP  # English still applies
    assert keywords.classify("Baja") == keywords.STOP  # other defaults too


def test_a_language_in_the_settings_replaces_its_defaults(settings):
    settings.INBOUND_KEYWORDS = {"es": {"stop": ["BASTA"]}}
    assert keywords.classify("basta") == keywords.STOP
    assert keywords.classify("baja") == ""


def test_the_required_english_stop_words_cannot_be_configured_away(settings):
    settings.INBOUND_KEYWORDS = {"en": {"stop": [], "start": ["STOP"], "help": []}}
    for word in keywords.REQUIRED_STOP:
        assert keywords.classify(word) == keywords.STOP, word


def test_a_word_that_is_stop_in_one_language_and_start_in_another_stops(settings):
    settings.INBOUND_KEYWORDS = {"xx": {"start": ["ARRET"], "help": ["BAJA"]}}
    assert keywords.classify("arret") == keywords.STOP
    assert keywords.classify("baja") == keywords.STOP


def test_a_malformed_setting_is_refused_with_a_clear_message(settings):
    settings.INBOUND_KEYWORDS = ["STOP"]
    with pytest.raises(ValueError, match="INBOUND_KEYWORDS"):
        keywords.classify("hello")


def test_a_stop_word_inside_a_sentence_opts_out_by_default():
    for text in ("stop please", "STOP!!! no more", "I said: opt-out.", "quit it"):
        assert keywords.classify(text) == keywords.STOP, text


def test_start_and_help_inside_a_sentence_are_ordinary_replies():
    # Only stopping counts inside a sentence: "start time?" opts nobody in.
    assert keywords.classify("when does the sale start?") == ""
    assert keywords.classify("help me pick a size") == ""


def test_an_unknown_matching_mode_is_refused_with_a_clear_message(settings):
    settings.INBOUND_STOP_MATCH = "fuzzy"
    with pytest.raises(ValueError, match="INBOUND_STOP_MATCH"):
        keywords.classify("stop please")
