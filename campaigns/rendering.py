"""A template rendered for one contact: what Sinch is sent and what it shows.

Preview and the pre-send check call `render_for_contact`; the substitution is
sinch.placeholders.render, the one the simulator applies, so values holding
"${...}" or HTML are inserted literally and never expanded again.
"""

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from campaigns.models import MessageTemplate, TemplateParameter
from contacts.models import Contact
from sinch.placeholders import render


@dataclass(frozen=True)
class Rendering:
    message: dict[str, Any]  # the Sinch `message` object, placeholders kept
    parameters: dict[str, str]  # this recipient's `parameters` map
    rendered: dict[str, Any]  # `message` as the recipient will see it
    missing: list[str]  # placeholders with no value and no default

    @property
    def ok(self) -> bool:
        return not self.missing


def render_for_contact(
    template: MessageTemplate,
    contact: Contact,
    *,
    campaign_values: Mapping[str, str] | None = None,
    parameters: Iterable[TemplateParameter] | None = None,
) -> Rendering:
    """Render `template` for `contact`.

    `campaign_values` holds the values of CAMPAIGN-sourced parameters by name;
    pass `parameters` (the template's, prefetched) to save a query per call.
    """
    by_name = {
        p.name: p
        for p in (template.parameters.all() if parameters is None else parameters)
    }
    values: dict[str, str] = {}
    missing: list[str] = []
    for name in template.placeholders:
        param = by_name.get(name) or TemplateParameter.for_name(template, name)
        value = parameter_value(param, contact, campaign_values or {})
        if value is None:
            missing.append(name)
        else:
            values[name] = value
    message = template.sinch_message()
    return Rendering(
        message=message,
        parameters=values,
        rendered=render(message, values),
        missing=missing,
    )


def parameter_value(
    param: TemplateParameter, contact: Contact, campaign_values: Mapping[str, str]
) -> str | None:
    """The value for one recipient: from its source, else the default, else None."""
    Source = TemplateParameter.Source
    if param.source == Source.CONTACT_FIELD:
        value: Any = getattr(contact, param.contact_field, None)
    elif param.source == Source.ATTRIBUTE:
        value = (contact.attributes or {}).get(param.attribute or param.name)
    else:
        value = campaign_values.get(param.name)
    if value is None or value == "":
        return param.default or None
    return value if isinstance(value, str) else str(value)
