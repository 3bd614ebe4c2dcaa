"""The compliance footer of marketing SMS: "Acme Shoes: Reply STOP to opt out".

Settings (read when used, never at import; see .env.example):

- COMPLIANCE_FOOTER_ORGANISATION: the sender's name before the instruction
  (optional);
- COMPLIANCE_FOOTER_OPT_OUT: the instruction, "Reply STOP to opt out" by
  default; empty turns the footer off;
- COMPLIANCE_FOOTER_BY_LANGUAGE: the instruction per language,
  "de=Antworte STOP zum Abmelden;fr=Répondez STOP pour vous désabonner",
  chosen by the contact's BCP 47 `language` ("de-AT" falls back to "de",
  then to the default).

How it reaches Sinch: a batch carries one message for all its recipients, so
a footer that differs by language cannot be part of the message text. The
message's text ends with the reserved placeholder ${cm_footer}
(campaigns.placeholders.FOOTER_PARAMETER, which no template may use) and each
recipient's parameters hold their footer ("\\nAcme Shoes: Reply STOP to opt
out"), or "" where the template already ends with that very footer. The
footer texts are frozen with the message at launch (MessagePlan.snapshot):
changing the settings never changes a campaign in flight.

Where: marketing campaigns with SMS among their channels, text messages only
(Sinch converts the other kinds to SMS text in its own undocumented layout),
and not when the template gives SMS its own payload (sent as written). A
campaign whose SMS is a fallback gets the footer on every channel: the Batch
API documents a per-channel text override (explicit_channel_omni_message) for
WhatsApp, KakaoTalk and WeChat only, and SMS's explicit_channel_message
payload format is undocumented; an opt-out line where it is not needed costs
little, a marketing SMS without one breaks the rules.
"""

import re
from collections import Counter
from collections.abc import Iterable, Mapping
from typing import Any, NamedTuple

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured, ValidationError

from campaigns.authoring.sms import analyse, sms_strings
from campaigns.placeholders import FOOTER_PARAMETER
from sinch import wire

PLACEHOLDER = "${" + FOOTER_PARAMETER + "}"
SMS = "SMS"
MARKETING = "MARKETING"  # contacts.models.Purpose.MARKETING

# A BCP 47 tag as the settings may name it: a 2-3 letter language, then
# subtags of 1-8 letters or digits ("de", "pt-BR", "zh-Hant-TW").
_TAG = re.compile(r"^[a-z]{2,3}(?:-[a-z0-9]{1,8})*$")
# Opt-out wording a text may carry of its own (besides the configured texts).
_OPT_OUT_WORDS = re.compile(r"\b(?:stop|opt[\s-]?out|unsubscribe)\b", re.IGNORECASE)

NO_OPT_OUT_WARNING = (
    "This SMS has no opt-out wording and no compliance footer is configured "
    "(COMPLIANCE_FOOTER_OPT_OUT): marketing SMS must tell people how to opt out."
)


def normalise_tag(tag: str) -> str:
    """ "de_AT" and "DE-at" -> "de-at" (the form footers are looked up by)."""
    return tag.strip().replace("_", "-").lower()


class FooterSettings(NamedTuple):
    organisation: str
    opt_out: str  # "" turns the footer off
    by_language: dict[str, str]  # normalised tag -> opt-out text

    @property
    def enabled(self) -> bool:
        return bool(self.opt_out)

    def line(self, opt_out: str) -> str:
        """The footer as read: "Acme Shoes: Reply STOP to opt out"."""
        return f"{self.organisation}: {opt_out}" if self.organisation else opt_out

    def opt_out_texts(self) -> list[str]:
        return [t for t in (self.opt_out, *self.by_language.values()) if t]


def parse_by_language(raw: str) -> dict[str, str]:
    """COMPLIANCE_FOOTER_BY_LANGUAGE as {normalised tag: text}.

    Raises ImproperlyConfigured naming the entry that is wrong.
    """
    name = "COMPLIANCE_FOOTER_BY_LANGUAGE"
    texts: dict[str, str] = {}
    for entry in (raw or "").split(";"):
        if not entry.strip():
            continue
        tag, sep, text = entry.partition("=")
        tag, text = normalise_tag(tag), text.strip()
        if not sep or not tag:
            raise ImproperlyConfigured(
                f"{name}: “{entry.strip()}” is not language=text, e.g. "
                "de=Antworte STOP zum Abmelden;fr=Répondez STOP pour vous désabonner."
            )
        if not _TAG.match(tag):
            raise ImproperlyConfigured(
                f"{name}: “{tag}” is not a BCP 47 language tag such as de or pt-BR."
            )
        if not text:
            raise ImproperlyConfigured(f"{name}: the text for “{tag}” is empty.")
        if tag in texts:
            raise ImproperlyConfigured(f"{name}: “{tag}” is given twice.")
        texts[tag] = _one_line(name, text)
    return texts


