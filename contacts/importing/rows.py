"""Validating one CSV record into the values to import, or a reason it is bad."""

import re
from dataclasses import dataclass, field
from datetime import datetime

from config.lib.timezones import zone_names
from contacts.importing.local_forms import (
    OPT_IN_WORDS,
    OPT_OUT_WORDS,
    DateError,
    parse_when,
    word_key,
)
from contacts.importing.mapping import ATTRIBUTE, IGNORE, attribute_key
from contacts.models import ConsentEvent
from contacts.phones import InvalidIdentity, normalise_identity
from sinch.channels import Channel

_CHANNELS = {c.value for c in Channel}
_LANGUAGE = re.compile(r"[A-Za-z]{2,3}([-_][A-Za-z0-9]{2,8})*")
_TIME_ZONES = frozenset(zone_names())
_CONSENT_WORDS = {
    **dict.fromkeys(OPT_IN_WORDS, ConsentEvent.Kind.OPT_IN),
    **dict.fromkeys(OPT_OUT_WORDS, ConsentEvent.Kind.OPT_OUT),
}
# The common spellings as they come, so most rows need no normalising.
_FAST_WORDS = {
    variant: kind
    for word, kind in {
        **_CONSENT_WORDS,
        "opt-in": ConsentEvent.Kind.OPT_IN,
        "opt-out": ConsentEvent.Kind.OPT_OUT,
    }.items()
    for variant in (word, word.upper(), word.capitalize())
}
_SCIENTIFIC = re.compile(r"\d(?:[.,]\d+)?[eE]\+?\d+")
_FLOAT_DIGITS = re.compile(r"\+?\d+\.0+")
_LIMITS = {"first_name": 150, "last_name": 150, "external_id": 100}
_FIELDS = ("first_name", "last_name", "language", "time_zone")


class RowError(ValueError):
    """The record cannot be imported; the message is shown to the user."""


@dataclass(slots=True)
class ParsedRow:
    line: int
    channel: str
    identity: str
    external_id: str = ""
    fields: dict[str, str] = field(default_factory=dict)
    attributes: dict[str, str] = field(default_factory=dict)
    consent: str | None = None  # ConsentEvent.Kind or None
    consent_at: datetime | None = None


class RowParser:
    """Compiled mapping: turns raw values into a ParsedRow or raises RowError.

    parse() runs once per CSV record (a million times for a big file), so the
    column positions are resolved here, once.
    """

    def __init__(
        self,
        headers: list[str],
        mapping: dict[str, str],
        *,
        default_channel: str,
        consent_from_column: bool,
        declared_opt_in: bool,
        default_region: str,
        date_order: str = "",
    ):
        self.width = len(headers)
        self.headers = headers
        self.index = {}
        self.attributes = []
        for i, header in enumerate(headers):
            target = mapping.get(header, IGNORE)
            if target == ATTRIBUTE:
                self.attributes.append((i, attribute_key(header)))
            elif target != IGNORE:
                self.index[target] = (i, header)
        self.default_channel = default_channel
        self.consent_from_column = consent_from_column
        self.declared_opt_in = declared_opt_in
        self.region = default_region
        self.date_order = date_order
        self._at = {name: spec[0] for name, spec in self.index.items()}
        self._fields = [(name, self._at[name]) for name in _FIELDS if name in self._at]

    def _get(self, values: list[str], name: str) -> str:
        spec = self.index.get(name)
        return values[spec[0]].strip() if spec else ""

    def parse(self, line: int, values: list[str]) -> ParsedRow:
        if len(values) != self.width:
            raise RowError(
                f"has {len(values)} columns, the header has {self.width} "
                "(a missing delimiter or an unclosed quote?)"
            )
        for i, value in enumerate(values):
            if "\x00" in value:
                raise RowError(_nul(self.headers[i], value))
        at = self._at
        i = at.get("channel")
        channel = (
            (values[i].strip() if i is not None else "") or self.default_channel
        ).upper()
        if channel not in _CHANNELS:
            raise RowError(
                f"unknown channel {channel!r} (expected one of "
                f"{', '.join(sorted(_CHANNELS))})"
            )
        i = at.get("identity")
        raw_identity = values[i].strip() if i is not None else ""
        if not raw_identity:
            header = self.index["identity"][1]
            raise RowError(f"missing required value: {header!r} is empty")
        if "." in raw_identity and _FLOAT_DIGITS.fullmatch(raw_identity):
            # A spreadsheet's float: "4915112345678.0" lost no digit.
            raw_identity = raw_identity.partition(".")[0]
        try:
            identity = normalise_identity(channel, raw_identity, self.region)
        except InvalidIdentity as exc:
            raise RowError(_invalid(channel, raw_identity, exc)) from None
        i = at.get("external_id")
        row = ParsedRow(
            line, channel, identity, values[i].strip() if i is not None else ""
        )
        fields = row.fields
        for name, i in self._fields:
            value = values[i].strip()
            if value:
                fields[name] = value
        self._check_fields(row)
        attributes = row.attributes
        for i, key in self.attributes:
            value = values[i].strip()
            if value:
                attributes[key] = value
        self._parse_consent(values, row)
        return row

    def _check_fields(self, row: ParsedRow) -> None:
        fields = row.fields
        for name, limit in _LIMITS.items():
            value = row.external_id if name == "external_id" else fields.get(name)
            if value and len(value) > limit:
                raise RowError(f"{name} is longer than {limit} characters")
        language = fields.get("language")
        if language and not _LANGUAGE.fullmatch(language):
            raise RowError(f"language {language!r} is not a code like en or pt-BR")
        tz = fields.get("time_zone")
        if tz and tz not in _TIME_ZONES:
            raise RowError(f"unknown time zone {tz!r} (use a name like Europe/Berlin)")

    def _parse_consent(self, values: list[str], row: ParsedRow) -> None:
        at = self._at
        if self.declared_opt_in:
            row.consent = ConsentEvent.Kind.OPT_IN
        elif self.consent_from_column:
            i = at.get("consent")
            raw = values[i].strip() if i is not None else ""
            kind = _FAST_WORDS.get(raw)
            if kind is None and raw:
                kind = _CONSENT_WORDS.get(word_key(raw))
            if kind is not None:
                row.consent = kind
            elif raw:
                raise RowError(
                    f"consent value {raw!r} not understood (use yes/no, y/n, "
                    "true/false, 1/0, opt-in/opt-out, oui/non, ja/nein, sí/no)"
                )
        i = at.get("consent_at")
        raw_at = values[i].strip() if i is not None else ""
        if raw_at:
            try:
                row.consent_at = parse_when(raw_at, self.date_order)
            except DateError as exc:
                raise RowError(str(exc)) from None


def _nul(header: str, value: str) -> str:
    shown = value.replace("\x00", "\\x00")
    return (
        f"column {header!r} contains a NUL byte (\\x00), in {shown[:60]!r}: the "
        "file is damaged or was saved in another encoding; this row is not "
        "imported (correct it and import it again)"
    )


def _invalid(channel: str, raw: str, error: Exception) -> str:
    if _SCIENTIFIC.fullmatch(raw):
        return (
            f"invalid {channel} identity {raw!r}: a spreadsheet showed this number "
            "in scientific notation and its digits are lost; format the column "
            "as text (or upload the .xlsx workbook itself)"
        )
    return f"invalid {channel} identity {raw!r}: {error}"
