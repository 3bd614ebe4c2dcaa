"""Duplicate a campaign as a new draft, to send the same thing again.

The copy keeps what the marketer chose: the template, the purpose, the
audience (its lists, and its segments where campaigns have them), the channel
settings (channel, fallbacks, TTL, WhatsApp window, sender and properties),
the campaign values, the seed list, the send-time zone and the local-time
settings. It leaves what belongs to one send: the send time (chosen again),
exemptions (quiet hours, frequency cap: Compliance grants them per
campaign), approvals, the pre-send check, and every launch and sending
state. Whatever the original's status, the copy is a DRAFT.
"""

from django.core.exceptions import FieldDoesNotExist
from django.db import transaction

from campaigns.models import ABTest, Campaign, Variant
from contacts.models import AuditEvent
from contacts.services.audit import record_audit

# The fields copied as they are (see the module docstring for the rest).
COPIED = (
    "template",
    "purpose",
    "channel",
    "channel_priority_order",
    "whatsapp_window_only",
    "ttl_seconds",
    "sms_sender",
    "channel_properties",
    "campaign_values",
    "seed_list",
    "send_time_zone",
    "send_in_local_time",
    "fallback_time_zone",
    "multi_zone_rule",
)
# The audience: many-to-many fields, copied when the model has them.
AUDIENCE = ("lists", "segments")
NAME_MAX = Campaign._meta.get_field("name").max_length
PREFIX = "Copy of "


def copy_name(name: str) -> str:
    """ "Copy of X", or "Copy of X (2)", ... : a name no campaign has yet."""
    base = (PREFIX + name)[:NAME_MAX]
    taken = set(
        Campaign.objects.filter(name__startswith=base[: NAME_MAX - 12]).values_list(
            "name", flat=True
        )
    )
    if base not in taken:
        return base
    number = 2
    while True:
        suffix = f" ({number})"
        candidate = base[: NAME_MAX - len(suffix)] + suffix
        if candidate not in taken:
            return candidate
        number += 1


def _audience_fields() -> list[str]:
    found = []
    for name in AUDIENCE:
        try:
            field = Campaign._meta.get_field(name)
        except FieldDoesNotExist:
            continue
        if field.many_to_many:
            found.append(name)
    return found


def duplicate_campaign(campaign: Campaign, user) -> Campaign:
    """A new DRAFT copy of `campaign` named "Copy of <name>", made by `user`;
    audited (on the copy, naming the original). Any status may be copied."""
    with transaction.atomic():
        # Two copies of one campaign at once would pick the same name.
        Campaign.objects.select_for_update().filter(pk=campaign.pk).first()
        copy = Campaign.objects.create(
            name=copy_name(campaign.name),
            created_by=user,
            **{field: getattr(campaign, field) for field in COPIED},
        )
        _copy_ab_test(campaign, copy)
        audience = {}
        for field in _audience_fields():
            items = list(getattr(campaign, field).all())
            getattr(copy, field).set(items)
            audience[field] = [item.pk for item in items]
        record_audit(
            actor=user,
            action=AuditEvent.Action.DUPLICATE,
            target_type="campaign",
            target_id=copy.pk,
            summary=f"Created draft campaign {copy} (#{copy.pk}) as a copy of "
            f"campaign {campaign} (#{campaign.pk})",
            details={"copy_of": campaign.pk, "copy": copy.pk, **audience},
        )
    return copy


def _copy_ab_test(campaign: Campaign, copy: Campaign) -> None:
    """The A/B variants and "test first" settings go with the copy (not the
    frozen messages, nor the outcome)."""
    for variant in Variant.objects.filter(campaign=campaign):
        Variant.objects.create(
            campaign=copy,
            label=variant.label,
            template_id=variant.template_id,
            share=variant.share,
        )
    test = ABTest.objects.filter(campaign=campaign).first()
    if test is not None:
        ABTest.objects.create(
            campaign=copy,
            test_share=test.test_share,
            wait_minutes=test.wait_minutes,
            metric=test.metric,
            picking=test.picking,
        )