def _one_line(name: str, text: str) -> str:
    if any(c in text for c in "\r\n") or not text.isprintable():
        raise ImproperlyConfigured(
            f"{name}: “{text!r}” must be one line of printable text."
        )
    if "${" in text:
        raise ImproperlyConfigured(
            f"{name}: “{text}” must not hold a ${{...}} placeholder: the footer "
            "is sent as written."
        )
    return text


def footer_settings() -> FooterSettings:
    """The footer settings, checked; ImproperlyConfigured says what is wrong."""
    organisation = settings.COMPLIANCE_FOOTER_ORGANISATION.strip()
    opt_out = settings.COMPLIANCE_FOOTER_OPT_OUT.strip()
    by_language = parse_by_language(settings.COMPLIANCE_FOOTER_BY_LANGUAGE)
    if organisation:
        _one_line("COMPLIANCE_FOOTER_ORGANISATION", organisation)
    if opt_out:
        _one_line("COMPLIANCE_FOOTER_OPT_OUT", opt_out)
    elif by_language or organisation:
        raise ImproperlyConfigured(
            "COMPLIANCE_FOOTER_OPT_OUT is empty, which turns the compliance "
            "footer off, yet COMPLIANCE_FOOTER_ORGANISATION or "
            "COMPLIANCE_FOOTER_BY_LANGUAGE is set: give the default opt-out "
            "text (e.g. Reply STOP to opt out), or clear them too."
        )
    return FooterSettings(organisation, opt_out, by_language)


class Footer:
    """A campaign's footer values: what ${cm_footer} holds per language.

    `default` is for contacts whose language has no text of its own; a
    value is "" where the template already ends with that footer. Built by
    `campaign_footer`, kept in the campaign's message snapshot (`to_json`).
    """

    __slots__ = ("_cache", "by_language", "default")

    def __init__(self, default: str, by_language: Mapping[str, str]) -> None:
        self.default = default
        self.by_language = dict(by_language)
        self._cache: dict[Any, str] = {}

    def value_for(self, language: str | None) -> str:
        """The footer value for a contact's `language` tag ("de-AT" -> the
        text for de-at, else de, else the default). Cached per raw tag: a
        million recipients cost a dict look-up each."""
        value = self._cache.get(language)
        if value is None:
            value = self._cache[language] = self.by_language.get(
                self.language_for(language), self.default
            )
        return value

    def language_for(self, language: str | None) -> str:
        """The configured tag `language` falls back to, or "" (the default)."""
        tag = normalise_tag(language or "")
        while tag:
            if tag in self.by_language:
                return tag
            tag = tag.rpartition("-")[0]
        return ""

    def describe(self, language: str | None) -> str:
        """Where a contact's footer comes from, in words (for the preview)."""
        tag = self.language_for(language)
        if tag:
            return f"compliance footer for language {tag} (contact: {language})"
        if language:
            return f"compliance footer, default (no text for language {language})"
        return "compliance footer, default (contact has no language)"

    def values(self) -> list[str]:
        return list(dict.fromkeys([self.default, *self.by_language.values()]))

    def to_json(self) -> dict[str, Any]:
        return {"default": self.default, "by_language": self.by_language}

    @classmethod
    def from_json(cls, data: Mapping[str, Any] | None) -> "Footer | None":
        if not data:
            return None
        return cls(data["default"], data.get("by_language") or {})

    def apply(self, message: Mapping[str, Any]) -> dict[str, Any]:
        """`message` with ${cm_footer} at the end of its text."""
        content = dict(message["text_message"])
        content["text"] = content.get("text", "") + PLACEHOLDER
        return {**message, "text_message": content}


def campaign_channels(campaign) -> list[str]:
    order = campaign.channel_priority_order
    return [campaign.channel, *(order if isinstance(order, list) else [])]


def sms_text(message: Mapping[str, Any]) -> str | None:
    """The text a footer is appended to, or None when the message is not a
    text message on SMS (another kind, or an SMS payload sent as written)."""
    if (message.get("explicit_channel_message") or {}).get(SMS):
        return None
    content = message.get("text_message")
    return content.get("text", "") if isinstance(content, dict) else None


def not_added_reason(campaign, message: Mapping[str, Any]) -> str:
    """Why the campaign gets no footer ("" when it gets one)."""
    if campaign.purpose != MARKETING:
        return "transactional campaigns get no compliance footer"
    if SMS not in campaign_channels(campaign):
        return "SMS is not one of the campaign's channels"
    if not footer_settings().enabled:
        return "the compliance footer is off (COMPLIANCE_FOOTER_OPT_OUT is empty)"
    if sms_text(message) is None:
        kind = next((k for k in message if k in wire.MESSAGE_KINDS), "message")
        if kind == "text_message":
            return "the template gives SMS its own payload, which is sent as written"
        kind = kind.removesuffix("_message").replace("_", " ")
        return f"only text messages get the compliance footer; this is a {kind}"
    return ""


