"""Retrying failed recipients: a follow-up draft for those whose message failed.

Transient failures are retried by default; permanent ones only when a person
ticks the box. Each person once, never a test send, never someone erased or
opted out since; only once the campaign has finished; audited.
"""

import re

import pytest
from django.urls import reverse

from campaigns.authoring import presend
from campaigns.models import Batch, Campaign, Recipient
from campaigns.tracking import failures, follow_up_campaigns
from contacts.models import AuditEvent, ConsentState, ListMembership
from contacts.services.consent import Evidence, record_opt_out_for_contacts
from contacts.services.erasure import erase_contact
from sinch import wire

IN = ConsentState.OPTED_IN
S, R = Campaign.Status, Recipient.Status
TRANSIENT, PERMANENT = failures.TRANSIENT, failures.PERMANENT

# Sinch's reason codes (spec §5.4).
SINCH_REASON_CODES = [
    "UNKNOWN",
    "INTERNAL_ERROR",
    "RATE_LIMITED",
    "RECIPIENT_INVALID_CHANNEL_IDENTITY",
    "RECIPIENT_NOT_REACHABLE",
    "RECIPIENT_NOT_OPTED_IN",
    "OUTSIDE_ALLOWED_SENDING_WINDOW",
    "CHANNEL_FAILURE",
    "CHANNEL_BAD_CONFIGURATION",
    "CHANNEL_CONFIGURATION_MISSING",
    "MEDIA_TYPE_UNSUPPORTED",
    "MEDIA_TOO_LARGE",
    "MEDIA_NOT_REACHABLE",
    "NO_CHANNELS_LEFT",
    "TEMPLATE_NOT_FOUND",
    "TEMPLATE_INSUFFICIENT_PARAMETERS",
    "TEMPLATE_NON_EXISTING_LANGUAGE_OR_VERSION",
    "DELIVERY_TIMED_OUT",
    "DELIVERY_REJECTED_DUE_TO_POLICY",
    "CONTACT_NOT_FOUND",
    "BAD_REQUEST",
    "UNKNOWN_APP",
    "NO_CHANNEL_IDENTITY_FOR_CONTACT",
    "CHANNEL_REJECT",
    "NO_PERMISSION",
    "NO_PROFILE_AVAILABLE",
    "UNSUPPORTED_OPERATION",
    "INACTIVE_CREDENTIAL",
    "MESSAGE_EXPIRED",
    "MESSAGE_SPLIT_REQUIRED",
    "DELIVERY_REPORT_TIME_OUT",
]


# --- classification ---------------------------------------------------------


@pytest.mark.parametrize(
    "code",
    [
        "RECIPIENT_NOT_REACHABLE",
        "DELIVERY_TIMED_OUT",
        "CHANNEL_FAILURE",
        "RATE_LIMITED",
        "INTERNAL_ERROR",
        "MESSAGE_EXPIRED",
    ],
)
def test_failures_that_may_pass_later_are_transient(code):
    assert failures.classify(code) == TRANSIENT


@pytest.mark.parametrize(
    "code",
    [
        "RECIPIENT_INVALID_CHANNEL_IDENTITY",
        "RECIPIENT_NOT_OPTED_IN",
        "DELIVERY_REJECTED_DUE_TO_POLICY",
        "TEMPLATE_NOT_FOUND",
        "TEMPLATE_INSUFFICIENT_PARAMETERS",
        "MEDIA_TOO_LARGE",
        "MEDIA_NOT_REACHABLE",
        "CONTACT_NOT_FOUND",
        "NO_CHANNEL_IDENTITY_FOR_CONTACT",
        "BAD_REQUEST",
        "UNKNOWN",
        # The person may have got it: never resent without someone deciding.
        "DELIVERY_REPORT_TIME_OUT",
    ],
)
def test_failures_that_will_fail_again_are_permanent(code):
    assert failures.classify(code) == PERMANENT


