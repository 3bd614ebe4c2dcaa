"""Forms of the contacts admin: identity edits, list choice, consent, evidence."""

from django import forms
from django.utils import timezone
from django.utils.html import format_html

from config.lib.key_values import KeyValueField
from config.lib.time_zone_field import TimeZoneField
from contacts.models import (
    ChannelIdentity,
    ConsentEvent,
    Contact,
    ContactList,
    Purpose,
)
from contacts.phones import InvalidIdentity, normalise_identity
from contacts.services.consent import Evidence
from contacts.services.identities import IdentityTaken, check_new_identity
from contacts.services.suppression import SuppressedIdentityError, is_suppressed

MANUAL_SOURCES = [
    (value, label)
    for value, label in ConsentEvent.Source.choices
    if value not in (ConsentEvent.Source.IMPORT, ConsentEvent.Source.ERASURE)
]


class ShownAsText(forms.Widget):
    """A stored value shown as text, not as an input to type over."""

    def render(self, name, value, attrs=None, renderer=None):
        return format_html('<span class="stored-value">{}</span>', value or "")


class ContactForm(forms.ModelForm):
    """A contact's fields; attributes as key/value rows, the time zone picked
    from zoneinfo's list (config.lib.key_values, config.lib.time_zone_field)."""

    time_zone = TimeZoneField(
        help_text="IANA name: type a city or region to search, e.g. Berlin. "
        "Empty: inferred from the number."
    )
    attributes = KeyValueField(
        label="Custom attributes",
        help_text="Usable in templates as ${key}. Each value keeps its type: "
        "text, number, yes/no (true/false) or JSON for a list.",
    )

    class Meta:
        model = Contact
        fields = (
            "first_name",
            "last_name",
            "external_id",
            "language",
            "time_zone",
            "attributes",
        )


class ChannelIdentityForm(forms.ModelForm):
    """Adds an identity; a stored one is shown, never edited (its fields are
    disabled, so posted values are ignored: "Replace number" changes it)."""

    class Meta:
        model = ChannelIdentity
        fields = ("channel", "identity")

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        if self.instance.pk:
            for name in ("channel", "identity"):
                if name in self.fields:
                    self.fields[name].disabled = True
                    self.fields[name].widget = ShownAsText()

    def clean(self):
        data = super().clean()
        channel, raw = data.get("channel"), data.get("identity")
        if channel and raw and not self.instance.pk:
            try:
                data["identity"] = normalise_identity(channel, raw)
            except InvalidIdentity as exc:
                self.add_error("identity", f"Not a valid {channel} identity: {exc}.")
                return data
            if is_suppressed(channel, data["identity"]):
                self.add_error(
                    "identity",
                    "This number is suppressed (its owner was erased, or it was "
                    "opted out and replaced): it cannot be added again.",
                )
        return data


class ReplaceIdentityForm(forms.Form):
    """The new number for an identity (see services.identities.replace_identity)."""

    new_identity = forms.CharField(
        label="New number or identity",
        max_length=128,
        help_text="It starts with no consent: record the person's consent for it.",
    )
    retire = forms.BooleanField(
        label="Retire the old one",
        required=False,
        initial=True,
        help_text="A retired identity keeps its ledger and is never sent to again.",
    )
    note = forms.CharField(
        label="Why", required=False, max_length=200, help_text="For the audit trail."
    )

    def __init__(self, *args, identity: ChannelIdentity, **kwargs):
        super().__init__(*args, **kwargs)
        self.identity = identity

    def clean_new_identity(self):
        channel = self.identity.channel
        try:
            value = normalise_identity(channel, self.cleaned_data["new_identity"])
            check_new_identity(channel, value)
        except InvalidIdentity as exc:
            raise forms.ValidationError(
                f"Not a valid {channel} identity: {exc}."
            ) from None
        except (SuppressedIdentityError, IdentityTaken) as exc:
            raise forms.ValidationError(str(exc)) from None
        return value


class ContactListChoiceForm(forms.Form):
    contact_list = forms.ModelChoiceField(
        queryset=ContactList.objects.order_by("name"), label="List"
    )


class EvidenceFields(forms.Form):
    evidence_wording = forms.CharField(
        label="Wording the person saw or used",
        required=False,
        widget=forms.Textarea(attrs={"rows": 2}),
    )
    evidence_note = forms.CharField(
        label="Evidence",
        help_text="Where this comes from: a ticket, an e-mail, a call note.",
        widget=forms.Textarea(attrs={"rows": 3}),
    )

    def evidence(self) -> Evidence:
        data = self.cleaned_data
        return Evidence(
            wording=data.get("evidence_wording", ""),
            note=data["evidence_note"],
            ip=data.get("evidence_ip") or None,
            user_agent=data.get("evidence_user_agent", ""),
        )


class OptOutForm(EvidenceFields):
    purposes = forms.MultipleChoiceField(
        choices=Purpose.choices,
        initial=[p.value for p in Purpose],
        widget=forms.CheckboxSelectMultiple,
    )


class RecordConsentForm(EvidenceFields):
    identity = forms.ModelChoiceField(queryset=ChannelIdentity.objects.none())
    # No default: opting someone in by leaving a field as it was is how a
    # "no" becomes a "yes".
    kind = forms.ChoiceField(
        choices=[("", "— choose opt-in or opt-out —"), *ConsentEvent.Kind.choices]
    )
    purpose = forms.ChoiceField(choices=Purpose.choices)
    source = forms.ChoiceField(choices=MANUAL_SOURCES)
    occurred_at = forms.DateTimeField(initial=timezone.now)
    evidence_ip = forms.GenericIPAddressField(
        label="IP address (when known)", required=False
    )
    evidence_user_agent = forms.CharField(
        label="User agent (when known)", required=False, max_length=500
    )

    def __init__(self, *args, contact, identity_id=None, **kwargs):
        """`identity_id` (or the contact's only live identity) is preselected;
        retired identities are not offered (they are never sent to)."""
        super().__init__(*args, **kwargs)
        live = contact.identities.filter(retired_at__isnull=True).order_by("pk")
        field = self.fields["identity"]
        field.queryset = live
        wanted = str(identity_id or "")
        ids = list(live.values_list("pk", flat=True)[:2])
        if wanted.isdigit() and live.filter(pk=int(wanted)).exists():
            field.initial = int(wanted)
        elif len(ids) == 1:
            field.initial = ids[0]
        zone = timezone.get_current_timezone_name()
        self.fields[
            "occurred_at"
        ].help_text = (
            f"When the person gave or withdrew consent, in the {zone} time zone."
        )

    def clean_occurred_at(self):
        value = self.cleaned_data["occurred_at"]
        if value > timezone.now():
            raise forms.ValidationError("This is in the future.")
        return value
