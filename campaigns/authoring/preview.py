"""Selectors for the campaign preview: find an audience member, draw a sample,
and render the campaign's message for each, as Sinch will render it.

Rendering goes through campaigns.authoring.rendering (the simulator's
substitution), so a value holding "${...}" or HTML is inserted literally and
never expanded again.
Nothing here writes to the database.
"""

import random
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from django.db.models import Max, Min, QuerySet

from campaigns.authoring import members, variants
from campaigns.authoring.audience import member_statuses
from campaigns.authoring.rendering import MessagePlan, Rendering
from campaigns.models import Campaign
from campaigns.placeholders import FOOTER_PARAMETER
from contacts.models import ChannelIdentity, Contact
from contacts.phones import phone_search_term

SAMPLE_DEFAULT = 5
SAMPLE_MAX = 50
# Random ids tried per round and the number of rounds: the sample costs a few
# indexed queries whatever the size of the audience.
PROBES_PER_ROUND = 500
PROBE_ROUNDS = 3


class NotInAudience(Exception):
    """The search found no usable contact of the campaign's audience."""


@dataclass(frozen=True)
class ParameterUse:
    name: str
    value: str | None
    origin: str  # "contact field first_name", "attribute tier", "campaign", ...

    @property
    def missing(self) -> bool:
        return self.value is None

    @property
    def placeholder(self) -> str:
        return "${" + self.name + "}"


@dataclass(frozen=True)
class ContactPreview:
    contact: Contact
    rendering: Rendering
    parameters: list[ParameterUse]
    fields: list[tuple[str, str]]  # (field path, text after substitution)
    # By the pre-send check's rules: OK, EXCLUDED or BLOCKING, and why.
    status: str = "OK"
    status_reason: str = ""
    # An A/B test: the contact's variant ("" and held: the remainder).
    variant: str = ""
    held: bool = False

    @property
    def missing(self) -> list[str]:
        return self.rendering.missing

    @property
    def excluded(self) -> bool:
        return self.status == "EXCLUDED"

    @property
    def blocking(self) -> bool:
        return self.status == "BLOCKING"


def audience_members(campaign: Campaign) -> QuerySet[Contact]:
    """The campaign's members (its lists' and segments'), never erased, one
    row each, with their id also as `contact_id`."""
    return members.audience_members(campaign)


def find_audience_contact(campaign: Campaign, term: str) -> Contact:
    """The audience member matching `term`, or raise NotInAudience saying why.

    `term` is a phone number in any format or another identity (exact match),
    an external id, or a contact id.
    """
    term = term.strip()
    identities = {term, phone_search_term(term)} - {None}
    # Ids in order of preference: identity, external id, contact id.
    candidates: list[int] = list(
        ChannelIdentity.objects.filter(identity__in=identities)
        .order_by("contact_id")
        .values_list("contact_id", flat=True)[:20]
    )
    candidates += (
        Contact.objects.filter(external_id=term)
        .exclude(external_id="")
        .values_list("pk", flat=True)[:1]
    )
    if term.isdigit() and len(term) < 19:
        candidates.append(int(term))
    if not candidates:
        raise NotInAudience(f"No contact matches “{term}”.")
    members = set(
        audience_members(campaign)
        .filter(contact_id__in=candidates)
        .values_list("contact_id", flat=True)
    )
    chosen = next((pk for pk in candidates if pk in members), None)
    if chosen is None:
        raise NotInAudience(
            f"“{term}” is not in this campaign's audience "
            "(or the contact's personal data was erased)."
        )
    return Contact.objects.get(pk=chosen)