def test_an_unknown_code_and_a_failed_batch_are_permanent_the_safe_side():
    assert failures.classify("SOMETHING_SINCH_ADDS_LATER") == PERMANENT
    assert (
        "does not know" in failures.describe("SOMETHING_SINCH_ADDS_LATER").explanation
    )
    refused = Recipient(failure_code="", reason="Invalid argument: bad sender")
    assert failures.classify_recipient(refused) == PERMANENT
    assert failures.describe("").code == failures.BATCH_FAILED


def test_every_sinch_reason_code_has_its_own_plain_explanation():
    for code in SINCH_REASON_CODES:
        kind = failures.describe(code)
        assert code in failures.KINDS, code
        assert kind.label, code
        assert len(kind.explanation) > 40, code
        # Written for marketers, not Sinch's own wording.
        assert kind.explanation != wire.REASON_DESCRIPTIONS.get(code), code
    assert set(wire.REASON_DESCRIPTIONS) <= set(failures.KINDS)


# --- a finished campaign with failures ----------------------------------------


@pytest.fixture
def seeds(make_list, make_contact):
    seed = make_list("Seeds", seed=True)
    # Outside make_contact's own +1415555NNNN numbers: no clash, whatever ran first.
    make_contact("+14155560900", consent=IN, lists=[seed], first_name="Sid")
    return seed


@pytest.fixture
def campaign(make_template, make_campaign, make_contact, make_list, seeds):
    """A submitted campaign whose recipients ended in every kind of way."""
    template = make_template(
        "Spring",
        "Hi ${first_name}, ${offer}!",
        parameters={"offer": {"source": "CAMPAIGN"}},
    )
    customers = make_list("Customers")
    campaign = make_campaign(
        template,
        [customers],
        "Spring sale",
        channel="SMS",
        channel_priority_order=["SMS"],
        purpose="MARKETING",
        ttl_seconds=3600,
        sms_sender="MyShop",
        channel_properties={"SMS_FLASH_MESSAGE": "true"},
        campaign_values={"offer": "20% off"},
        seed_list=seeds,
        send_time_zone="Europe/Berlin",
    )
    batch = Batch.objects.create(campaign=campaign, sequence=1, metadata_key="k-1")
    test_batch = Batch.objects.create(
        campaign=campaign, sequence=1, is_test=True, metadata_key="k-t1"
    )
    people = {}
    index = iter(range(100))

    def recipient(name, status, code="", reason="", *, test=False, contact=None):
        if contact is None:
            contact = make_contact(consent=IN, lists=[customers], first_name=name)
            people[name] = contact
        Recipient.objects.create(
            campaign=campaign,
            batch=test_batch if test else batch,
            index=next(index),
            contact=contact,
            is_test=test,
            identity=contact.identities.get().identity,
            status=status,
            failure_code=code,
            reason=reason,
        )

    recipient("Ana", R.FAILED, "RECIPIENT_NOT_REACHABLE")
    recipient("Ben", R.FAILED, "DELIVERY_TIMED_OUT")
    recipient("Cat", R.FAILED, "RECIPIENT_INVALID_CHANNEL_IDENTITY")
    recipient("Dan", R.FAILED, reason="Invalid argument: bad sender")
    recipient("Eve", R.FAILED, "SOMETHING_SINCH_ADDS_LATER")
    recipient("Fay", R.DELIVERED)
    recipient("Gus", R.EXCLUDED, reason="no consent record")
    recipient("Ivy", R.FAILED, "CHANNEL_FAILURE")  # opts out below
    recipient("Jon", R.FAILED, "MESSAGE_EXPIRED")  # erased below
    # A test send that failed: never retried, neither the seed nor Ana again.
    recipient("Tia", R.FAILED, "RECIPIENT_NOT_REACHABLE", test=True)
    recipient("", R.FAILED, "RATE_LIMITED", test=True, contact=people["Ana"])
    # Ana failed twice (e.g. a fallback channel too): still one person.
    recipient("", R.FAILED, "RATE_LIMITED", contact=people["Ana"])

    record_opt_out_for_contacts(
        contacts=[people["Ivy"].pk],
        purposes=["MARKETING"],
        evidence=Evidence(wording="Replied STOP"),
        actor=None,
    )
    erase_contact(contact=people["Jon"], actor=None)
    Campaign.objects.filter(pk=campaign.pk).update(status=S.SUBMITTED)
    campaign.refresh_from_db()
    campaign.people = people
    return campaign


