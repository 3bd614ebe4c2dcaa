"""Four-eyes approval: a large or costly campaign goes out only when a second
Sender has approved exactly what is launched (campaigns.compliance.approval).

The launchable campaign has 7 recipients; these tests set the threshold to 5
so that it needs approval.
"""

from decimal import Decimal

import pytest

from campaigns.compliance import approval as approvals
from campaigns.dispatch import launching
from campaigns.models import Campaign, LaunchApproval, MessageTemplate
from contacts import roles
from contacts.models import AuditEvent

Decision = LaunchApproval.Decision


@pytest.fixture
def threshold(settings):
    settings.APPROVAL_MIN_RECIPIENTS = 5
    settings.APPROVAL_MIN_COST = None
    return settings


@pytest.fixture
def second_sender(make_user):
    return make_user("sam", roles.SENDER)


def approval_audits(campaign) -> list[str]:
    return list(
        AuditEvent.objects.filter(
            action=AuditEvent.Action.APPROVAL,
            target_type="campaign",
            target_id=str(campaign.pk),
        )
        .order_by("pk")
        .values_list("summary", flat=True)
    )


def approved(campaign, requester, approver) -> LaunchApproval:
    approvals.request_launch(campaign, requester)
    return approvals.decide(campaign, approver, approve=True)


def test_a_campaign_under_the_threshold_launches_without_approval(
    settings, launched_campaign
):
    settings.APPROVAL_MIN_RECIPIENTS = 8  # the campaign has 7 recipients

    campaign = launched_campaign(dispatch=False)

    assert campaign.status != Campaign.Status.DRAFT
    assert not LaunchApproval.objects.exists()


def test_a_threshold_of_zero_and_no_cost_limit_need_no_approval(
    settings, launched_campaign
):
    settings.APPROVAL_MIN_RECIPIENTS = 0
    settings.APPROVAL_MIN_COST = None

    assert launched_campaign(dispatch=False).status != Campaign.Status.DRAFT


def test_a_sender_cannot_launch_a_campaign_over_the_threshold_alone(
    threshold, launchable_campaign, sender
):
    problems = launching.launch_problems(launchable_campaign)
    assert problems == [
        "This campaign needs approval by a second Sender (5 recipients or more: "
        "this one has 7): request it from the preview page."
    ]

    with pytest.raises(launching.LaunchError, match="needs approval by a second"):
        launching.launch(launchable_campaign, sender)

    launchable_campaign.refresh_from_db()
    assert launchable_campaign.status == Campaign.Status.DRAFT


def test_request_then_approval_by_another_sender_lets_it_launch_audited(
    threshold, launchable_campaign, marketer, sender, django_capture_on_commit_callbacks
):
    campaign = launchable_campaign
    request = approvals.request_launch(campaign, marketer)
    assert request.decision == Decision.PENDING
    assert request.audience == 7
    assert request.lists == [{"id": campaign.lists.get().pk, "name": "Customers"}]
    assert launching.launch_problems(campaign)[0].startswith(
        "Waiting for approval by a second Sender: requested by mark at "
    )

    decided = approvals.decide(campaign, sender, approve=True)
    assert (decided.decision, decided.decided_by) == (Decision.APPROVED, sender)
    assert launching.launch_problems(campaign) == []

    with django_capture_on_commit_callbacks(execute=False):
        launching.launch(campaign, sender)
    campaign.refresh_from_db()
    assert campaign.status != Campaign.Status.DRAFT

    launch_row = AuditEvent.objects.get(action=AuditEvent.Action.LAUNCH)
    assert "approved by sandra at " in launch_row.summary
    assert launch_row.details["approval"] == {
        "id": request.pk,
        "requested_by": "mark",
        "requested_at": request.requested_at.isoformat(),
        "approved_by": "sandra",
        "approved_at": decided.decided_at.isoformat(),
        "fingerprint": request.fingerprint,
        "audience": 7,
    }
    assert len(request.fingerprint) == 64
    assert approval_audits(campaign) == [
        "Requested launch approval of campaign Spring: 7 recipients, "
        f"{campaign.presend['cost']}",
        "Approved the launch of campaign Spring requested by mark (7 recipients)",
    ]


def test_the_requester_cannot_approve_even_as_a_sender(
    threshold, launchable_campaign, sender, second_sender
):
    approvals.request_launch(launchable_campaign, sender)

    with pytest.raises(approvals.ApprovalError, match="You requested this launch"):
        approvals.decide(launchable_campaign, sender, approve=True)
    with pytest.raises(approvals.ApprovalError, match="You requested this launch"):
        approvals.decide(launchable_campaign, sender, approve=False, reason="oops")

    assert LaunchApproval.objects.get().decision == Decision.PENDING
    with pytest.raises(launching.LaunchError, match="Waiting for approval"):
        launching.launch(launchable_campaign, sender)

    approvals.decide(launchable_campaign, second_sender, approve=True)
    assert launching.launch_problems(launchable_campaign) == []


