"""Keywords in inbound messages: STOP (opt out), START (opt in), HELP.

A reply opts out when it contains a stop word as a word ("stop please",
"STOP!!! no more", "I said Unsubscribe", "opt-out"): case, accents,
punctuation and the spaces or hyphens inside a keyword do not matter, but a
stop word must stand as a word ("stopped", "endless" are not STOP). An
unwanted opt-out is a nuisance, a missed one is a breach. With
settings.INBOUND_STOP_MATCH = "exact", only a reply that is a stop word as a
whole opts out (as carriers and Sinch's consent management match them), and
a reply containing one is flagged for review instead. START and HELP are
always matched on the whole message: "start time?" opts nobody in.

A reply that matches no rule but reads like an opt-out ("remove me", "no more
texts", "don't text me") is flagged for review (`needs_review`), so a person
decides and can record the opt-out with the reply as evidence.

The lists are per language code in settings.INBOUND_KEYWORDS, e.g.
    {"it": {"stop": ["ANNULLA"], "start": ["INIZIA"], "help": ["AIUTO"]}}
A language given there replaces that language's defaults below; other
languages keep theirs. Every language's words are matched, whatever the
contact's language (people answer in the language they like). The English
stop words of REQUIRED_STOP are always matched, whatever the settings say. A
word that is a stop word in one language and a start or help word in another
is read as STOP: an unwanted opt-out is a nuisance, a missed one is a breach.
"""

import json
import re
import unicodedata
from functools import lru_cache

from django.conf import settings

STOP, START, HELP = "STOP", "START", "HELP"
KINDS = {"stop": STOP, "start": START, "help": HELP}

REQUIRED_STOP = (
    "STOP",
    "STOPALL",
    "UNSUBSCRIBE",
    "CANCEL",
    "END",
    "QUIT",
    "REVOKE",
    "OPTOUT",
    "OPT OUT",
)

DEFAULT_KEYWORDS: dict[str, dict[str, list[str]]] = {
    "en": {
        "stop": [*REQUIRED_STOP, "STOP ALL", "UNSUB"],
        "start": ["START", "UNSTOP", "SUBSCRIBE", "OPT IN"],
        "help": ["HELP", "INFO"],
    },
    "es": {
        "stop": ["BAJA", "PARAR", "CANCELAR", "DETENER"],
        "start": ["ALTA", "COMENZAR"],
        "help": ["AYUDA"],
    },
    "fr": {
        "stop": ["ARRET", "ARRÊT", "DESABONNER", "DÉSABONNER", "DESINSCRIRE"],
        "start": ["DEMARRER", "DÉMARRER"],
        "help": ["AIDE"],
    },
    "de": {
        "stop": ["STOPP", "ABMELDEN", "ENDE", "ABBESTELLEN"],
        "start": ["ANMELDEN"],
        "help": ["HILFE"],
    },
}

_NOT_ALNUM = re.compile(r"[\W_]+", re.UNICODE)
MATCH_MODES = ("word", "exact")
MAX_WORDS_TEXT = 2000  # characters of a reply looked at for words

# Wordings that read like an opt-out without a stop word; matched on the
# reply's words (see `_words`: lower case, no accents, apostrophes split
# "don't" into "don t"). A match only flags the reply for a person.
REVIEW_PATTERNS = tuple(
    re.compile(pattern)
    for pattern in (
        r" (remove|delete|erase) (me|us|my (number|details|data|info)) ",
        r" take (me|us|my number) off ",
        r" opt (me|us) out ",
        r" no more ",
        r" (don t|dont|do not|never|stop) (ever )?"
        r"(text|txt|texting|message|messaging|msg|sms|contact|send|sending|"
        r"email|call|write|bother|spam)",
        r" leave me alone ",
        r" not interested ",
        r" wrong (number|person) ",
        r" spam ",
        r" (unsub|unsubscrib|stopp|stopped|stopping|cancell?ed)",
        r" (fuck|f\*+|piss) off ",
    )
)


def normalise(text: str) -> str:
    """The text reduced to what keyword matching looks at: letters and digits,
    case-folded, without accents, spaces or punctuation."""
    decomposed = unicodedata.normalize("NFKD", text or "")
    bare = "".join(ch for ch in decomposed if not unicodedata.combining(ch))
    return _NOT_ALNUM.sub("", bare.casefold())


