"""A searchable IANA time-zone picker: a text input with a datalist of every
zone zoneinfo knows (the browser filters it as you type), validated on the
server with a clear error and the closest names as suggestions."""

from django import forms
from django.utils.html import format_html, format_html_join

from config.lib.timezones import suggestions, validate_time_zone, zone_names

__all__ = ["TimeZoneField", "suggestions", "validate_zone_name", "zone_names"]


def validate_zone_name(name: str) -> None:
    """ValidationError unless `name` is a zone (config.lib.timezones' rule)."""
    validate_time_zone(name)


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