def test_a_marketing_user_cannot_approve(
    threshold, launchable_campaign, marketer, make_user
):
    other_marketer = make_user("mia", roles.MARKETING)
    approvals.request_launch(launchable_campaign, marketer)

    with pytest.raises(approvals.ApprovalError, match="Only a Sender"):
        approvals.decide(launchable_campaign, other_marketer, approve=True)

    assert LaunchApproval.objects.get().decision == Decision.PENDING


def test_a_rejection_needs_a_reason_blocks_the_launch_and_allows_a_new_request(
    threshold, launchable_campaign, marketer, sender
):
    campaign = launchable_campaign
    approvals.request_launch(campaign, marketer)

    with pytest.raises(approvals.ApprovalError, match="Say why you reject"):
        approvals.decide(campaign, sender, approve=False, reason="  ")

    rejected = approvals.decide(
        campaign, sender, approve=False, reason="Wrong offer for this list"
    )
    assert rejected.decision == Decision.REJECTED
    [problem] = launching.launch_problems(campaign)
    assert problem.endswith(
        "sandra rejected the last request: Wrong offer for this list"
    )
    assert approval_audits(campaign)[-1] == (
        "Rejected the launch of campaign Spring requested by mark (7 recipients): "
        "Wrong offer for this list"
    )

    again = approvals.request_launch(campaign, marketer)
    assert again.pk != rejected.pk
    assert LaunchApproval.objects.count() == 2


def test_a_second_request_while_one_waits_is_refused(
    threshold, launchable_campaign, marketer, sender
):
    approvals.request_launch(launchable_campaign, marketer)

    with pytest.raises(approvals.ApprovalError, match="already requested"):
        approvals.request_launch(launchable_campaign, sender)
    assert LaunchApproval.objects.count() == 1


def test_a_launch_is_requested_only_once_the_presend_check_passes(
    threshold, make_campaign, make_audience, marketer
):
    campaign = make_campaign(lists=[make_audience(opted_in=6)])  # never checked

    with pytest.raises(approvals.ApprovalError, match="Run the pre-send check"):
        approvals.request_launch(campaign, marketer)
    assert not LaunchApproval.objects.exists()


def test_an_edit_outside_the_admin_is_caught_at_launch_by_the_fingerprint(
    threshold, launchable_campaign, marketer, sender, second_sender
):
    campaign = launchable_campaign
    approved(campaign, marketer, sender)
    # A change that leaves updated_at (and so the pre-send check) alone.
    Campaign.objects.filter(pk=campaign.pk).update(ttl_seconds=3600)
    campaign.refresh_from_db()

    with pytest.raises(launching.LaunchError) as refused:
        launching.launch(campaign, second_sender)

    assert "The last approval was withdrawn: the campaign changed after the " in str(
        refused.value
    )
    approval = LaunchApproval.objects.get()
    assert approval.withdrawn_at is not None
    assert "the campaign changed after the approval" in approval.withdrawn_reason
    assert approval_audits(campaign)[-1].startswith(
        "Withdrew the launch approval of campaign Spring: the campaign changed"
    )
    campaign.refresh_from_db()
    assert campaign.status == Campaign.Status.DRAFT


def test_a_template_edit_after_approval_withdraws_it_at_launch(
    threshold, launchable_campaign, marketer, sender
):
    approved(launchable_campaign, marketer, sender)
    MessageTemplate.objects.filter(pk=launchable_campaign.template_id).update(
        text="Hi ${first_name}, everything must go!"
    )

    campaign = Campaign.objects.get(pk=launchable_campaign.pk)  # as a page reads it

    with pytest.raises(launching.LaunchError, match="approval was withdrawn"):
        launching.launch(campaign, sender)
    assert LaunchApproval.objects.get().withdrawn_at is not None


def test_a_change_of_the_audience_lists_withdraws_the_approval(
    threshold, launchable_campaign, marketer, sender, make_list
):
    approved(launchable_campaign, marketer, sender)
    launchable_campaign.lists.add(make_list("VIP"))  # no one on it yet

    with pytest.raises(launching.LaunchError, match="approval was withdrawn"):
        launching.launch(launchable_campaign, sender)
    assert LaunchApproval.objects.get().withdrawn_at is not None


def test_the_fingerprint_covers_the_message_and_the_audience_definition(
    launchable_campaign, make_list
):
    from campaigns.compliance.fingerprint import fingerprint

    campaign = launchable_campaign
    before = fingerprint(campaign)
    assert fingerprint(campaign) == before  # stable
    for change in (
        {"channel_priority_order": ["SMS", "WHATSAPP"]},
        {"purpose": "TRANSACTIONAL"},
        {"ttl_seconds": 600},
        {"send_time_zone": "Europe/Berlin"},
        {"sms_sender": "MyShop"},
        {"campaign_values": {"extra": "x"}},
    ):
        edited = Campaign.objects.get(pk=campaign.pk)
        for field, value in change.items():
            setattr(edited, field, value)
        assert fingerprint(edited) != before, change
    campaign.lists.add(make_list())
    assert fingerprint(campaign) != before


