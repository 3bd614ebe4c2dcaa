"""Four-eyes approval in the admin: Marketing requests the launch from the
preview page, Senders see it on the admin home and decide on the approval
page, and editing the campaign or its template withdraws it at once."""

import pytest
from django.urls import reverse

from campaigns.models import LaunchApproval
from contacts import roles
from contacts.models import AuditEvent

Decision = LaunchApproval.Decision


@pytest.fixture
def campaign(settings, launchable_campaign):
    """7 recipients; approval needed from 5."""
    settings.APPROVAL_MIN_RECIPIENTS = 5
    settings.APPROVAL_MIN_COST = None
    return launchable_campaign


@pytest.fixture
def second_sender(make_user):
    return make_user("sam", roles.SENDER)


def url(name, campaign):
    return reverse(f"admin:campaigns_campaign_{name}", args=[campaign.pk])


def messages_of(response) -> list[str]:
    return [str(m) for m in response.context["messages"]]


def request_launch(client, user, campaign):
    client.force_login(user)
    return client.post(url("request_launch", campaign), follow=True)


def test_a_marketer_requests_the_launch_from_the_preview_page(
    client, marketer, campaign
):
    client.force_login(marketer)
    page = client.get(url("preview", campaign)).content.decode()
    assert "<strong>Needs approval</strong> by a second Sender before the launch " in (
        page
    )
    assert "(5 recipients or more: this one has 7)" in page
    assert 'id="request-launch-button"' in page
    assert 'id="launch-link"' not in page

    response = request_launch(client, marketer, campaign)

    assert response.redirect_chain[-1][0].endswith("/preview/#approval")
    assert messages_of(response)[0].startswith("Launch requested: the Senders see it")
    approval = LaunchApproval.objects.get()
    assert (approval.requested_by, approval.decision) == (marketer, Decision.PENDING)
    page = response.content.decode()
    assert "<strong>Waiting for approval</strong>: requested by mark at " in page
    assert 'id="request-launch-button"' not in page
    assert AuditEvent.objects.filter(
        action=AuditEvent.Action.APPROVAL, actor=marketer
    ).exists()


def test_a_request_before_the_check_passes_is_refused_with_what_to_fix(
    client, marketer, make_campaign, make_audience, settings
):
    settings.APPROVAL_MIN_RECIPIENTS = 1
    campaign = make_campaign(lists=[make_audience(opted_in=2)])

    response = request_launch(client, marketer, campaign)

    assert messages_of(response) == [
        "Not requested: A launch can be requested once the pre-send check "
        "passes. To fix: Run the pre-send check first."
    ]
    assert not LaunchApproval.objects.exists()


def test_senders_see_waiting_requests_on_the_admin_home(
    client, marketer, sender, campaign
):
    request_launch(client, marketer, campaign)
    client.force_login(sender)

    home = client.get(reverse("admin:index")).content.decode()

    assert 'id="approvals-module"' in home
    assert f'<a href="{url("approval", campaign)}">Spring</a>: 7 recipients, ' in home
    assert "requested by mark at " in home
    client.force_login(marketer)
    assert (
        'id="approvals-module"'
        not in client.get(reverse("admin:index")).content.decode()
    )


def test_the_changelist_shows_a_campaign_waiting_for_approval(
    client, marketer, campaign
):
    request_launch(client, marketer, campaign)

    changelist = client.get(reverse("admin:campaigns_campaign_changelist"))

    expected = '<span class="status-detail status-approval">Waiting for approval'
    assert expected in changelist.content.decode()


def test_the_approval_page_shows_what_is_approved(client, marketer, sender, campaign):
    request_launch(client, marketer, campaign)
    client.force_login(sender)

    page = client.get(url("approval", campaign)).content.decode()

    assert '<pre id="approval-message">Hi ${first_name}, spring sale!</pre>' in page
    assert "<strong>7</strong> at the pre-send check of " in page
    assert "Customers" in page
    assert "<tr><th>Send time</th><td>when launched</td></tr>" in page
    assert campaign.presend["cost"] in page
    assert 'id="approve-button"' in page


