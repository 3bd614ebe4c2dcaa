"""One rule decides who may receive a campaign: the preview, the pre-send
check, the freeze and the re-check before each Sinch call agree."""

import pytest
from django.utils import timezone

from campaigns.authoring import audience, recheck
from campaigns.authoring.audience import (
    ERASED,
    NO_CONSENT,
    NO_IDENTITY,
    OPTED_OUT,
    consent_problem,
)
from campaigns.dispatch import launching
from campaigns.models import Batch, Recipient
from contacts.models import ChannelIdentity, ConsentState, Contact
from contacts.services.consent import Evidence, record_consent

IN, OUT, UNKNOWN = ConsentState.OPTED_IN, ConsentState.OPTED_OUT, ConsentState.UNKNOWN


@pytest.mark.parametrize(
    ("erased", "identity", "consent", "problem"),
    [
        (False, "+14155550100", IN, None),
        (False, "+14155550100", OUT, OPTED_OUT),
        (False, "+14155550100", UNKNOWN, NO_CONSENT),
        (False, None, None, NO_IDENTITY),
        (True, "+14155550100", IN, ERASED),
        (True, None, None, ERASED),
    ],
)
def test_only_an_explicit_opt_in_of_someone_not_erased_lets_a_message_through(
    erased, identity, consent, problem
):
    assert consent_problem(erased, identity, consent) == problem


def _opt_out(contact: Contact) -> None:
    record_consent(
        identity=contact.identities.get(),
        kind="OPT_OUT",
        purpose="MARKETING",
        source="FORM",
        evidence=Evidence(wording="Replied to the survey: no more offers"),
    )


def test_the_recheck_before_each_call_agrees_with_the_checker_on_every_state(
    launchable_campaign, sender
):
    """Seven people were opted in at launch; four of them change before their
    batch goes: the SQL re-check keeps exactly those the checker (preview,
    pre-send check, freeze) would let through now, with the reason."""
    campaign = launchable_campaign
    launching.launch(campaign, sender)
    frozen = Recipient.objects.filter(
        campaign=campaign, status=Recipient.Status.PENDING
    )
    people = [r.contact for r in frozen.select_related("contact").order_by("index")]
    assert len(people) == 7
    opted_out, erased, no_identity, withdrawn = people[:4]
    _opt_out(opted_out)
    Contact.objects.filter(pk=erased.pk).update(erased_at=timezone.now())
    # Their number now belongs to someone else (contacts merged): they have
    # no identity on the channel any more.
    ChannelIdentity.objects.filter(contact=no_identity).update(
        contact=Contact.objects.create(first_name="Merged")
    )
    ChannelIdentity.objects.filter(contact=withdrawn).update(marketing_consent=UNKNOWN)

    kept, dropped = set(), {}
    for batch in Batch.objects.filter(campaign=campaign, is_test=False):
        entries, reasons = recheck.recheck_batch(campaign, batch.pk)
        kept |= {entry.pk for entry in entries}
        for reason, ids in reasons.items():
            dropped.setdefault(reason, set()).update(ids)

    statuses = audience.member_statuses(campaign, [p.pk for p in people])
    may_receive_now = {pk for pk, (status, _) in statuses.items() if status == "OK"}
    kept_people = set(
        Recipient.objects.filter(pk__in=kept).values_list("contact_id", flat=True)
    )
    assert kept_people == may_receive_now == {p.pk for p in people[4:]}

    def ids_of(*contacts):
        return set(frozen.filter(contact__in=contacts).values_list("pk", flat=True))

    assert dropped == {
        "opted out after launch": ids_of(opted_out),
        "erased or identity removed after launch": ids_of(erased, no_identity),
        "consent withdrawn after launch": ids_of(withdrawn),
    }


def test_the_recheck_reads_consent_from_the_identity_written_as_frozen(
    launchable_campaign, sender
):
    """A contact with two numbers on the channel: the re-check follows the
    one their message was frozen for, not the other."""
    campaign = launchable_campaign
    launching.launch(campaign, sender)
    recipient = Recipient.objects.filter(
        campaign=campaign, status=Recipient.Status.PENDING
    ).first()
    other = ChannelIdentity.objects.create(
        contact=recipient.contact, channel="SMS", identity="+14155550777"
    )
    record_consent(
        identity=other,
        kind="OPT_OUT",
        purpose="MARKETING",
        source="FORM",
        evidence=Evidence(wording="Opted out on the second number"),
    )
    entries, dropped = recheck.recheck_batch(campaign, recipient.batch_id)
    assert recipient.pk in {entry.pk for entry in entries}
    assert dropped == {}
