"""Forms of the campaign admin."""

from datetime import datetime

from django import forms
from django.contrib.admin import widgets
from django.core.exceptions import ValidationError
from django.db.models import Q
from django.utils import timezone

from campaigns import channel_properties as rules
from campaigns.admin import channel_property_fields as props
from campaigns.authoring import preview
from campaigns.models import Campaign, TemplateParameter
from config.lib import key_values, timezones
from config.lib.json_input import JsonInputError, parse_json
from config.lib.time_zone_field import TimeZoneField


class NaiveSplitDateTimeField(forms.SplitDateTimeField):
    """A date and a time as a naive wall-clock value: the zone is chosen apart."""

    def compress(self, data_list):
        if not data_list:
            return None
        day, time = data_list
        if day in self.empty_values:
            raise ValidationError(self.error_messages["invalid_date"], "invalid_date")
        if time in self.empty_values:
            raise ValidationError(self.error_messages["invalid_time"], "invalid_time")
        return datetime.combine(day, time)


class ChannelListField(forms.CharField):
    """A comma-separated list of channels, e.g. "WHATSAPP, SMS"."""

    def prepare_value(self, value):
        if isinstance(value, list):
            return ", ".join(str(item) for item in value)
        return value

    def to_python(self, value):
        text = super().to_python(value)
        return [part.strip().upper() for part in text.split(",") if part.strip()]


class ParameterLinesField(forms.CharField):
    """A channel template's parameters, one `key = value` per line (stored as
    the JSON object Sinch is sent). A JSON object pasted as is is read too."""

    widget = forms.Textarea(attrs={"rows": 5, "cols": 60, "spellcheck": "false"})

    def prepare_value(self, value):
        if isinstance(value, dict):
            return "\n".join(f"{key} = {text}" for key, text in value.items())
        return value

    def to_python(self, value):
        text = (super().to_python(value) or "").strip()
        if "\x00" in text:
            raise ValidationError(
                "Contains a NUL character (\\x00), which cannot be stored; remove it."
            )
        if text.startswith("{"):
            try:
                data = parse_json(text)
            except JsonInputError as exc:
                raise ValidationError(f"Not a JSON object: {exc}.") from None
            if not isinstance(data, dict):
                raise ValidationError("Write one key = value per line.")
            return data
        found: dict[str, str] = {}
        for number, line in enumerate(text.splitlines(), start=1):
            if not line.strip():
                continue
            key, sep, item = line.partition("=")
            key = key.strip()
            if not sep or not key:
                raise ValidationError(
                    f"Line {number} ({line.strip()!r}): write key = value, "
                    "e.g. body[1]text = ${first_name}."
                )
            if key in found:
                raise ValidationError(f"Line {number}: {key} is given twice.")
            found[key] = item.strip()
        return found

    def has_changed(self, initial, data):
        return self.to_python(data) != (initial or {})


# The typed channel-property fields, declared on a base class so that the
# admin's fieldsets may name them.
ChannelPropertyFields = type(
    "ChannelPropertyFields", (forms.Form,), props.declared_fields()
)


