"""Keywords in inbound messages: STOP (opt out), START (opt in), HELP.

A message is a keyword only when the whole message is one, as carriers and
Sinch's consent management match them: case, accents, surrounding spaces and
punctuation, and the spaces or hyphens inside a keyword do not matter
(" stop!", "Stop.", "opt out", "OPT-OUT" and "optout" are all STOP), but
"please stop texting me" or "cancel my order" are ordinary replies, kept for
a person to read.

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


def normalise(text: str) -> str:
    """The text reduced to what keyword matching looks at: letters and digits,
    case-folded, without accents, spaces or punctuation."""
    decomposed = unicodedata.normalize("NFKD", text or "")
    bare = "".join(ch for ch in decomposed if not unicodedata.combining(ch))
    return _NOT_ALNUM.sub("", bare.casefold())


def classify(text: str) -> str:
    """STOP, START, HELP, or "" for an ordinary reply."""
    word = normalise(text)
    if not word or len(word) > 40:
        return ""
    table = _table(json.dumps(_configured(), sort_keys=True))
    return table.get(word, "")


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
