"""The audience rule and the numbers it must never send to (issue 11,
deliverables 1 and 2): retired identities and erased numbers are out on every
send path — preview, pre-send check, launch freeze, test send and the re-check
before each Sinch call — with the check done in bulk."""

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from campaigns.authoring import audience, presend, recheck
from campaigns.dispatch import launching, test_send
from campaigns.models import Recipient
from contacts.models import ChannelIdentity, ConsentState, Contact
from contacts.services.consent import Evidence, record_consent
from contacts.services.erasure import erase_contact
from contacts.services.identities import replace_identity
from tests.campaigns.test_test_send import messages_at_sinch

OLD, NEW = "+12012501005", "+12012509999"
IN = ConsentState.OPTED_IN
NUMBER = "+14155550142"  # erased on SMS, still live on WhatsApp for someone
S = Recipient.Status


@pytest.fixture
def erased_elsewhere(make_contact):
    """Sam's WhatsApp number belonged to Eve on SMS, and Eve was erased: the
    number is erased on every phone channel. Returns Sam."""

    def make(lists=()):
        eve = make_contact(NUMBER, consent=IN, first_name="Eve")
        sam = make_contact(
            NUMBER, channel="WHATSAPP", consent=IN, lists=lists, first_name="Sam"
        )
        erase_contact(contact=eve, actor=None)
        return sam

    return make


@pytest.fixture
def whatsapp_campaign(make_campaign, make_whatsapp_template, make_audience):
    """A WhatsApp campaign (a WhatsApp template) to two opted-in people
    (+14155550300, ...301)."""

    def make(**fields):
        customers = make_audience("Customers", 0)
        for n in range(2):
            contact = Contact.objects.create(first_name=f"Ok{n}")
            identity = ChannelIdentity.objects.create(
                contact=contact, channel="WHATSAPP", identity=f"+1415555030{n}"
            )
            _opt_in(identity)
            customers.memberships.create(contact=contact)
        template = make_whatsapp_template("Offer")
        return make_campaign(template, [customers], channel="WHATSAPP", **fields)

    return make


def _opt_in(identity: ChannelIdentity) -> None:
    record_consent(
        identity=identity,
        kind="OPT_IN",
        purpose="MARKETING",
        source="FORM",
        evidence=Evidence(wording="Yes to offers"),
    )


# --- sending never uses a retired identity -------------------------------------


def test_a_retired_number_is_never_sent_to(
    compliance_admin, make_campaign, make_audience
):
    """The old number was opted in; the new one has no consent yet: nobody is
    sent anything until the person says yes for the new number."""
    customers = make_audience("Customers", [OLD])
    person = Contact.objects.get(identities__identity=OLD)
    replace_identity(person.identities.get(), NEW, actor=compliance_admin)
    campaign = make_campaign(lists=[customers])

    assert audience.member_statuses(campaign, [person.pk]) == {
        person.pk: ("EXCLUDED", "no consent record")
    }
    new = person.identities.get(identity=NEW)
    record_consent(
        identity=new,
        kind="OPT_IN",
        purpose="MARKETING",
        source="FORM",
        evidence=Evidence(wording="Yes to offers"),
    )
    row = audience.rows_of(campaign, [person.pk])[0]
    assert row[audience.IDENTITY] == NEW


def test_a_number_replaced_after_launch_is_dropped_at_the_recheck(
    compliance_admin, launchable_campaign, sender
):
    launching.launch(launchable_campaign, sender)
    recipient = Recipient.objects.filter(
        campaign=launchable_campaign, status=Recipient.Status.PENDING
    ).first()
    old = recipient.contact.identities.get(identity=recipient.identity)
    new = replace_identity(old, "+14155550777", actor=compliance_admin)
    record_consent(
        identity=new,
        kind="OPT_IN",
        purpose="MARKETING",
        source="FORM",
        evidence=Evidence(wording="Yes, on my new number"),
    )

    entries, dropped = recheck.recheck_batch(launchable_campaign, recipient.batch_id)

    assert recipient.pk not in {entry.pk for entry in entries}
    assert dropped == {"erased or identity removed after launch": [recipient.pk]}


