"""A searchable IANA time-zone picker: a text input with a datalist of every
zone zoneinfo knows (the browser filters it as you type), validated on the
server with a clear error and the closest names as suggestions."""

import difflib
from functools import cache
from zoneinfo import available_timezones

from django import forms
from django.core.exceptions import ValidationError
from django.utils.html import format_html, format_html_join


@cache
def zone_names() -> tuple[str, ...]:
    return tuple(sorted(available_timezones()))


@cache
def _by_lower() -> dict[str, str]:
    return {name.lower(): name for name in zone_names()}


def suggestions(text: str, n: int = 3) -> list[str]:
    """Known zones close to `text` (any case; "berlin" finds Europe/Berlin)."""
    lowered = text.strip().lower().replace(" ", "_")
    if lowered in _by_lower():
        return [_by_lower()[lowered]]
    city = [name for key, name in _by_lower().items() if key.endswith("/" + lowered)]
    close = difflib.get_close_matches(lowered, list(_by_lower()), n=n, cutoff=0.6)
    return list(dict.fromkeys(city + [_by_lower()[key] for key in close]))[:n]


def validate_zone_name(name: str) -> None:
    """ValidationError unless `name` is an IANA zone zoneinfo knows."""
    if not name or name in zone_names():
        return
    hint = suggestions(name)
    message = (
        f'"{name}" is not a known time zone; use an IANA name such as Europe/Berlin'
    )
    if hint:
        message += f". Did you mean {hint[0]}?"
        if hint[1:]:
            message += f" Also close: {', '.join(hint[1:])}."
    else:
        message += " or America/New_York (type a city to search the list)."
    raise ValidationError(message, code="unknown_time_zone")


class TimeZoneInput(forms.TextInput):
    """<input list=...> with its <datalist> of every zone."""

    class Media:
        css = {"all": ("campaigns/key_values.css",)}

    def render(self, name, value, attrs=None, renderer=None):
        attrs = dict(attrs or {})
        list_id = f"{attrs.get('id') or 'id_' + name}_zones"
        attrs.update(
            {
                "list": list_id,
                "autocomplete": "off",
                "spellcheck": "false",
                "class": "tz-picker",
                "placeholder": "Type a city or region, e.g. Berlin",
            }
        )
        options = format_html_join(
            "", '<option value="{}">', ((zone,) for zone in zone_names())
        )
        return format_html(
            '{}<datalist id="{}">{}</datalist>',
            super().render(name, value, attrs, renderer),
            list_id,
            options,
        )


class TimeZoneField(forms.CharField):
    widget = TimeZoneInput
    default_validators = [validate_zone_name]

    def __init__(self, **kwargs):
        kwargs.setdefault("required", False)
        kwargs.setdefault("max_length", 64)
        super().__init__(**kwargs)
