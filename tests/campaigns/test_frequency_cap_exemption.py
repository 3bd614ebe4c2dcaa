"""Only Compliance exempts a campaign from the frequency cap, with a reason, audited;
and every page that describes a campaign says what the cap did to it."""

from datetime import timedelta

import pytest
from django.contrib.auth.models import Group
from django.core.exceptions import PermissionDenied
from django.urls import reverse
from django.utils import timezone

from campaigns.authoring import presend
from campaigns.compliance import cap_exemption
from campaigns.models import Campaign
from campaigns.tracking import dashboard
from contacts import roles
from contacts.models import AuditEvent, Contact

WEEK_RULE = "frequency cap: 2 marketing messages in 7 days"
REASON = "Product recall notice, approved by legal (ticket 4411)"


@pytest.fixture
def capped(make_launchable, message_sent):
    """A checked marketing draft to seven customers, one of whom (the first)
    had two marketing messages this week, so the cap leaves them out."""
    campaign = make_launchable()
    first = Contact.objects.get(identities__identity="+14155550000")
    for days in (2, 3):
        message_sent(first, timezone.now() - timedelta(days=days))
    presend.run_presend_check(campaign)
    campaign.refresh_from_db()
    return campaign


def url(name: str, campaign: Campaign) -> str:
    return reverse(f"admin:campaigns_campaign_{name}", args=[campaign.pk])


def exemption_audits():
    return AuditEvent.objects.filter(action=AuditEvent.Action.EXEMPTION)


def test_only_the_compliance_role_holds_the_exemption_permission(db):
    holders = {
        group.name
        for group in Group.objects.filter(permissions__codename="exempt_frequency_cap")
    }
    assert holders == {roles.COMPLIANCE}


@pytest.mark.parametrize("persona", ["marketer", "sender"])
def test_marketing_and_senders_can_neither_see_nor_use_the_exemption(
    client, capped, persona, request
):
    client.force_login(request.getfixturevalue(persona))
    page = client.get(url("change", capped)).content.decode()
    assert 'id="cap-applied"' in page
    assert "cap-exempt-form" not in page
    response = client.post(url("cap_exemption", capped), {"reason": REASON})
    assert response.status_code == 403
    capped.refresh_from_db()
    assert capped.cap_exempt_at is None
    assert not exemption_audits().exists()


def test_the_service_itself_refuses_anyone_but_compliance(capped, marketer, sender):
    for user in (marketer, sender):
        with pytest.raises(PermissionDenied):
            cap_exemption.exempt_from_cap(capped, user, REASON)
        with pytest.raises(PermissionDenied):
            cap_exemption.withdraw_exemption(capped, user)
    assert not exemption_audits().exists()


def test_a_compliance_user_exempts_a_campaign_with_a_reason_and_it_is_audited(
    client, capped, compliance_admin
):
    client.force_login(compliance_admin)
    page = client.get(url("change", capped)).content.decode()
    assert 'id="cap-exempt-form"' in page

    response = client.post(
        url("cap_exemption", capped),
        {"action": "exempt", "reason": REASON},
        follow=True,
    )

    capped.refresh_from_db()
    assert capped.cap_exempt_by == compliance_admin
    assert capped.cap_exempt_at is not None
    assert capped.cap_exempt_reason == REASON
    (audit,) = exemption_audits()
    assert audit.actor == compliance_admin
    assert audit.target_id == str(capped.pk)
    assert REASON in audit.summary
    assert audit.details == {
        "guard": "frequency_cap",
        "exempt": True,
        "reason": REASON,
    }
    page = response.content.decode()
    assert "The campaign is exempt from the frequency cap." in page
    assert 'id="cap-exempt"' in page
    assert REASON in page
    assert "cap-withdraw-form" in page


def test_an_exemption_needs_a_reason(client, capped, compliance_admin):
    client.force_login(compliance_admin)
    response = client.post(
        url("cap_exemption", capped), {"action": "exempt", "reason": "  "}, follow=True
    )
    assert "Give the reason for the exemption" in response.content.decode()
    capped.refresh_from_db()
    assert capped.cap_exempt_at is None
    assert not exemption_audits().exists()


def test_the_exemption_is_only_asked_with_post(client, capped, compliance_admin):
    client.force_login(compliance_admin)
    assert client.get(url("cap_exemption", capped)).status_code == 405


