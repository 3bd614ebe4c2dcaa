"""Finding and removing one person's data in text, JSON and CSV files.

A `Redactor` knows two kinds of secrets about a person:

- *identifiers* (a phone number in every written form, an e-mail address):
  specific enough to tell that a row, a cell or a JSON value is theirs;
- *details* (names, attribute values, message texts): too common to judge by
  ("Anna", "gold", "STOP"), so they are removed only from what an identifier
  or a relation already showed to be the person's.

Identifiers are replaced by `replacement` (the keyed hash, so a redacted
callback still says which suppressed identity it came from); details by
ERASED.
"""

import csv
import json
import logging
import os
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import phonenumbers
from phonenumbers import PhoneNumberFormat

ERASED = "[erased]"
# Shorter details ("Al", "1") would wipe unrelated characters.
MIN_DETAIL_LENGTH = 3
CSV_DELIMITERS = ",;\t|"


def phone_forms(e164: str) -> set[str]:
    """The ways a number is written: "+14155550101", "14155550101",
    "4155550101", "(415) 555-0101", "415-555-0101", "+1 415-555-0101"; for
    countries with a trunk prefix also "0151 23456789" and "015123456789"."""
    try:
        number = phonenumbers.parse(e164, None)
    except phonenumbers.NumberParseException:
        return {e164}
    national = phonenumbers.national_significant_number(number)
    forms = {e164, e164.lstrip("+"), national, mask_number(e164)}
    for style in (PhoneNumberFormat.NATIONAL, PhoneNumberFormat.INTERNATIONAL):
        written = phonenumbers.format_number(number, style)
        forms.add(written)
        forms.add(written.replace(" ", "-"))
        forms.add(re.sub(r"[()]", "", written).replace(" ", "-").strip("-"))
        forms.add(re.sub(r"\D", "", written))  # with a trunk prefix: 015123456789
    return {form for form in forms if form}


def _pattern(words: Iterable[str], *, digits: bool) -> re.Pattern | None:
    words = sorted({w for w in words if w}, key=len, reverse=True)
    if not words:
        return None
    body = "|".join(_flexible(w) if digits else re.escape(w) for w in words)
    # A number inside a longer number is another number.
    edge = (r"(?<!\d)", r"(?!\d)") if digits else ("", "")
    return re.compile(f"{edge[0]}(?:{body}){edge[1]}", re.IGNORECASE)


_SEPARATORS = r"[\s().\-/]*"


def _flexible(word: str) -> str:
    """A number's digits as people space them: "015123456789" also matches
    "0151 23456789" and "(0151) 234-567-89"."""
    if not re.fullmatch(r"\+?\d+", word):
        return re.escape(word)
    plus = r"\+" + _SEPARATORS if word.startswith("+") else ""
    return plus + _SEPARATORS.join(word.lstrip("+"))


@dataclass
class Redactor:
    identifiers: set[str] = field(default_factory=set)
    details: set[str] = field(default_factory=set)
    replacement: str = ERASED

    def add_details(self, values: Iterable[Any]) -> None:
        for value in values:
            text = str(value).strip() if value is not None else ""
            if len(text) >= MIN_DETAIL_LENGTH and not isinstance(value, bool):
                self.details.add(text)

    def _patterns(self) -> tuple[re.Pattern | None, re.Pattern | None]:
        # The sets only grow: their sizes tell whether the cache is current.
        key = (len(self.identifiers), len(self.details))
        if getattr(self, "_cache_key", None) != key:
            self._cache_key = key
            self._cache = (
                _pattern(self.identifiers, digits=True),
                _pattern(self.details, digits=False),
            )
        return self._cache

    def mentions(self, text: str) -> bool:
        """Whether `text` holds one of the person's identifiers."""
        found, _ = self._patterns()
        return bool(text and found and found.search(text))

    def redact(self, text: str) -> str:
        """`text` without identifiers and details (for a text known to be theirs)."""
        found, detail = self._patterns()
        if found:
            text = found.sub(self.replacement, text)
        if detail:
            text = detail.sub(ERASED, text)
        return text

    def scrub(self, text: str) -> str:
        """`text` redacted when it mentions the person, else unchanged."""
        return self.redact(text) if self.mentions(text) else text

    def scrub_json(self, value: Any, *, theirs: bool = False, contact_id=None) -> Any:
        """A copy of a JSON value with the person's parts redacted: strings
        that mention them, and every string of an object that is theirs (it
        mentions them, or its "contact_id" is `contact_id`)."""
        if isinstance(value, dict):
            own = theirs or (
                contact_id is not None
                and str(value.get("contact_id")) == str(contact_id)
            )
            own = own or (self.mentions(repr(value)) and _is_leaf_object(value))
            return {
                k: self.scrub_json(v, theirs=own, contact_id=contact_id)
                for k, v in value.items()
            }
        if isinstance(value, list):
            return [
                self.scrub_json(v, theirs=theirs, contact_id=contact_id) for v in value
            ]
        if isinstance(value, str):
            return self.redact(value) if theirs else self.scrub(value)
        return value


