"""Forms of the contacts admin: identity edits, list choice, consent, evidence."""

from django import forms
from django.utils import timezone

from contacts.models import ChannelIdentity, ConsentEvent, ContactList, Purpose
from contacts.phones import InvalidIdentity, normalise_identity
from contacts.services.consent import Evidence

MANUAL_SOURCES = [
    (value, label)
    for value, label in ConsentEvent.Source.choices
    if value not in (ConsentEvent.Source.IMPORT, ConsentEvent.Source.ERASURE)
]


class ChannelIdentityForm(forms.ModelForm):
    class Meta:
        model = ChannelIdentity
        fields = ("channel", "identity")

    def clean(self):
        data = super().clean()
        channel, raw = data.get("channel"), data.get("identity")
        if channel and raw:
            try:
                data["identity"] = normalise_identity(channel, raw)
            except InvalidIdentity as exc:
                self.add_error("identity", f"Not a valid {channel} identity: {exc}.")
        return data


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
    kind = forms.ChoiceField(choices=ConsentEvent.Kind.choices)
    purpose = forms.ChoiceField(choices=Purpose.choices)
    source = forms.ChoiceField(choices=MANUAL_SOURCES)
    occurred_at = forms.DateTimeField(
        initial=timezone.now,
        help_text="When the person gave or withdrew consent.",
    )
    evidence_ip = forms.GenericIPAddressField(
        label="IP address (when known)", required=False
    )
    evidence_user_agent = forms.CharField(
        label="User agent (when known)", required=False, max_length=500
    )

    def __init__(self, *args, contact, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["identity"].queryset = contact.identities.all()

    def clean_occurred_at(self):
        value = self.cleaned_data["occurred_at"]
        if value > timezone.now():
            raise forms.ValidationError("This is in the future.")
        return value