def _audience(follow_up: Campaign) -> set[str]:
    [audience] = follow_up.lists.all()
    return {
        m.contact.first_name
        for m in ListMembership.objects.filter(contact_list=audience).select_related(
            "contact"
        )
    }


def test_by_default_only_transient_failures_are_retried(campaign, marketer):
    follow_up = follow_up_campaigns.create_retry_campaign(campaign, marketer)
    assert _audience(follow_up) == {"Ana", "Ben"}


def test_permanent_failures_are_retried_only_when_asked(campaign, marketer):
    follow_up = follow_up_campaigns.create_retry_campaign(
        campaign, marketer, include_permanent=True
    )
    assert _audience(follow_up) == {"Ana", "Ben", "Cat", "Dan", "Eve"}


def test_each_person_is_in_the_follow_up_once_and_test_sends_never(campaign, marketer):
    follow_up = follow_up_campaigns.create_retry_campaign(
        campaign, marketer, include_permanent=True
    )
    members = ListMembership.objects.filter(contact_list__campaigns=follow_up)
    assert members.filter(contact=campaign.people["Ana"]).count() == 1
    assert members.count() == 5
    assert not members.filter(contact__first_name__in=["Tia", "Sid"]).exists()


def test_people_erased_or_opted_out_since_are_left_out_and_counted(campaign):
    found = follow_up_campaigns.failed_recipients(campaign, (TRANSIENT,))
    # Ana twice, Ben, Ivy, Jon: four people, two of them gone since.
    assert (found.total, found.people) == (5, 4)
    assert (found.opted_out, found.erased, found.retryable) == (1, 1, 2)


def test_an_erased_contact_is_left_out_even_without_an_opt_out_on_record(
    campaign, marketer
):
    jon = campaign.people["Jon"]
    jon.identities.update(marketing_consent=IN)
    follow_up = follow_up_campaigns.create_retry_campaign(campaign, marketer)
    assert _audience(follow_up) == {"Ana", "Ben"}
    assert follow_up_campaigns.failed_recipients(campaign, (TRANSIENT,)).erased == 1


def test_failed_recipients_are_counted_by_class_and_code(campaign):
    found = follow_up_campaigns.failed_recipients(campaign)
    assert found.by_class == {TRANSIENT: 5, PERMANENT: 3}
    codes = {g.kind.code: g.recipients for g in found.groups}
    assert codes == {
        "RECIPIENT_NOT_REACHABLE": 1,
        "DELIVERY_TIMED_OUT": 1,
        "RATE_LIMITED": 1,
        "CHANNEL_FAILURE": 1,
        "MESSAGE_EXPIRED": 1,
        "RECIPIENT_INVALID_CHANNEL_IDENTITY": 1,
        failures.BATCH_FAILED: 1,
        "SOMETHING_SINCH_ADDS_LATER": 1,
    }
    [batch] = [g for g in found.groups if g.kind.code == failures.BATCH_FAILED]
    assert batch.reasons == [("Invalid argument: bad sender", 1)]
    assert [g.kind.is_transient for g in found.groups] == [True] * 5 + [False] * 3


def test_the_follow_up_is_a_draft_with_the_same_message_and_settings(
    campaign, marketer
):
    follow_up = follow_up_campaigns.create_retry_campaign(campaign, marketer)
    assert follow_up.name == "Spring sale — retry 1"
    assert follow_up.status == S.DRAFT
    assert follow_up.parent == campaign
    assert follow_up.created_by == marketer
    assert follow_up.send_at is None  # when launched
    for field in (
        "template",
        "channel",
        "channel_priority_order",
        "purpose",
        "ttl_seconds",
        "sms_sender",
        "channel_properties",
        "campaign_values",
        "seed_list",
    ):
        assert getattr(follow_up, field) == getattr(campaign, field), field
    assert list(follow_up.lists.all()) != list(campaign.lists.all())
    follow_up.full_clean()
    second = follow_up_campaigns.create_retry_campaign(campaign, marketer)
    assert second.name == "Spring sale — retry 2"