# --- erased numbers ------------------------------------------------------------


def test_the_pre_send_check_excludes_an_erased_number(
    whatsapp_campaign, erased_elsewhere
):
    campaign = whatsapp_campaign()
    sam = erased_elsewhere(lists=campaign.lists.all())

    result = presend.run_presend_check(campaign)

    assert (result.ok, result.excluded) == (2, 1)
    problem = result.problems[audience.ERASED_NUMBER]
    assert problem.label == "number erased (suppressed)"
    assert [e["contact_id"] for e in problem.examples] == [sam.pk]


def test_the_preview_excludes_an_erased_number(whatsapp_campaign, erased_elsewhere):
    campaign = whatsapp_campaign()
    sam = erased_elsewhere(lists=campaign.lists.all())
    assert audience.member_statuses(campaign, [sam.pk]) == {
        sam.pk: ("EXCLUDED", "number erased (suppressed)")
    }


def test_the_launch_freeze_excludes_an_erased_number(
    whatsapp_campaign, erased_elsewhere, sender
):
    campaign = whatsapp_campaign()
    sam = erased_elsewhere(lists=campaign.lists.all())
    presend.run_presend_check(campaign)
    campaign.refresh_from_db()

    launching.launch(campaign, sender)

    frozen = Recipient.objects.get(campaign=campaign, contact=sam)
    assert (frozen.status, frozen.reason) == (S.EXCLUDED, "number erased (suppressed)")
    assert Recipient.objects.filter(campaign=campaign, status=S.PENDING).count() == 2


def test_a_number_erased_after_launch_is_dropped_at_the_recheck(
    whatsapp_campaign, make_contact, sender
):
    campaign = whatsapp_campaign()
    sam = make_contact(
        NUMBER, channel="WHATSAPP", consent=IN, lists=campaign.lists.all()
    )
    eve = make_contact(NUMBER, consent=IN, first_name="Eve")
    presend.run_presend_check(campaign)
    campaign.refresh_from_db()
    launching.launch(campaign, sender)
    frozen = Recipient.objects.get(campaign=campaign, contact=sam)
    assert frozen.status == S.PENDING

    erase_contact(contact=eve, actor=None)  # Sam's number, erased on SMS
    entries, dropped = recheck.recheck_batch(campaign, frozen.batch_id)

    assert frozen.pk not in {entry.pk for entry in entries}
    assert dropped == {"erased or identity removed after launch": [frozen.pk]}
    assert len(entries) == 2


def test_a_test_send_never_reaches_an_erased_number(
    sinch, control, whatsapp_campaign, erased_elsewhere, make_list, make_contact,
    marketer,
):  # fmt: skip
    seed = make_list("Seed", seed=True)
    campaign = whatsapp_campaign(seed_list=seed)
    colleague = make_contact(
        "+14155550401", channel="WHATSAPP", consent=IN, lists=[seed]
    )
    sam = erased_elsewhere(lists=[seed])

    plan = test_send.plan_test_send(campaign)
    result = test_send.send_test(campaign, marketer)

    assert plan.excluded_by_reason == {"number erased (suppressed)": 1}
    recipients = {r.contact_id: r for r in result.batch.recipients.all()}
    assert recipients[sam.pk].status == S.EXCLUDED
    assert recipients[colleague.pk].status != S.EXCLUDED
    sent = messages_at_sinch(control, result.batch.sinch_batch_id, 1)
    assert [m["identity"] for m in sent] == ["+14155550401"]


def test_the_erased_number_check_is_bulk_not_per_recipient(
    whatsapp_campaign, erased_elsewhere, make_contact
):
    """As many queries for 5 people as for 40: the erased numbers are looked
    up once for the whole walk, not once per person."""
    campaign = whatsapp_campaign()
    erased_elsewhere(lists=campaign.lists.all())

    def queries() -> int:
        with CaptureQueriesContext(connection) as captured:
            presend.run_presend_check(campaign)
        return len(captured)

    few = queries()
    for n in range(35):
        make_contact(
            f"+1415555{n + 600:04d}",
            channel="WHATSAPP",
            consent=IN,
            lists=campaign.lists.all(),
        )
    assert queries() == few