def test_a_sender_approves_and_the_launch_goes_with_the_approval_shown(
    client, marketer, sender, campaign, django_capture_on_commit_callbacks
):
    request_launch(client, marketer, campaign)
    client.force_login(sender)
    pending = LaunchApproval.objects.get()

    response = client.post(
        url("approval", campaign),
        {"decision": "approve", "approval": pending.pk},
        follow=True,
    )

    assert messages_of(response) == [
        "Approved the launch of “Spring”: a Sender can launch it now."
    ]
    assert LaunchApproval.objects.get().decision == Decision.APPROVED
    launch_page = client.get(url("launch", campaign)).content.decode()
    assert "<strong>Approved</strong> by sandra at " in launch_page
    assert 'id="launch-problems"' not in launch_page
    with django_capture_on_commit_callbacks(execute=False):
        client.post(url("launch", campaign))
    campaign.refresh_from_db()
    assert campaign.launched_by == sender


def test_the_requester_cannot_approve_even_by_a_crafted_post(
    client, sender, second_sender, campaign
):
    request_launch(client, sender, campaign)
    pending = LaunchApproval.objects.get()
    page = client.get(url("approval", campaign)).content.decode()
    assert 'id="approval-own-request"' in page
    assert 'id="approve-button"' not in page

    response = client.post(
        url("approval", campaign),
        {"decision": "approve", "approval": pending.pk},
        follow=True,
    )

    assert messages_of(response) == [
        "Nothing was decided: You requested this launch, so you cannot approve "
        "or reject it: a second Sender must."
    ]
    assert LaunchApproval.objects.get().decision == Decision.PENDING


def test_a_marketing_user_cannot_approve(client, marketer, make_user, campaign):
    request_launch(client, marketer, campaign)
    colleague = make_user("mia", roles.MARKETING)
    client.force_login(colleague)
    page = client.get(url("approval", campaign)).content.decode()
    assert 'id="approval-not-sender"' in page

    response = client.post(
        url("approval", campaign),
        {"decision": "approve", "approval": LaunchApproval.objects.get().pk},
        follow=True,
    )

    assert messages_of(response)[0].startswith("Nothing was decided: Only a Sender")
    assert LaunchApproval.objects.get().decision == Decision.PENDING


def test_a_sender_rejects_with_a_reason_the_preview_shows(
    client, marketer, sender, campaign
):
    request_launch(client, marketer, campaign)
    client.force_login(sender)
    pending = LaunchApproval.objects.get()

    empty = client.post(
        url("approval", campaign),
        {"decision": "reject", "approval": pending.pk, "reason": ""},
        follow=True,
    )
    assert messages_of(empty) == [
        "Nothing was decided: Say why you reject the launch: the requester reads it."
    ]
    client.post(
        url("approval", campaign),
        {"decision": "reject", "approval": pending.pk, "reason": "Wrong list"},
    )

    client.force_login(marketer)
    page = client.get(url("preview", campaign)).content.decode()
    assert "<strong>Rejected</strong> by sandra at " in page
    assert "Wrong list" in page
    assert 'id="request-launch-button"' in page  # may ask again


def campaign_form(campaign, **fields):
    data = {
        "name": campaign.name,
        "template": campaign.template_id,
        "purpose": campaign.purpose,
        "lists": [lst.pk for lst in campaign.lists.all()],
        "seed_list": "",
        "send_mode": "now",
        "send_time_zone": "",
        "channel": "SMS",
        "channel_priority_order": "",
        "ttl_seconds": "",
        "sms_sender": "",
        "campaign_values": "{}",
        # The browser sends the initial value of fields with a callable default.
        "initial-campaign_values": "{}",
    }
    data.update(fields)
    return data


