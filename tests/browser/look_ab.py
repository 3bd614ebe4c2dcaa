# ruff: noqa
"""Throwaway: screenshots of the A/B admin pages (not committed)."""
from datetime import timedelta

import pytest
from django.utils import timezone

from campaigns.models import ABTest, Recipient
from tests.campaigns.test_ab_tests import TEST_FIRST, launch, make_ab
from tests.campaigns.test_receipts import inbound, process, receipt

pytestmark = pytest.mark.django_db(transaction=True)


def test_look(page, login, live_server, screenshot, sender, make_ab, launch, sinch, make_template):
    draft = make_ab(test={**TEST_FIRST, "picking": "confirm"})
    login(sender.username)
    page.goto(f"{live_server.url}/admin/campaigns/campaign/{draft.pk}/change/")
    screenshot("ab-change")
    page.goto(f"{live_server.url}/admin/campaigns/campaign/{draft.pk}/preview/")
    screenshot("ab-preview")
    page.goto(f"{live_server.url}/admin/campaigns/campaign/{draft.pk}/launch/")
    screenshot("ab-launch")
    campaign = launch(draft)
    for r in Recipient.objects.filter(campaign=campaign).exclude(variant="")[:8]:
        receipt(r, "DELIVERED")
    b = Recipient.objects.filter(campaign=campaign, variant="B").first()
    inbound("Yes", identity=b.identity)
    process()
    ABTest.objects.filter(pk=campaign.pk).update(test_sent_at=timezone.now() - timedelta(hours=2))
    page.goto(f"{live_server.url}/admin/campaigns/campaign/{campaign.pk}/dashboard/")
    screenshot("ab-dashboard")
    page.click("#ab-confirm button")
    page.wait_for_selector("#ab-winner")
    screenshot("ab-dashboard-winner")


def test_look_inline(page, login, live_server, sender, make_ab):
    draft = make_ab(test={**TEST_FIRST, "picking": "confirm"})
    login(sender.username)
    page.goto(f"{live_server.url}/admin/campaigns/campaign/{draft.pk}/change/")
    page.locator("#variants-group").screenshot(path="/tmp/screens/ab-inline.png")
    page.locator("#ab_test-group").screenshot(path="/tmp/screens/ab-inline2.png")