def test_the_follow_up_goes_through_the_normal_pre_send_check(campaign, marketer):
    follow_up = follow_up_campaigns.create_retry_campaign(campaign, marketer)
    presend.run_presend_check(follow_up)
    follow_up.refresh_from_db()
    assert (follow_up.presend["audience"], follow_up.presend["ok"]) == (2, 2)


def test_the_retry_is_audited_with_who_what_and_how_many(campaign, marketer):
    follow_up = follow_up_campaigns.create_retry_campaign(
        campaign, marketer, include_permanent=True
    )
    event = AuditEvent.objects.get(action=AuditEvent.Action.RETRY)
    assert event.actor == marketer
    assert event.target_id == str(campaign.pk)
    assert "permanent failures included" in event.summary
    assert event.details["follow_up"] == follow_up.pk
    assert event.details["people"] == 5
    assert event.details["include_permanent"] is True
    assert event.details["left_out_opted_out"] == 1


@pytest.mark.parametrize(
    "status", [S.DRAFT, S.LAUNCHING, S.SCHEDULED, S.SUBMITTING, S.PAUSED]
)
def test_a_campaign_that_has_not_finished_cannot_be_retried(campaign, marketer, status):
    Campaign.objects.filter(pk=campaign.pk).update(status=status)
    campaign.refresh_from_db()
    with pytest.raises(follow_up_campaigns.RetryRefused, match="once it has finished"):
        follow_up_campaigns.create_retry_campaign(campaign, marketer)
    assert not campaign.retries.exists()
    assert not AuditEvent.objects.filter(action=AuditEvent.Action.RETRY).exists()


@pytest.mark.parametrize("status", [S.SUBMITTED, S.COMPLETED, S.CANCELLED, S.FAILED])
def test_a_finished_campaign_can_be_retried(campaign, marketer, status):
    Campaign.objects.filter(pk=campaign.pk).update(status=status)
    campaign.refresh_from_db()
    assert (
        follow_up_campaigns.create_retry_campaign(campaign, marketer).parent == campaign
    )


def test_only_permanent_failures_are_refused_unless_included(campaign, marketer):
    Recipient.objects.filter(
        campaign=campaign, failure_code__in=failures.TRANSIENT_CODES
    ).update(status=R.DELIVERED)
    with pytest.raises(
        follow_up_campaigns.RetryRefused, match="permanent failures not included"
    ):
        follow_up_campaigns.create_retry_campaign(campaign, marketer)
    follow_up = follow_up_campaigns.create_retry_campaign(
        campaign, marketer, include_permanent=True
    )
    assert _audience(follow_up) == {"Cat", "Dan", "Eve"}


def test_nobody_left_to_retry_is_refused(campaign, marketer):
    record_opt_out_for_contacts(
        contacts=[campaign.people["Ana"].pk, campaign.people["Ben"].pk],
        purposes=["MARKETING"],
        evidence=Evidence(wording="Replied STOP"),
        actor=None,
    )
    with pytest.raises(follow_up_campaigns.RetryRefused, match="opted out"):
        follow_up_campaigns.create_retry_campaign(campaign, marketer)
    assert not campaign.retries.exists()


def test_an_opt_out_for_another_purpose_does_not_leave_someone_out(campaign, marketer):
    record_opt_out_for_contacts(
        contacts=[campaign.people["Ben"].pk],
        purposes=["TRANSACTIONAL"],
        evidence=Evidence(wording="No receipts by SMS"),
        actor=None,
    )
    assert _audience(follow_up_campaigns.create_retry_campaign(campaign, marketer)) == {
        "Ana",
        "Ben",
    }