class CampaignForm(ChannelPropertyFields, forms.ModelForm):
    NOW, LATER = "now", "later"
    send_mode = forms.ChoiceField(
        label="Send",
        choices=[(NOW, "When launched"), (LATER, "At a date and time")],
        widget=forms.RadioSelect,
        initial=NOW,
    )
    send_at_local = NaiveSplitDateTimeField(
        label="Date and time",
        required=False,
        widget=widgets.AdminSplitDateTime,
        help_text="Wall-clock time in the time zone below.",
    )
    channel_priority_order = ChannelListField(
        required=False,
        help_text="Fallback order, comma-separated, starting with the channel "
        "above, e.g. WHATSAPP, SMS; empty: the channel only.",
    )
    send_time_zone = TimeZoneField(
        label="Time zone",
        help_text="The send time's time zone. Type a city or region to search "
        "the IANA names.",
    )
    fallback_time_zone = TimeZoneField(
        label="Recipients' fallback time zone",
        help_text=Campaign._meta.get_field("fallback_time_zone").help_text
        + " Type a city or region to search the IANA names.",
    )
    campaign_values = key_values.KeyValueField(
        types=(key_values.TEXT,),
        help_text="One row per campaign placeholder: its name (without ${ }) "
        "and the text to put in, e.g. offer = 20% off.",
    )

    class Meta:
        model = Campaign
        fields = (
            "name",
            "template",
            "purpose",
            "lists",
            "segments",
            "seed_list",
            "send_time_zone",
            "send_in_local_time",
            "fallback_time_zone",
            "multi_zone_rule",
            "quiet_hours_exempt",
            "channel",
            "channel_priority_order",
            "whatsapp_window_only",
            "ttl_seconds",
            "sms_sender",
            "campaign_values",
            "track_links",
            "utm_source",
            "utm_medium",
            "utm_campaign",
        )

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        instance = self.instance
        if instance.send_at is not None:
            self.initial.setdefault("send_mode", self.LATER)
            self.initial.setdefault("send_at_local", instance.local_send_time)
        if instance.template_id and "campaign_values" in self.fields:
            # The template's campaign placeholders, offered as keys.
            self.fields["campaign_values"].widget.key_suggestions = tuple(
                instance.template.parameters.filter(
                    source=TemplateParameter.Source.CAMPAIGN
                ).values_list("name", flat=True)
            )
        if "seed_list" in self.fields:
            # Test sends go to seed lists only (marked by Compliance or a Sender).
            field = self.fields["seed_list"]
            field.queryset = field.queryset.filter(
                Q(is_seed_list=True) | Q(pk=instance.seed_list_id or 0)
            )
            field.help_text = (
                "Receives test sends. Only lists marked as seed lists (by a "
                "Compliance user or a Sender) are offered."
            )
        values, self.unshown = props.stored_values(instance)
        for key, value in values.items():
            if key == rules.SMS_SENDER:  # an old campaign kept it in the JSON
                self.initial["sms_sender"] = value
            else:
                self.initial.setdefault(props.field_name(key), value)
        if self.unshown:
            self.fields[props.DROP_FIELD].widget = forms.CheckboxInput()
        # A form posted without the rule (older clients, scripts) keeps the
        # campaign's: unchanged, not an edit.
        if (
            self.is_bound
            and "multi_zone_rule" in self.fields
            and "multi_zone_rule" not in self.data
        ):
            self.data = self.data.copy()
            self.data["multi_zone_rule"] = (
                self.instance.multi_zone_rule or Campaign.MultiZoneRule.WEST
            )

    def clean(self):
        data = super().clean()
        self._clean_audience(data)
        self._clean_channel_properties(data)
        self._clean_send_time(data)
        return data

    def _clean_audience(self, data) -> None:
        """A campaign is sent to at least one list or segment."""
        if "lists" not in self.fields or "segments" not in self.fields:
            return
        lists, segments = data.get("lists"), data.get("segments")
        if self.errors.get("lists") or self.errors.get("segments"):
            return
        if not (lists and lists.exists()) and not (segments and segments.exists()):
            self.add_error(
                "lists", "Choose at least one list or segment for the audience."
            )

    def _clean_channel_properties(self, data) -> None:
        """Build `channel_properties` from the typed fields and put each
        problem on its field (campaigns.channel_properties)."""
        properties = rules.wire_properties(props.field_values(data))
        if self.unshown and not data.get(props.DROP_FIELD):
            properties.update(self.unshown)  # kept: the save is refused
            self.add_error(
                None,
                "Stored channel properties Sinch does not accept: "
                f"{', '.join(sorted(map(str, self.unshown)))}. Tick “Remove the stored "
                "properties above” to remove them.",
            )
        self.instance.channel_properties = properties
        if {"channel", "channel_priority_order"} & set(self.errors):
            return
        if data.get("sms_sender"):
            properties = {**properties, rules.SMS_SENDER: data["sms_sender"]}
        channels = rules.campaign_channels(
            data.get("channel"), data.get("channel_priority_order")
        )
        for key, message in rules.property_problems(properties, channels=channels):
            if key in self.unshown:
                continue
            if key == rules.SMS_SENDER:
                self.add_error("sms_sender", message)
            else:
                name = props.field_name(key or "")
                self.add_error(name if name in self.fields else None, message)

    def _update_errors(self, errors):
        """The model's clean() repeats the channel-property problems that
        `_clean_channel_properties` already put on their fields."""
        if hasattr(errors, "error_dict"):
            errors.error_dict.pop("channel_properties", None)
            shown = self.errors.get("sms_sender", [])
            sender = [
                e
                for e in errors.error_dict.pop("sms_sender", [])
                if e.message not in shown
            ]
            if sender:
                errors.error_dict["sms_sender"] = sender
            if not errors.error_dict:
                return
        super()._update_errors(errors)

    def _clean_send_time(self, data) -> None:
        self.instance.send_at = None
        if data.get("send_mode") != self.LATER:
            return
        local = data.get("send_at_local")
        zone = data.get("send_time_zone")
        if local is None and "send_at_local" not in self.errors:
            self.add_error("send_at_local", "Enter the date and time to send at.")
        if not zone and "send_time_zone" not in self.errors:
            self.add_error("send_time_zone", "Choose the time zone of the send time.")
        if local is None or not zone:
            return
        try:
            timezones.time_zone(zone)
        except ValidationError as exc:
            self.add_error("send_time_zone", exc)
            return
        try:
            self.instance.send_at = timezones.send_instant(
                local, zone, now=timezone.now()
            )
        except ValidationError as exc:
            self.add_error("send_at_local", exc)


class PreviewForm(forms.Form):
    q = forms.CharField(
        label="Contact",
        required=False,
        max_length=200,
        help_text="Phone number in any format, another identity, "
        "an external id or a contact id.",
    )
    n = forms.IntegerField(
        label="Sample size",
        required=False,
        min_value=1,
        max_value=preview.SAMPLE_MAX,
        initial=preview.SAMPLE_DEFAULT,
    )
