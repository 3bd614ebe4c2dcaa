"""What the template editor's page needs to help with writing.

The page's script (campaigns/static/campaigns/template_writing.js) counts
characters and SMS segments, warns about other tools' placeholder syntaxes
and previews the message. It does so with the tables and rules exported here
from the modules that own them (campaigns.authoring.sms,
campaigns.placeholders, campaigns.compliance.footer), never with a copy of
its own: the page and the server apply one set of rules, and
tests/browser/test_template_editor_in_browser.py checks they agree.

The placeholder picker lists what a template can use: the contact fields,
the attribute keys seen in the data and the campaign values in use. Reading
every contact's attributes would scan a million rows; the keys come from the
newest ATTRIBUTE_SAMPLE contacts (one primary-key index scan with a LIMIT)
and from the attribute keys templates already map, so a key that only old
contacts hold may be missing: it can still be typed.
"""

from typing import Any

from django.core.exceptions import ImproperlyConfigured

from campaigns import placeholders
from campaigns.authoring import sms
from campaigns.compliance import footer
from campaigns.models import Campaign, MessageTemplate, TemplateParameter
from contacts.models import Contact
from sinch import wire

ATTRIBUTE_SAMPLE = 2000  # newest contacts whose attribute keys are read
CAMPAIGN_SAMPLE = 200  # newest campaigns whose campaign values are read
MAX_NAMES = 100  # names listed per picker group

Source = TemplateParameter.Source


def sms_rules() -> dict[str, Any]:
    """The GSM 03.38 tables and the segment limits, as campaigns.authoring.sms
    applies them."""
    return {
        "gsm7_basic": sms.GSM7_BASIC,
        "gsm7_extension": sms.GSM7_EXTENSION,
        "gsm7_single": sms.GSM7_SINGLE,
        "gsm7_part": sms.GSM7_PART,
        "ucs2_single": sms.UCS2_SINGLE,
        "ucs2_part": sms.UCS2_PART,
        "gsm7": sms.GSM7,
        "ucs2": sms.UCS2,
    }


def footer_rules() -> dict[str, Any]:
    """The compliance footers a marketing SMS gets, by language ("" is the
    default): each as the line added and the opt-out text alone (a text
    ending with either gets no footer, see footer.ends_with)."""
    try:
        conf = footer.footer_settings()
    except ImproperlyConfigured as exc:
        return {"enabled": False, "problem": str(exc), "footers": {}}
    if not conf.enabled:
        return {"enabled": False, "problem": "", "footers": {}}
    texts = {"": conf.opt_out, **conf.by_language}
    return {
        "enabled": True,
        "problem": "",
        "footers": {
            tag: {"line": conf.line(text), "opt_out": text}
            for tag, text in texts.items()
        },
    }


def usable_name(name: Any) -> bool:
    """Whether `name` can be written as a ${name} placeholder of a template."""
    return (
        isinstance(name, str)
        and wire.PLACEHOLDER.fullmatch("${" + name + "}") is not None
        and not placeholders.is_reserved(name)
        and name != placeholders.FOOTER_PARAMETER
    )


def attribute_keys(sample: int = ATTRIBUTE_SAMPLE) -> list[str]:
    """Attribute keys usable as placeholders: those of the newest `sample`
    contacts and those templates map already, sorted, at most MAX_NAMES.

    Two bounded queries, whatever the number of contacts.
    """
    keys: set[str] = set()
    newest = Contact.objects.order_by("-pk").values_list("attributes", flat=True)
    for attributes in newest[:sample]:
        if isinstance(attributes, dict):
            keys.update(attributes)
    mapped = (
        TemplateParameter.objects.filter(source=Source.ATTRIBUTE)
        .exclude(attribute="")
        .values_list("attribute", flat=True)
        .distinct()
    )
    keys.update(mapped[:MAX_NAMES])
    contact_fields = set(TemplateParameter.ContactField.values)
    return sorted(k for k in keys if usable_name(k) and k not in contact_fields)[
        :MAX_NAMES
    ]


def campaign_value_names() -> list[str]:
    """Names given campaign values: keys of the newest campaigns' values and
    placeholders whose value a campaign sets."""
    names: set[str] = set()
    newest = Campaign.objects.order_by("-pk").values_list("campaign_values", flat=True)
    for values in newest[:CAMPAIGN_SAMPLE]:
        if isinstance(values, dict):
            names.update(values)
    names.update(
        TemplateParameter.objects.filter(source=Source.CAMPAIGN)
        .values_list("name", flat=True)
        .distinct()[:MAX_NAMES]
    )
    return sorted(n for n in names if usable_name(n))[:MAX_NAMES]


def picker() -> list[dict[str, Any]]:
    """The placeholder picker's groups: [{"title", "names": [{name, label}]}]."""
    fields = TemplateParameter.ContactField
    return [
        {
            "title": "Contact fields",
            "names": [{"name": v, "label": str(lbl)} for v, lbl in fields.choices],
        },
        {
            "title": "Attributes seen in the contacts",
            "names": [{"name": k, "label": k} for k in attribute_keys()],
        },
        {
            "title": "Campaign values",
            "names": [{"name": n, "label": n} for n in campaign_value_names()],
        },
    ]


def sample_values(template: MessageTemplate | None) -> dict[str, str]:
    """The preview's value per placeholder: the template's defaults, else the
    contact field's label ("First name"); the page makes the rest from the
    name ("loyalty_tier" -> "Loyalty tier")."""
    samples = {v: str(label) for v, label in TemplateParameter.ContactField.choices}
    if template is not None and template.pk is not None:
        for name, default in template.parameters.values_list("name", "default"):
            if default:
                samples[name] = default
    return samples


def editor_config(template: MessageTemplate | None) -> dict[str, Any]:
    """Everything the template editor's script reads (as JSON on the page)."""
    kind = template.kind if template is not None else MessageTemplate.Kind.TEXT
    return {
        "kind": kind,
        # The text fields each kind reads, by kind (MessageTemplate.KIND_FIELDS).
        "kind_fields": {
            k.value: list(names) for k, names in MessageTemplate.KIND_FIELDS.items()
        },
        "sms": sms_rules(),
        "foreign": placeholders.foreign_syntax_rules(),
        "syntaxes": list(placeholders.FOREIGN_SYNTAXES),
        "placeholder": wire.PLACEHOLDER.pattern,
        "footer": footer_rules(),
        "picker": picker(),
        "samples": sample_values(template),
    }