def test_the_page_warns_when_the_template_changed_since_launch(campaign):
    from campaigns.authoring.rendering import freeze_message

    freeze_message(campaign)
    assert not follow_up_campaigns.template_changed_since_launch(campaign)
    campaign.template.text = "Hello ${first_name}, ${offer}!"
    campaign.template.save()
    campaign.template.refresh_from_db()
    assert follow_up_campaigns.template_changed_since_launch(campaign)


# --- admin -------------------------------------------------------------------


def text(page: str) -> str:
    """The page's words, without tags and extra spaces."""
    return " ".join(re.sub(r"<[^>]+>", " ", page).split()).replace(" :", ":")


def url(campaign):
    return reverse("admin:campaigns_campaign_retry", args=[campaign.pk])


def test_a_marketer_sees_the_failures_by_class_with_what_they_mean(
    client, campaign, marketer
):
    client.force_login(marketer)
    page = client.get(url(campaign)).content.decode()
    words = text(page)
    assert "8 recipients failed: 5 transient (may succeed" in words
    assert "and 3 permanent (will fail again" in words
    not_reachable = failures.describe("RECIPIENT_NOT_REACHABLE")
    assert not_reachable.label in page
    assert "out of coverage" in page
    assert "Invalid argument: bad sender" in page
    # Who the follow-up would hold, and who is left out.
    assert "Transient failures only: 2 people (1 opted out since and 1 erased" in words
    assert "With the permanent failures too: 5 people" in words
    # Permanent failures: an unticked box with a warning.
    assert 'name="include_permanent" id="id_include_permanent">' in page
    assert "never retried unless you tick this box" in page
    transient = page.index('id="retry-transient"')
    permanent = page.index('id="retry-permanent"')
    assert page.index("RECIPIENT_NOT_REACHABLE") in range(transient, permanent)
    assert page.index("RECIPIENT_INVALID_CHANNEL_IDENTITY") > permanent


def test_a_marketer_creates_the_follow_up_draft_and_lands_on_it(
    client, campaign, marketer
):
    client.force_login(marketer)
    response = client.post(url(campaign), follow=True)
    follow_up = campaign.retries.get()
    assert response.redirect_chain[-1][0] == reverse(
        "admin:campaigns_campaign_change", args=[follow_up.pk]
    )
    page = response.content.decode()
    assert "created for 2 people" in page
    assert "Retry of “Spring sale”" in page
    assert _audience(follow_up) == {"Ana", "Ben"}


def test_ticking_the_box_includes_the_permanent_failures_with_a_warning(
    client, campaign, marketer
):
    client.force_login(marketer)
    response = client.post(url(campaign), {"include_permanent": "on"}, follow=True)
    assert _audience(campaign.retries.get()) == {"Ana", "Ben", "Cat", "Dan", "Eve"}
    assert "most likely fail again" in response.content.decode()


def test_a_refused_retry_says_why_and_creates_nothing(client, campaign, marketer):
    Campaign.objects.filter(pk=campaign.pk).update(status=S.PAUSED)
    client.force_login(marketer)
    page = client.get(url(campaign)).content.decode()
    assert "once it has finished" in page
    assert 'id="retry-form"' not in page
    response = client.post(url(campaign), follow=True)
    assert "once it has finished" in response.content.decode()
    assert not campaign.retries.exists()


def test_the_campaign_page_links_to_the_retry_for_those_who_may_use_it(
    client, campaign, marketer, viewer
):
    change = reverse("admin:campaigns_campaign_change", args=[campaign.pk])
    client.force_login(marketer)
    assert url(campaign) in client.get(change).content.decode()
    client.force_login(viewer)
    assert url(campaign) not in client.get(change).content.decode()


@pytest.mark.parametrize("persona", ["viewer", "compliance_admin"])
def test_people_who_may_not_add_campaigns_cannot_retry(
    client, campaign, request, persona
):
    client.force_login(request.getfixturevalue(persona))
    assert client.get(url(campaign)).status_code == 403
    assert client.post(url(campaign)).status_code == 403
    assert not campaign.retries.exists()


def test_a_sender_may_retry_too(client, campaign, sender):
    client.force_login(sender)
    assert client.get(url(campaign)).status_code == 200
