"""A campaign's message rendered for a recipient: what Sinch is sent and shows.

A `MessagePlan` is the message definition of a campaign: the Sinch `message`
object with its placeholders, where each placeholder's value comes from, and
the campaign's own values. It is built from the live template while the
campaign is a draft, and from the campaign's frozen snapshot once launched,
so editing a template never changes a campaign in flight.

A marketing SMS's compliance footer (campaigns.compliance.footer) is part of
the plan: the message ends with its placeholder, and each recipient's values
hold the footer in their language.

The substitution is sinch.placeholders.render, the one the simulator applies:
values holding "${...}" or HTML are inserted literally, never expanded again.
`MessagePlan.text` produces the same texts without building the rendered
message, for the pre-send check's million recipients.
"""

from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass
from typing import Any

from django.utils import timezone

from campaigns import transitions
from campaigns.authoring import link_tracking
from campaigns.authoring.sms import sms_strings
from campaigns.compliance.footer import Footer, campaign_footer
from campaigns.models import Campaign, MessageTemplate, TemplateParameter, Variant
from campaigns.placeholders import FOOTER_PARAMETER
from contacts.models import AuditEvent, Contact
from sinch.placeholders import render
from sinch.wire import PLACEHOLDER

Source = TemplateParameter.Source
SNAPSHOT_VERSION = 1


@dataclass(frozen=True)
class Rendering:
    message: dict[str, Any]  # the Sinch `message` object, placeholders kept
    parameters: dict[str, str]  # this recipient's `parameters` map
    rendered: dict[str, Any]  # `message` as the recipient will see it
    missing: list[str]  # placeholders with no value and no default

    @property
    def ok(self) -> bool:
        return not self.missing


@dataclass(frozen=True)
class ParameterSource:
    """Where one placeholder's value comes from, and its fallback."""

    name: str
    source: str  # a TemplateParameter.Source value
    contact_field: str = ""
    attribute: str = ""
    default: str = ""

    @classmethod
    def of(cls, param: TemplateParameter) -> "ParameterSource":
        return cls(
            name=param.name,
            source=param.source,
            contact_field=param.contact_field or "",
            attribute=param.attribute or "",
            default=param.default or "",
        )

    @property
    def attribute_key(self) -> str:
        return self.attribute or self.name

    def raw(self, contact: Contact, campaign_values: Mapping[str, str]) -> Any:
        """The value at the source, before the default applies."""
        if self.source == Source.CONTACT_FIELD:
            return getattr(contact, self.contact_field, None)
        if self.source == Source.ATTRIBUTE:
            return (contact.attributes or {}).get(self.attribute_key)
        return campaign_values.get(self.name)

    def resolve(self, raw: Any) -> str | None:
        """The value sent: `raw`, else the default, else None (missing)."""
        if raw is None or raw == "":
            return self.default or None
        return raw if isinstance(raw, str) else str(raw)

    def value(self, contact: Contact, campaign_values: Mapping[str, str]) -> str | None:
        return self.resolve(self.raw(contact, campaign_values))

    def origin(self) -> str:
        """Where a non-default value came from, in words."""
        if self.source == Source.CONTACT_FIELD:
            return f"contact field {self.contact_field}"
        if self.source == Source.ATTRIBUTE:
            return f"attribute {self.attribute_key}"
        return "campaign"


