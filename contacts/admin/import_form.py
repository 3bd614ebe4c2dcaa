"""The upload form of the import flow (see imports.py)."""

from django import forms

from contacts.importing.encodings import ENCODINGS
from contacts.models import ConsentEvent, ContactList, ImportJob, Purpose
from sinch.channels import Channel

ENCODING_CHOICES = [("", "Detect automatically"), *ENCODINGS.items()]


class ImportUploadForm(forms.Form):
    file = forms.FileField(
        label="CSV or Excel file",
        help_text="A CSV file (comma- or semicolon-separated, in UTF-8, UTF-16, "
        "Windows-1252 or Latin-1) or an Excel workbook (.xlsx, first sheet), "
        "with a header line naming the columns.",
    )
    encoding = forms.ChoiceField(
        choices=ENCODING_CHOICES,
        required=False,
        help_text="For CSV files. The review page shows the rows as read with it, "
        "and you can change it there.",
    )
    date_order = forms.ChoiceField(
        label="Date order",
        choices=ImportJob.DateOrder.choices,
        required=False,
        help_text="How to read consent dates like 03/04/2026. Not set: such a "
        "date is reported as ambiguous (31/12/2026, 31.12.2026 and 2026-12-31 "
        "are always understood).",
    )
    target_list = forms.ModelChoiceField(
        queryset=ContactList.objects.order_by("name"),
        required=False,
        empty_label="(no list)",
        help_text="The imported contacts are added to this list.",
    )
    default_channel = forms.ChoiceField(
        choices=Channel.choices,
        initial=Channel.SMS,
        help_text="Used for rows without a channel column or value.",
    )
    purpose = forms.ChoiceField(
        choices=Purpose.choices,
        initial=Purpose.MARKETING,
        help_text="The consent the file's consent information is about.",
    )
    consent_mode = forms.ChoiceField(
        label="Consent",
        choices=ImportJob.ConsentMode.choices,
        initial=ImportJob.ConsentMode.COLUMN,
        widget=forms.RadioSelect(attrs={"class": "radiolist"}),
    )
    consent_source = forms.ChoiceField(
        # Erasure is the erasure service's own source, never an import's.
        choices=[
            (value, label)
            for value, label in ConsentEvent.Source.choices
            if value != ConsentEvent.Source.ERASURE
        ],
        initial=ConsentEvent.Source.IMPORT,
        help_text="How the people in the file gave (or withdrew) their consent.",
    )
    consent_evidence = forms.CharField(
        label="Evidence",
        required=False,
        widget=forms.Textarea(attrs={"rows": 3, "cols": 60}),
        help_text="Where the consent comes from, e.g. the sign-up form wording and "
        "date. Required unless the file has no consent information.",
    )