def campaign_footer(campaign, message: Mapping[str, Any]) -> Footer | None:
    """The footer `campaign` appends to `message` (its template's message),
    or None (see `not_added_reason`)."""
    if not_added_reason(campaign, message):
        return None
    conf = footer_settings()
    text = sms_text(message) or ""

    def value(opt_out: str) -> str:
        line = conf.line(opt_out)
        return "" if ends_with(text, line) or ends_with(text, opt_out) else "\n" + line

    return Footer(
        value(conf.opt_out), {tag: value(t) for tag, t in conf.by_language.items()}
    )


def ends_with(text: str, footer: str) -> bool:
    """The text already ends with `footer` (case, spaces and a final full
    stop aside): the footer is not appended a second time."""

    def plain(value: str) -> str:
        return " ".join(value.split()).rstrip(".!").casefold()

    return plain(text).endswith(plain(footer))


def has_opt_out_wording(texts: Iterable[str], conf: FooterSettings) -> bool:
    """Whether the texts tell people how to opt out themselves: STOP, opt
    out, unsubscribe, or one of the configured opt-out texts."""
    joined = "\n".join(texts)
    if _OPT_OUT_WORDS.search(joined):
        return True
    folded = " ".join(joined.split()).casefold()
    return any(" ".join(t.split()).casefold() in folded for t in conf.opt_out_texts())


def template_warning(template) -> str:
    """The template editor's warning ("" for none): a text template whose SMS
    text has no opt-out wording while no footer would be appended."""
    if template.kind != "TEXT":
        return ""
    try:
        message = template.sinch_message()
    except (ValueError, ValidationError):  # incomplete: its errors show instead
        return ""
    conf = footer_settings()
    if conf.enabled and sms_text(message) is not None:
        return ""
    if has_opt_out_wording(sms_strings(message), conf):
        return ""
    return NO_OPT_OUT_WARNING


class FooterTally:
    """What the footer does to a pre-send check's SMS recipients: how many
    got each footer, and the segments it adds (counted in the cost)."""

    def __init__(self) -> None:
        self.by_value: Counter[str] = Counter()
        self.longer = 0  # recipients whose message the footer makes longer
        self.extra_segments = 0

    def add(self, value: str, text: str, segments: int) -> None:
        """Count one recipient: `text` is their rendered SMS ending with the
        footer `value`, sent as `segments` parts. A one-part message gains
        nothing, so only longer ones are analysed again without the footer."""
        self.by_value[value] += 1
        if value and segments > 1:
            fewer = analyse(text[: len(text) - len(value)]).segments
            if fewer < segments:
                self.longer += 1
                self.extra_segments += segments - fewer


def presend_summary(campaign, plan, tally: FooterTally | None) -> dict[str, str]:
    """The pre-send check's footer lines: {"note": ..., "warning": ...}, or
    {} when SMS is not one of the campaign's channels."""
    if SMS not in campaign_channels(campaign):
        return {}
    footer = plan.footer
    if footer is None:
        reason = not_added_reason(campaign, plan.message)
        warning = ""
        if campaign.purpose == MARKETING and not has_opt_out_wording(
            sms_strings(plan.message), footer_settings()
        ):
            warning = (
                "This marketing SMS has no opt-out wording and no compliance "
                f"footer ({reason}): marketing SMS must tell people how to opt out."
            )
        return {"note": f"No compliance footer: {reason}.", "warning": warning}
    if tally is None or not tally.by_value:  # nobody was rendered as SMS
        texts = ", ".join(f"“{v.strip()}”" for v in footer.values() if v)
        note = f"Footer added on SMS: {texts or 'none'} (by the contact's language)"
    else:
        note = _added(tally)
    if campaign.channel != SMS:
        note += (
            "; it shows on every channel of the campaign, as the Batch API "
            "has no SMS-only text"
        )
    return {"note": note + ".", "warning": ""}


def _added(tally: FooterTally) -> str:
    def people(n: int) -> str:
        return f"{n:,} recipient{'' if n == 1 else 's'}"

    added = [(v, n) for v, n in tally.by_value.most_common() if v]
    if not added:
        note = "Footer not added: the template already ends with it"
    else:
        texts = ", ".join(f"“{v.strip()}” ({people(n)})" for v, n in added)
        extra = tally.extra_segments
        if not extra:
            grows = "it adds no segment"
        elif extra == tally.longer:
            grows = f"+1 segment for {people(tally.longer)}"
        else:
            grows = f"+{extra:,} segments in all, for {people(tally.longer)}"
        note = f"Footer added: {texts}; {grows}"
    if tally.by_value[""] and added:
        note += (
            f"; not added for {people(tally.by_value[''])} whose template "
            "already ends with it"
        )
    return note


def frozen_note(campaign) -> str:
    """The footer a launched campaign's message was frozen with, in words
    ("" before the launch, or when it has none): for the dashboard."""
    frozen = Footer.from_json((campaign.message_snapshot or {}).get("footer"))
    if frozen is None:
        return ""
    texts = ", ".join(f"“{v.strip()}”" for v in frozen.values() if v)
    if not texts:
        return "Compliance footer: none added, the template already ends with it."
    return f"Compliance footer added on SMS: {texts} (by the contact's language)."
