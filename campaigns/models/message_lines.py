"""The one-per-line texts marketers type for choices and contact details.

Choices, one per line (a line without "|" is a reply button, as before):

    Yes                                   a reply; "Yes" comes back
    Yes | postback: yes-2027              a reply; "yes-2027" comes back
    Visit the shop | https://shop.example/spring
    Visit the shop | url: ${shop_link}    a link held by a placeholder
    Call us | tel:+493012345678
    Save the date | calendar: 2027-01-10 18:00-20:00 Launch party | https://shop.example/launch

A calendar entry is a day, a start and an end time (or an end day and time:
"2027-01-10 18:00-2027-01-11 02:00") in the server's time zone, then the
event's title; the last part is the page opened where a channel cannot add
calendar entries (Sinch requires it). Any line may end with "| postback: ...".

Contact details, one per line: "+493012345678 | WORK", "info@shop.example".
Errors name the line ("Line 3: ...") and say what was expected.
"""

import re
from datetime import datetime

from django.core.exceptions import ValidationError
from django.utils import timezone

from sinch import wire
from sinch.messages import CalendarEvent, Choice, ContactEmail, ContactPhone

CHOICES_HELP = (
    "One per line: a reply (Yes), a reply with data (Yes | postback: yes), "
    "a link (Visit the shop | https://shop.example), a call "
    "(Call us | tel:+493012345678) or a calendar entry (Save the date | "
    "calendar: 2027-01-10 18:00-20:00 Launch party | https://shop.example/launch)."
)
E164 = re.compile(r"^\+[1-9][0-9]{6,14}$")
EMAIL = re.compile(r"^[^@\s|]+@[^@\s|]+\.[^@\s|]+$")
_DAY_TIME = r"(\d{4}-\d{2}-\d{2}) (\d{1,2}:\d{2})"
CALENDAR = re.compile(
    rf"^{_DAY_TIME}\s*-\s*(?:(\d{{4}}-\d{{2}}-\d{{2}}) )?(\d{{1,2}}:\d{{2}})\s*(.*)$"
)


def lines(text: str) -> list[tuple[int, str]]:
    """(line number, stripped line) of every line that is not blank."""
    return [
        (number, line.strip())
        for number, line in enumerate(text.splitlines(), 1)
        if line.strip()
    ]


def has_placeholder(value: str) -> bool:
    return "${" in value


def parse_choices(text: str, limit: int = wire.MAX_CHOICES) -> list[Choice]:
    """The choices of `text`; ValidationError with one message per bad line."""
    choices, errors = [], []
    found = lines(text)
    for number, line in found:
        try:
            choices.append(_choice(line))
        except ValueError as exc:
            errors.append(f"Line {number}: {exc}")
    if len(found) > limit:
        errors.append(f"At most {limit} choices ({len(found)} given).")
    if errors:
        raise ValidationError(errors)
    return choices


def _choice(line: str) -> Choice:
    parts = [part.strip() for part in line.split("|")]
    title, rest = parts[0], parts[1:]
    if not title:
        raise ValueError(f"“{line}” has no label before the “|”.")
    postback = ""
    if rest and rest[-1].lower().startswith("postback:"):
        postback = rest.pop()[len("postback:") :].strip()
        if not postback:
            raise ValueError("“postback:” needs the data to send back.")
    if not rest:
        return Choice(title, postback_data=postback)
    action, extra = rest[0], rest[1:]
    lower = action.lower()
    if lower.startswith("calendar:"):
        if len(extra) != 1 or not _is_url(extra[0]):
            raise ValueError(
                "a calendar entry ends with the page opened where calendars "
                "are not supported, e.g. “| https://shop.example/launch”."
            )
        event = _calendar(action[len("calendar:") :].strip(), title, extra[0])
        return Choice(title, calendar=event, postback_data=postback)
    if extra:
        raise ValueError(
            f"too many “|” parts; write “{title} | <link, tel: or calendar:>"
            " | postback: <data>”."
        )
    if lower.startswith("tel:"):
        number = re.sub(r"[\s()./-]", "", action[4:])
        if not has_placeholder(number) and not E164.match(number):
            raise ValueError(
                f"“{action}” is not a phone number in international form, "
                "e.g. tel:+493012345678."
            )
        return Choice(title, phone_number=number, postback_data=postback)
    if lower.startswith("url:"):
        action = action[4:].strip()
    if _is_url(action) or (lower.startswith("url:") and has_placeholder(action)):
        return Choice(title, url=action, postback_data=postback)
    raise ValueError(
        f"“{action}” is not a link (https://...), a call (tel:+...), "
        "a calendar entry (calendar: ...) or postback data (postback: ...)."
    )


def _is_url(value: str) -> bool:
    return bool(re.match(r"^https?://\S+$", value))


def _calendar(spec: str, label: str, fallback_url: str) -> CalendarEvent:
    match = CALENDAR.match(spec)
    if not match:
        raise ValueError(
            f"“{spec}” is not “YYYY-MM-DD HH:MM-HH:MM title”, "
            "e.g. calendar: 2027-01-10 18:00-20:00 Launch party."
        )
    day, start_time, end_day, end_time, title = match.groups()
    zone = timezone.get_default_timezone()
    try:
        start = datetime.fromisoformat(f"{day} {start_time:0>5}")
        end = datetime.fromisoformat(f"{end_day or day} {end_time:0>5}")
    except ValueError:
        raise ValueError(f"“{spec}” holds a day or time that does not exist.") from None
    if end <= start:
        raise ValueError("the calendar entry ends before it starts.")
    return CalendarEvent(
        start=start.replace(tzinfo=zone),
        end=end.replace(tzinfo=zone),
        title=title.strip() or label,
        fallback_url=fallback_url,
    )


def parse_phones(text: str) -> list[ContactPhone]:
    """ "+493012345678 | WORK" lines; ValidationError naming each bad line."""
    phones, errors = [], []
    for number, line in lines(text):
        value, kind = _value_and_type(line)
        digits = re.sub(r"[\s()./-]", "", value)
        if not has_placeholder(digits) and not E164.match(digits):
            errors.append(
                f"Line {number}: “{value}” is not a phone number in "
                "international form, e.g. +493012345678 | WORK."
            )
        phones.append(ContactPhone(digits, kind))
    if errors:
        raise ValidationError(errors)
    return phones


def parse_emails(text: str) -> list[ContactEmail]:
    emails, errors = [], []
    for number, line in lines(text):
        value, kind = _value_and_type(line)
        if not has_placeholder(value) and not EMAIL.match(value):
            errors.append(
                f"Line {number}: “{value}” is not an email address, "
                "e.g. info@shop.example | WORK."
            )
        emails.append(ContactEmail(value, kind))
    if errors:
        raise ValidationError(errors)
    return emails


def _value_and_type(line: str) -> tuple[str, str]:
    value, _, kind = line.partition("|")
    return value.strip(), kind.strip().upper()