def classify(text: str) -> str:
    """STOP, START, HELP, or "" for an ordinary reply (see the module doc)."""
    word = normalise(text)
    if not word:
        return ""
    table = _table(json.dumps(_configured(), sort_keys=True))
    if len(word) <= 40 and word in table:
        return table[word]
    if match_mode() == "word" and contains_stop_word(text):
        return STOP
    return ""


def classify_answer(answers) -> str:
    """STOP when the title or postback data of a quick-reply or button answer
    is (or, in "word" mode, contains) a stop word; "" otherwise. A button
    never opts anyone in: its wording is ours, not the person's."""
    return STOP if any(classify(a) == STOP for a in answers) else ""


def needs_review(text: str) -> bool:
    """Whether a reply that matched no keyword reads like an opt-out."""
    if contains_stop_word(text):  # exact mode: "please stop" is not STOP
        return True
    words = _words(text)
    return any(pattern.search(words) for pattern in REVIEW_PATTERNS)


def contains_stop_word(text: str) -> bool:
    """Whether a stop word (or phrase: "opt out") stands as a word in `text`."""
    words = _words(text)
    if words == " ":
        return False
    phrases = _stop_phrases(json.dumps(_configured(), sort_keys=True))
    return any(phrase in words for phrase in phrases)


def match_mode() -> str:
    mode = str(getattr(settings, "INBOUND_STOP_MATCH", "word") or "word").lower()
    if mode not in MATCH_MODES:
        raise ValueError(f"INBOUND_STOP_MATCH must be one of {', '.join(MATCH_MODES)}")
    return mode


def _words(text: str) -> str:
    """The reply's words, space-separated and padded: " stop please "."""
    decomposed = unicodedata.normalize("NFKD", (text or "")[:MAX_WORDS_TEXT])
    bare = "".join(ch for ch in decomposed if not unicodedata.combining(ch))
    words = [w for w in _NOT_ALNUM.split(bare.casefold()) if w]
    return " " + " ".join(words) + " "


def keyword_lists() -> dict[str, dict[str, list[str]]]:
    """The effective lists per language (defaults merged with the settings)."""
    lists = {lang: dict(kinds) for lang, kinds in DEFAULT_KEYWORDS.items()}
    for lang, kinds in _configured().items():
        lists[lang] = {kind: list(kinds.get(kind, [])) for kind in KINDS}
    lists.setdefault("en", {}).setdefault("stop", [])
    return lists


def _configured() -> dict[str, dict[str, list[str]]]:
    value = getattr(settings, "INBOUND_KEYWORDS", None) or {}
    if not isinstance(value, dict):
        raise ValueError('INBOUND_KEYWORDS must be {"<language>": {"stop": [...]}}')
    clean: dict[str, dict[str, list[str]]] = {}
    for lang, kinds in value.items():
        if not isinstance(kinds, dict):
            raise ValueError(f"INBOUND_KEYWORDS[{lang!r}] must be an object")
        clean[str(lang)] = {
            kind: [str(w) for w in kinds.get(kind) or []] for kind in KINDS
        }
    return clean


@lru_cache(maxsize=8)
def _table(_configured_json: str) -> dict[str, str]:
    """normalised word -> STOP/START/HELP; stop wins over the others."""
    table: dict[str, str] = {}
    lists = keyword_lists()
    for kind in ("help", "start", "stop"):  # later kinds overwrite earlier ones
        for kinds in lists.values():
            for word in kinds.get(kind, []):
                if normalise(word):
                    table[normalise(word)] = KINDS[kind]
    for word in REQUIRED_STOP:
        table[normalise(word)] = STOP
    return table


@lru_cache(maxsize=8)
def _stop_phrases(_configured_json: str) -> tuple[str, ...]:
    """Every stop word as padded words (" opt out ") and run together
    (" optout "), for `contains_stop_word`."""
    table = _table(_configured_json)
    phrases = {f" {word} " for word, kind in table.items() if kind == STOP}
    for kinds in keyword_lists().values():
        phrases.update(_words(word) for word in kinds.get("stop", []))
    phrases.update(_words(word) for word in REQUIRED_STOP)
    phrases.discard(" ")
    return tuple(sorted(phrases))