def redact_json_text(text: str, redactor: Redactor) -> str:
    """JSON text known to be the person's (a callback body) with every string
    in it redacted; text that is not JSON is replaced whole."""
    try:
        parsed = json.loads(text)
    except ValueError:
        return json.dumps({"redacted": ERASED})
    return json.dumps(redactor.scrub_json(parsed, theirs=True), ensure_ascii=False)


def _is_leaf_object(value: dict) -> bool:
    """An object of plain values (one row, one example): a mention anywhere
    in it makes all of it the person's; a bigger object is judged part by part."""
    return not any(isinstance(v, dict | list) for v in value.values())


def scrub_csv_file(path: Path, redactor: Redactor, contact_id=None) -> bool:
    """Drop the person's rows from a CSV file (a row that mentions them, or
    whose "contact_id" column is `contact_id`); True when the file changed.

    Written to a temporary file and swapped in, so a reader never sees half a
    file. Bytes that are not UTF-8 survive unchanged (surrogateescape).
    """
    with open(path, encoding="utf-8", errors="surrogateescape", newline="") as f:
        sample = f.read(64 * 1024)
        f.seek(0)
        try:
            dialect: Any = csv.Sniffer().sniff(sample, delimiters=CSV_DELIMITERS)
        except csv.Error:
            dialect = csv.excel
        rows = csv.reader(f, dialect)
        header = next(rows, None)
        if header is None:
            return False
        id_column = _column(header, "contact_id")
        kept, dropped = [header], 0
        for row in rows:
            own = id_column is not None and contact_id is not None
            own = own and len(row) > id_column and row[id_column] == str(contact_id)
            if own or redactor.mentions("\x1f".join(row)):
                dropped += 1
            else:
                kept.append(row)
    if not dropped:
        return False
    partial = path.with_name(path.name + ".erasure-part")
    with open(
        partial, "w", encoding="utf-8", errors="surrogateescape", newline=""
    ) as f:
        writer = csv.writer(f, delimiter=dialect.delimiter)
        writer.writerows(kept)
    os.replace(partial, path)
    return True


def _column(header: list[str], name: str) -> int | None:
    cleaned = [cell.lstrip("\ufeff").strip().lower() for cell in header]
    return cleaned.index(name) if name in cleaned else None


def scrub_files(root: Path, redactor: Redactor, contact_id=None) -> tuple[int, int]:
    """Walk every file under `root`: CSV files lose the person's rows, other
    files that mention them are deleted. Returns (rewritten, deleted)."""
    rewritten = deleted = 0
    if not root.is_dir():
        return 0, 0
    for path in sorted(p for p in root.rglob("*") if p.is_file()):
        if path.suffix.lower() == ".csv":
            rewritten += scrub_csv_file(path, redactor, contact_id)
            continue
        text = path.read_bytes().decode("utf-8", errors="replace")
        if redactor.mentions(text):
            path.unlink()
            deleted += 1
    return rewritten, deleted


def mask_number(identity: str) -> str:
    """An identity as audit rows and admin messages name it: enough to tell a
    contact's numbers apart, not to dial one (+14155550101 -> +1415•••0101).
    phone_forms includes it, so erasure removes it with the number."""
    if len(identity) <= 8:
        return identity[:2] + "•••"
    return f"{identity[:5]}•••{identity[-4:]}"


def mask_identity(value: str) -> str:
    """An identity fit for a log line: "+14155550101" -> "+1********01"."""
    if len(value) <= 6:
        return "*" * len(value)
    return value[:2] + "*" * (len(value) - 4) + value[-2:]


# 8 to 15 digits, with or without "+" (or "%2B", the "+" of a URL's query
# string: an admin search in an access log): an E.164 or international
# number, or a national one written without separators. Written with
# separators: after a "+" ("+1 415-555-0101", "+49 (151) 2345 6789"), or as a
# North American number ("(415) 555-0101", "415-555-0101", "415.555.0101"),
# or a national one with its trunk prefix ("0151 23456789", "020 7183 8750").
# Dates and times ("2026-12-03 07:00:00") have other shapes and stay.
_NUMBER_IN_LOG = re.compile(
    r"(?:(?<![\w.])\+?|(?<![\w.])%2[Bb])\d{8,15}(?!\w)"
    r"|(?<![\w.])\+\d[\d ().\-]{6,22}\d(?![\w-])"
    r"|(?<![\w.\-])\(?\d{3}\)?[ .\-]\d{3}[ .\-]\d{4}(?![\w-])"
    r"|(?<![\w.\-])\(?0\d{1,5}\)?[ \-]\d[\d \-]{4,14}\d(?![\w-])"
)


def _mask_match(match: re.Match) -> str:
    text = match.group()
    digits = sum(c.isdigit() for c in text)
    return mask_identity(text) if 8 <= digits <= 15 else text


class MaskNumbers(logging.Filter):
    """Masks phone-like numbers in every record (message and traceback) of
    the handler it is set on: logs are copied and kept where erasure cannot
    reach them, so a number that slips into a message is not written."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        masked = _NUMBER_IN_LOG.sub(_mask_match, message)
        if masked != message:
            record.msg, record.args = masked, ()
        if record.exc_info and not record.exc_text:
            text = logging.Formatter().formatException(record.exc_info)
            record.exc_text = _NUMBER_IN_LOG.sub(_mask_match, text)
        return True
