"""Typed admin fields for the channel properties, one per registry entry.

The campaign form shows each Sinch channel property as a checkbox, number,
choice or text field, grouped per channel (`channel_fieldsets`); the rules
and the wire form live in campaigns.channel_properties.
"""

from django import forms
from django.utils.html import format_html, format_html_join

from campaigns import channel_properties as rules
from sinch import channel_properties as registry
from sinch.channels import Channel

# SMS_SENDER has its own model field, `sms_sender`.
TYPED = [key for key in registry.PROPERTIES if key != rules.SMS_SENDER]
DROP_FIELD = "drop_unknown_properties"


def field_name(key: str) -> str:
    return f"cp_{key.lower()}"


def _field(prop: registry.ChannelProperty) -> forms.Field:
    help_text = f"{prop.help} Sent as {prop.key}."
    common = {"required": False, "label": prop.label, "help_text": help_text}
    if prop.kind == registry.BOOLEAN:
        ticked = "true"
        if inverted(prop.key):  # ticked: the non-default "false"
            common["label"], ticked = prop.off_label, "false"
        common["help_text"] = f"{prop.help} Ticked: sent as {prop.key} = {ticked}."
        return forms.BooleanField(**common)
    if prop.kind == registry.INTEGER:
        return forms.IntegerField(
            min_value=prop.min_value, max_value=prop.max_value, **common
        )
    if prop.kind == registry.CHOICE:
        default = dict(prop.choices).get(prop.default or "", "")
        empty = f"Sinch's default ({default})" if default else "None"
        return forms.ChoiceField(choices=[("", empty), *prop.choices], **common)
    if prop.kind == registry.URL:
        return forms.URLField(
            max_length=prop.max_length, assume_scheme="https", **common
        )
    return forms.CharField(max_length=prop.max_length, **common)


def inverted(key: str) -> bool:
    """A checkbox always means "not Sinch's default", so an unticked box is
    never sent; for a property defaulting to "true" it means "false"."""
    return registry.PROPERTIES[key].default == "true"


def field_values(data: dict) -> dict:
    """Typed property values (by key) from a form's cleaned data."""
    values = {}
    for key in TYPED:
        name = field_name(key)
        if name in data:
            value = data[name]
            values[key] = (not value) if inverted(key) else value
    return values


def declared_fields() -> dict[str, forms.Field]:
    """Form fields for every typed property, and the drop checkbox."""
    fields = {field_name(key): _field(registry.PROPERTIES[key]) for key in TYPED}
    fields[DROP_FIELD] = forms.BooleanField(
        required=False,
        label="Remove the stored properties above",
        widget=forms.HiddenInput,
    )
    return fields


def stored_values(campaign) -> tuple[dict, dict]:
    """(initial values of the typed fields, stored entries none can show).

    A stored SMS_SENDER entry goes to the `sms_sender` field when that is
    empty (older campaigns kept it in the JSON)."""
    stored = campaign.channel_properties
    values, unshown = rules.typed_values(stored, keys=TYPED)
    for key in TYPED:
        if inverted(key) and key in values:
            values[key] = not values[key]
    if rules.SMS_SENDER in unshown and not campaign.sms_sender:
        values[rules.SMS_SENDER] = unshown.pop(rules.SMS_SENDER)
    return values, unshown


def posted_channels(post) -> list[str]:
    """The channels a submitted (not yet saved) campaign form names."""
    order = [
        part.strip().upper()
        for part in post.get("channel_priority_order", "").split(",")
        if part.strip()
    ]
    return rules.campaign_channels(post.get("channel", ""), order)


def form_channels() -> list[str]:
    """Product channels that have properties, in the channel list's order."""
    return [c for c in Channel.values if registry.for_channel(c)]


def channel_fieldsets(used: list[str], unshown: dict) -> list[tuple]:
    """Admin fieldsets: one per channel with properties. The campaign's own
    channels are open; the others folded, saying why their values are
    refused. Stored entries no field can show head the first one."""
    fieldsets = []
    for channel in form_channels():
        fields = [
            "sms_sender" if p.key == rules.SMS_SENDER else field_name(p.key)
            for p in registry.for_channel(channel)
        ]
        options: dict = {"fields": fields}
        if channel not in used:
            options["classes"] = ["collapse"]
            options["description"] = (
                f"{Channel(channel).label} is not one of this campaign's "
                "channels: values here are refused until it is the channel "
                "or in the fallback order."
            )
        fieldsets.append((f"{Channel(channel).label} properties", options))
    if unshown:
        listing = format_html_join(
            ", ", "<code>{}</code> = <code>{}</code>", sorted(unshown.items())
        )
        description = format_html(
            "{}: saved before, and no field here can show them. Tick the box "
            "to remove them when you save; the campaign cannot be saved with "
            "them.",
            listing,
        )
        fieldsets.insert(
            0,
            (
                "Stored channel properties Sinch does not accept",
                {"fields": [DROP_FIELD], "description": description},
            ),
        )
    return fieldsets