class MessagePlan:
    """A message definition, ready to render for any number of recipients."""

    def __init__(
        self,
        message: dict[str, Any],
        sources: Iterable[ParameterSource],
        campaign_values: Mapping[str, str] | None = None,
        footer: Footer | None = None,
        links: Iterable[link_tracking.Link] = (),
    ) -> None:
        # The template's message; `message` is what Sinch gets (with the footer).
        self.base_message = message
        self.footer = footer
        # Tracked links: their placeholders count as a short link of the real
        # length in texts and renderings (link_tracking.sample_short_url).
        self.links = tuple(links)
        self.link_samples = {
            link.parameter: link_tracking.sample_short_url() for link in self.links
        }
        self.message = footer.apply(message) if footer else message
        self.sources = tuple(sources)
        self.campaign_values = dict(campaign_values or {})
        self.placeholders = [s.name for s in self.sources]
        # The texts an SMS recipient reads (sms.sms_strings) joined by "\n",
        # cut into literal text and (name, placeholder as written) pieces.
        pieces: list[str | tuple[str, str]] = []
        for index, leaf in enumerate(sms_strings(self.message)):
            if index:
                pieces.append("\n")
            at = 0
            for match in PLACEHOLDER.finditer(leaf):
                pieces.append(leaf[at : match.start()])
                sample = self.link_samples.get(match.group(1))
                pieces.append(sample or (match.group(1), match.group(0)))
                at = match.end()
            pieces.append(leaf[at:])
        self._pieces = [p for p in pieces if p != ""]

    @classmethod
    def from_template(
        cls,
        template: MessageTemplate,
        campaign_values: Mapping[str, str] | None = None,
        parameters: Iterable[TemplateParameter] | None = None,
    ) -> "MessagePlan":
        """The live definition; pass `parameters` prefetched to save a query."""
        by_name = {
            p.name: p
            for p in (template.parameters.all() if parameters is None else parameters)
        }
        sources = [
            ParameterSource.of(
                by_name.get(name) or TemplateParameter.for_name(template, name)
            )
            for name in template.placeholders
        ]
        return cls(template.sinch_message(), sources, campaign_values)

    @classmethod
    def for_campaign(cls, campaign: Campaign) -> "MessagePlan":
        """The frozen definition of a launched campaign, else the live one."""
        if campaign.message_snapshot:
            return cls.from_snapshot(campaign.message_snapshot)
        return cls.live(campaign)

    @classmethod
    def live(
        cls, campaign: Campaign, template: MessageTemplate | None = None
    ) -> "MessagePlan":
        """The campaign's template (or `template`, an A/B variant's) as it is
        now, with the campaign's footer and tracked links."""
        plan = cls.from_template(
            template or campaign.template, campaign.campaign_values
        )
        message, links = plan.message, []
        if campaign.track_links:
            utm = link_tracking.campaign_utm(campaign)
            message, links = link_tracking.rewrite(message, utm)
        footer = campaign_footer(campaign, message)
        if footer is None and not links:
            return plan
        return cls(message, plan.sources, plan.campaign_values, footer, links)

    def snapshot(self) -> dict[str, Any]:
        """Everything needed to render later, as JSON (see from_snapshot)."""
        data = {
            "version": SNAPSHOT_VERSION,
            "message": self.base_message,
            "parameters": [asdict(s) for s in self.sources],
            "campaign_values": self.campaign_values,
        }
        if self.footer is not None:
            data["footer"] = self.footer.to_json()
        if self.links:
            data["links"] = [link.as_json() for link in self.links]
        return data

    @classmethod
    def from_snapshot(cls, data: Mapping[str, Any]) -> "MessagePlan":
        return cls(
            data["message"],
            [ParameterSource(**item) for item in data["parameters"]],
            data.get("campaign_values"),
            Footer.from_json(data.get("footer")),
            link_tracking.links_of(data.get("links")),
        )

    def values_for(self, contact: Contact) -> tuple[dict[str, str], list[str]]:
        """(values by placeholder name, names with no value and no default)."""
        values: dict[str, str] = {}
        missing: list[str] = []
        for source in self.sources:
            value = source.value(contact, self.campaign_values)
            if value is None:
                missing.append(source.name)
            else:
                values[source.name] = value
        if self.footer is not None:
            values[FOOTER_PARAMETER] = self.footer.value_for(contact.language)
        return values, missing

    def render_contact(self, contact: Contact) -> Rendering:
        values, missing = self.values_for(contact)
        return Rendering(
            message=self.message,
            parameters=values,
            rendered=render(self.message, {**values, **self.link_samples}),
            missing=missing,
        )

    def text(self, values: Mapping[str, str]) -> str:
        """The rendered message as an SMS recipient reads it (an estimate
        for the kinds Sinch converts to text: see sms.sms_strings).

        The same as "\\n".join(sms_strings(render(self.message, values))).
        """
        get = values.get
        return "".join(
            [
                piece if piece.__class__ is str else get(piece[0], piece[1])
                for piece in self._pieces
            ]
        )


def render_for_contact(
    template: MessageTemplate,
    contact: Contact,
    *,
    campaign_values: Mapping[str, str] | None = None,
    parameters: Iterable[TemplateParameter] | None = None,
) -> Rendering:
    """Render the live `template` for `contact`."""
    plan = MessagePlan.from_template(template, campaign_values, parameters)
    return plan.render_contact(contact)


def _every_variant_has_its_own_template(campaign: Campaign) -> bool:
    """An A/B test whose variants all have templates of their own never sends
    the campaign's template: its links are nobody's (the variants record
    theirs, campaigns.authoring.variants.freeze_variants)."""
    labels = Variant.objects.filter(campaign=campaign)
    return labels.exists() and not labels.filter(template__isnull=True).exists()


def freeze_message(campaign: Campaign) -> MessagePlan:
    """Freeze the campaign's message as its template defines it now.

    From then on the campaign renders from its snapshot (MessagePlan.for_campaign):
    later edits of the template or its parameters, or of the compliance
    footer's settings, do not reach it.
    """
    plan = MessagePlan.live(campaign)
    campaign.message_snapshot = plan.snapshot()
    campaign.frozen_at = timezone.now()
    Campaign.objects.filter(pk=campaign.pk).update(
        message_snapshot=campaign.message_snapshot, frozen_at=campaign.frozen_at
    )
    if plan.links and not _every_variant_has_its_own_template(campaign):
        link_tracking.record_links(campaign, list(plan.links))
        transitions.audit(
            campaign,
            None,
            AuditEvent.Action.LAUNCH,
            "Tracked links frozen: "
            + "; ".join(f"{link.url} → {link.target}" for link in plan.links)[:450],
            links=[link.as_json() for link in plan.links],
        )
    return plan