def test_an_approval_covers_only_the_audience_size_it_was_given(
    threshold, launchable_campaign, marketer, sender, make_contact
):
    from campaigns.authoring import presend

    threshold.LAUNCH_AUDIENCE_TOLERANCE = "0"
    campaign = launchable_campaign
    approved(campaign, marketer, sender)
    make_contact(consent="OPTED_IN", lists=[campaign.lists.get()])
    presend.run_presend_check(campaign)  # now 8 recipients
    campaign.refresh_from_db()

    assert launching.launch_problems(campaign) == [
        "The approval by sandra no longer holds: it covered 7 recipients and the "
        "pre-send check now finds 8 (more than 0 people apart). The campaign needs "
        "approval by a second Sender again: request it from the preview page."
    ]
    with pytest.raises(launching.LaunchError, match="covered 7 recipients"):
        launching.launch(campaign, sender)
    assert LaunchApproval.objects.get().withdrawn_at is not None


def test_an_approval_holds_for_an_audience_within_the_tolerance(
    threshold, launchable_campaign, marketer, sender, make_contact
):
    from campaigns.authoring import presend

    threshold.LAUNCH_AUDIENCE_TOLERANCE = "1"
    campaign = launchable_campaign
    approved(campaign, marketer, sender)
    make_contact(consent="OPTED_IN", lists=[campaign.lists.get()])
    presend.run_presend_check(campaign)
    campaign.refresh_from_db()

    assert launching.launch_problems(campaign) == []


def test_the_cost_threshold_asks_for_approval_of_a_costly_campaign(
    settings, launchable_campaign
):
    settings.APPROVAL_MIN_RECIPIENTS = 0
    cost = Decimal(launchable_campaign.presend["cost_total"])  # 7 x 0.0075 EUR
    assert cost > 0

    settings.APPROVAL_MIN_COST = cost + Decimal("0.01")
    assert approvals.approval_needed(launchable_campaign) is None
    assert launching.launch_problems(launchable_campaign) == []

    settings.APPROVAL_MIN_COST = cost
    needed = approvals.approval_needed(launchable_campaign)
    assert needed == (
        f"an estimated cost of EUR {cost:,.2f} or more: this one costs EUR {cost:,.2f}"
    )
    assert (
        "needs approval by a second Sender"
        in launching.launch_problems(launchable_campaign)[0]
    )


def test_senders_with_an_address_are_e_mailed_and_the_requester_hears_the_decision(
    threshold,
    launchable_campaign,
    make_user,
    mailoutbox,
    django_capture_on_commit_callbacks,
):
    requester = make_user("mark", roles.MARKETING, email="mark@example.com")
    sandra = make_user("sandra", roles.SENDER, email="sandra@example.com")
    make_user("sam", roles.SENDER)  # no address
    make_user("sid", roles.SENDER, email="sid@example.com", is_active=False)
    make_user("mia", roles.MARKETING, email="mia@example.com")

    with django_capture_on_commit_callbacks(execute=True):
        approvals.request_launch(
            launchable_campaign, requester, link="http://testserver/approve/1/"
        )

    assert [m.to for m in mailoutbox] == [["sandra@example.com"]]
    mail = mailoutbox[0]
    assert mail.subject == "Launch approval requested: Spring"
    assert mail.from_email == threshold.APPROVAL_EMAIL_FROM
    assert "mark asks a second Sender to approve the launch" in mail.body
    assert "7 recipients on SMS (lists: Customers)" in mail.body
    assert "http://testserver/approve/1/" in mail.body

    with django_capture_on_commit_callbacks(execute=True):
        approvals.decide(launchable_campaign, sandra, approve=True)
    assert mailoutbox[1].to == ["mark@example.com"]
    assert mailoutbox[1].subject == "Launch approved: Spring"


def test_no_e_mail_leaves_when_the_request_is_refused(
    threshold,
    launchable_campaign,
    marketer,
    make_user,
    mailoutbox,
    django_capture_on_commit_callbacks,
):
    make_user("sandra", roles.SENDER, email="sandra@example.com")
    Campaign.objects.filter(pk=launchable_campaign.pk).update(presend=None)
    launchable_campaign.refresh_from_db()

    with (
        django_capture_on_commit_callbacks(execute=True),
        pytest.raises(approvals.ApprovalError),
    ):
        approvals.request_launch(launchable_campaign, marketer)
    assert mailoutbox == []


def test_a_sender_who_requests_is_not_e_mailed_about_their_own_request(
    threshold,
    launchable_campaign,
    make_user,
    mailoutbox,
    django_capture_on_commit_callbacks,
):
    sandra = make_user("sandra", roles.SENDER, email="sandra@example.com")
    make_user("sam", roles.SENDER, email="sam@example.com")

    with django_capture_on_commit_callbacks(execute=True):
        approvals.request_launch(launchable_campaign, sandra)

    assert [m.to for m in mailoutbox] == [["sam@example.com"]]