def test_editing_the_campaign_withdraws_its_approval_at_once(
    client, marketer, sender, second_sender, campaign
):
    request_launch(client, marketer, campaign)
    client.force_login(sender)
    client.post(
        url("approval", campaign),
        {"decision": "approve", "approval": LaunchApproval.objects.get().pk},
    )

    client.force_login(marketer)
    response = client.post(
        url("change", campaign),
        campaign_form(campaign, ttl_seconds="3600"),
        follow=True,
    )

    assert response.status_code == 200
    assert (
        "The launch approval was withdrawn because the campaign changed: run the "
        "pre-send check and request the launch again." in messages_of(response)
    )
    approval = LaunchApproval.objects.get()
    assert approval.withdrawn_at is not None
    assert approval.withdrawn_reason == (
        "the campaign was edited by mark (ttl_seconds)"
    )
    page = client.get(url("change", campaign)).content.decode()
    assert "<strong>Withdrawn</strong> at " in page
    assert "because the campaign was edited by mark (ttl_seconds)." in page
    assert AuditEvent.objects.filter(
        action=AuditEvent.Action.APPROVAL, summary__startswith="Withdrew"
    ).exists()


def test_changing_the_audience_lists_withdraws_the_request(
    client, marketer, campaign, make_list
):
    request_launch(client, marketer, campaign)
    lists = [*campaign.lists.all(), make_list("VIP")]

    client.post(
        url("change", campaign),
        campaign_form(campaign, lists=[lst.pk for lst in lists]),
    )

    approval = LaunchApproval.objects.get()
    assert approval.withdrawn_reason == "the campaign was edited by mark (lists)"


def test_saving_the_campaign_unchanged_keeps_the_approval(client, marketer, campaign):
    request_launch(client, marketer, campaign)

    client.post(url("change", campaign), campaign_form(campaign))

    assert LaunchApproval.objects.get().withdrawn_at is None


def test_editing_the_template_withdraws_the_approval_of_its_drafts(
    client, marketer, sender, campaign
):
    request_launch(client, marketer, campaign)
    client.force_login(sender)
    client.post(
        url("approval", campaign),
        {"decision": "approve", "approval": LaunchApproval.objects.get().pk},
    )
    template = campaign.template
    first = template.parameters.get()

    client.force_login(marketer)
    response = client.post(
        reverse("admin:campaigns_messagetemplate_change", args=[template.pk]),
        {
            "name": template.name,
            "kind": "TEXT",
            "text": "Hi ${first_name}, everything must go!",
            "title": "",
            "description": "",
            "media_url": "",
            "choices": "",
            "template_channel": "WHATSAPP",
            "template_id": "",
            "template_language": "",
            "template_parameters": "{}",
            "parameters-TOTAL_FORMS": 1,
            "parameters-INITIAL_FORMS": 1,
            "parameters-0-id": first.pk,
            "parameters-0-template": template.pk,
            "parameters-0-source": first.source,
            "parameters-0-contact_field": first.contact_field,
            "parameters-0-attribute": "",
            "parameters-0-default": "",
        },
        follow=True,
    )

    assert (
        "The launch approval or request of 1 draft campaign using this template "
        "was withdrawn: they need a new pre-send check and request."
        in messages_of(response)
    )
    approval = LaunchApproval.objects.get()
    assert approval.withdrawn_reason == "its template “Spring” was edited by mark"
    client.force_login(sender)
    page = client.get(url("launch", campaign)).content.decode()
    assert 'id="launch-problems"' in page
    assert "The last approval was withdrawn: its template “Spring” was edited" in page


def test_the_launch_page_shows_the_audience_now_against_the_check(
    client, sender, campaign, make_contact, settings
):
    settings.APPROVAL_MIN_RECIPIENTS = 0
    make_contact(consent="OPTED_IN", lists=[campaign.lists.get()])
    client.force_login(sender)

    page = client.get(url("launch", campaign)).content.decode()

    assert "<th>On the lists now</th><td>9" in page
    assert "(8 at the check; a change of up to 100 is accepted)" in page