def sample_audience(
    campaign: Campaign, size: int = SAMPLE_DEFAULT, *, rng: random.Random | None = None
) -> list[Contact]:
    """Up to `size` distinct audience members drawn at random.

    Random ids between the lowest and highest member id are probed in a few
    bounded rounds; a sparse audience is topped up from a window after a random
    id. No ORDER BY RANDOM(), no scan of the audience.
    """
    rng = rng or random.Random()
    size = max(0, min(size, SAMPLE_MAX))
    members = audience_members(campaign)
    bounds = members.aggregate(lo=Min("contact_id"), hi=Max("contact_id"))
    lo, hi = bounds["lo"], bounds["hi"]
    if lo is None or size == 0:
        return []
    found: set[int] = set()
    span = range(lo, hi + 1)
    for _ in range(PROBE_ROUNDS):
        need = size - len(found)
        if need <= 0:
            break
        probes = rng.sample(span, min(len(span), PROBES_PER_ROUND))
        hits = set(
            members.filter(contact_id__in=probes).values_list("contact_id", flat=True)
        )
        hits -= found
        found.update(rng.sample(sorted(hits), min(need, len(hits))))
        if len(span) <= PROBES_PER_ROUND:
            break  # every id was probed
    for start in (rng.randint(lo, hi), lo):
        need = size - len(found)
        if need <= 0:
            break
        found.update(
            members.filter(contact_id__gte=start)
            .exclude(contact_id__in=found)
            .order_by("contact_id")
            .values_list("contact_id", flat=True)
            .distinct()[:need]
        )
    contacts = Contact.objects.in_bulk(found)
    return [contacts[pk] for pk in sorted(contacts)]


def preview_contact(
    campaign: Campaign,
    contact: Contact,
    plan: MessagePlan | None = None,
    status: tuple[str, str] = ("OK", ""),
    variant: str | None = None,
) -> ContactPreview:
    """The campaign's message for `contact`, with each value and its origin."""
    plan = plan or MessagePlan.for_campaign(campaign)
    rendering = plan.render_contact(contact)
    uses = []
    for source in plan.sources:
        raw = source.raw(contact, plan.campaign_values)
        value = source.resolve(raw)
        if value is None:
            origin = "no value, no default"
        elif raw is None or raw == "":
            origin = "default"
        else:
            origin = source.origin()
        uses.append(ParameterUse(source.name, value, origin))
    if plan.footer is not None:
        value = rendering.parameters[FOOTER_PARAMETER]
        origin = plan.footer.describe(contact.language)
        if not value:
            origin += "; not added: the template already ends with it"
        uses.append(ParameterUse(FOOTER_PARAMETER, value, origin))
    for link in plan.links:  # each recipient gets a short link of their own
        value = plan.link_samples[link.parameter]
        origin = f"tracked link to {link.target}"
        uses.append(ParameterUse(link.parameter, value, origin))
    return ContactPreview(
        contact=contact,
        rendering=rendering,
        parameters=uses,
        fields=list(_text_fields(rendering.rendered)),
        status=status[0],
        status_reason=status[1],
        variant=variant or "",
        held=variant == variants.REMAINDER,
    )


def preview_contacts(
    campaign: Campaign, contacts: Iterable[Contact]
) -> list[ContactPreview]:
    contacts = list(contacts)
    plan = MessagePlan.for_campaign(campaign)
    statuses = member_statuses(campaign, {c.pk for c in contacts})
    # An A/B test: each contact sees their variant's message (the held
    # remainder, whose winner is not known yet, the campaign's).
    split = variants.Split.of(campaign)
    plans = variants.plans_by_label(campaign) if split else {}
    previews = []
    for c in contacts:
        label = split.label(c.pk) if split else None
        status = statuses.get(c.pk, ("OK", ""))
        previews.append(
            preview_contact(campaign, c, plans.get(label, plan), status, label)
        )
    return previews


@dataclass(frozen=True)
class VariantLinks:
    label: str
    links: list[tuple[str, str, str]]  # (placeholder, short link sample, target)


def variant_links(campaign: Campaign) -> list[VariantLinks]:
    """Each A/B variant's tracked links: the short link its recipients get
    (one of the real length; each recipient has their own) and where it goes."""
    if not campaign.track_links:
        return []
    return [
        VariantLinks(
            label,
            [
                (
                    "${" + link.parameter + "}",
                    plan.link_samples[link.parameter],
                    link.target,
                )
                for link in plan.links
            ],
        )
        for label, plan in sorted(variants.plans_by_label(campaign).items())
    ]


def _text_fields(value: Any, path: str = ""):
    """(path, text) for every string leaf of the rendered message."""
    if isinstance(value, str):
        yield path, value
    elif isinstance(value, dict):
        for key, item in value.items():
            yield from _text_fields(item, f"{path}.{key}" if path else str(key))
    elif isinstance(value, list | tuple):
        for index, item in enumerate(value):
            yield from _text_fields(item, f"{path}[{index}]")