def test_an_exempt_campaign_reaches_people_over_the_cap_once_checked_again(
    client, capped, compliance_admin, marketer
):
    assert capped.presend["frequency_cap"]["excluded"] == 1
    cap_exemption.exempt_from_cap(capped, compliance_admin, REASON)
    capped.refresh_from_db()
    # The check no longer describes the campaign: the launch waits for a new one.
    can, why = presend.campaign_can_launch(capped)
    assert not can
    assert any("changed since the last pre-send check" in r for r in why)

    result = presend.run_presend_check(capped)
    assert (result.ok, result.excluded) == (7, 1)  # only Olga, opted out
    capped.refresh_from_db()
    cap = capped.presend["frequency_cap"]
    assert cap["state"] == "not applied: the campaign is exempt"
    assert cap["exempt"]["by"] == "carla"
    assert cap["exempt"]["reason"] == REASON
    client.force_login(marketer)
    page = client.get(url("preview", capped)).content.decode()
    assert "not applied: the campaign is exempt" in page
    assert REASON in page


def test_withdrawing_the_exemption_is_audited_and_the_cap_applies_again(
    client, capped, compliance_admin
):
    cap_exemption.exempt_from_cap(capped, compliance_admin, REASON)
    client.force_login(compliance_admin)
    client.post(
        url("cap_exemption", capped), {"action": "withdraw", "reason": "Recall over"}
    )
    capped.refresh_from_db()
    assert (capped.cap_exempt_at, capped.cap_exempt_by) == (None, None)
    withdrawal = exemption_audits().latest("pk")
    assert withdrawal.actor == compliance_admin
    assert withdrawal.details["exempt"] is False
    assert withdrawal.details["previous_reason"] == REASON
    assert "Withdrew the frequency-cap exemption" in withdrawal.summary
    assert presend.run_presend_check(capped).problems["frequency_cap:2/7d"].count == 1


def test_a_launched_campaign_can_no_longer_be_exempted(
    capped, compliance_admin, launched_campaign
):
    launched = launched_campaign(capped, dispatch=False)
    with pytest.raises(cap_exemption.ExemptionRefused, match="only before the launch"):
        cap_exemption.exempt_from_cap(launched, compliance_admin, REASON)
    assert not exemption_audits().exists()


def test_a_transactional_campaign_has_nothing_to_exempt(capped, compliance_admin):
    Campaign.objects.filter(pk=capped.pk).update(purpose="TRANSACTIONAL")
    with pytest.raises(cap_exemption.ExemptionRefused, match="not capped"):
        cap_exemption.exempt_from_cap(capped, compliance_admin, REASON)


def test_an_exempt_campaigns_messages_still_count_for_later_campaigns(
    sinch, capped, compliance_admin, launched_campaign, make_campaign
):
    cap_exemption.exempt_from_cap(capped, compliance_admin, REASON)
    presend.run_presend_check(capped)
    exempt = launched_campaign(capped)  # submitted to the simulator
    assert exempt.recipients.filter(status="SUBMITTED").count() == 7

    later = make_campaign(capped.template, capped.lists.all(), "Summer")
    result = presend.run_presend_check(later)
    assert result.ok == 0
    assert result.problems["frequency_cap:2/7d"].count == 1  # 3 this week
    assert result.problems["frequency_cap:1/1d"].count == 6  # 1 today


def test_the_check_launch_and_dashboard_pages_show_who_the_cap_left_out(
    client, capped, sender, launched_campaign
):
    client.force_login(sender)
    preview = client.get(url("preview", capped)).content.decode()
    assert 'id="presend-cap"' in preview
    assert "<strong>1</strong> excluded by the frequency cap" in preview
    assert f"<strong>1</strong> \u00d7 {WEEK_RULE}: " in preview
    launch = client.get(url("launch", capped)).content.decode()
    assert "1 excluded by the frequency cap (at most 2 per 7 days" in launch

    launched = launched_campaign(capped, dispatch=False)
    dashboard = client.get(url("dashboard", launched)).content.decode()
    assert '<p id="cap-excluded"><strong>1</strong> excluded by the frequency cap' in (
        dashboard
    )
    assert WEEK_RULE.capitalize() in dashboard


def test_the_dashboard_counts_the_cap_exactly_when_it_samples_the_reasons(
    client, capped, sender, launched_campaign, monkeypatch
):
    launched = launched_campaign(capped, dispatch=False)
    monkeypatch.setattr(dashboard, "BREAKDOWN_SCAN", 1)  # sees one exclusion of 2
    client.force_login(sender)
    page = client.get(url("dashboard", launched)).content.decode()
    assert "Reasons of the first 1 exclusions (of 2)" in page
    assert '<p id="cap-excluded"><strong>1</strong> excluded by the frequency cap' in (
        page
    )
