"""The compliance guards in the benchmarks: a campaign sent at 10:00 in each
recipient's local time, under quiet hours, approved by a second Sender.

`local_time_fields(now)` gives the campaign's send fields: tomorrow (in
Europe/Berlin) at 10:00, in each recipient's zone; with the world-wide
audience of admin_pages.fill(world=True) that makes one send group per zone,
quiet hours (QUIET_HOURS, default 08:00-21:00) with one override,
`ENVIRONMENT`'s QUIET_HOURS_OVERRIDES: Japan's window opens at 11:00, so the
Japanese numbers are held from 10:00 until 11:00 there.
`approve(campaign, sender)` has a Marketing user request the launch and
`sender` approve it, through the same functions as the admin's buttons.
`quiet_hours_breaches` checks the batches' send times independently of the
product (phonenumbers' and zoneinfo's own answers, on a sample).
"""

from datetime import datetime, time, timedelta
from zoneinfo import ZoneInfo

CAMPAIGN_ZONE = "Europe/Berlin"
LOCAL_TIME = time(10, 0)
WINDOW = (time(8, 0), time(21, 0))
OVERRIDES = {"JP": (time(11, 0), time(20, 0))}
ENVIRONMENT = {
    "QUIET_HOURS": "08:00-21:00",
    "QUIET_HOURS_OVERRIDES": "JP=11:00-20:00",
    # Every batch is handed to Sinch at the launch (the waves are within
    # three days), so the dispatch benchmark ends when all are accepted.
    "SINCH_SCHEDULE_AHEAD_HOURS": "72",
}


def use_guard_settings() -> None:
    """Set the guards' settings for this process and the ones it starts."""
    import os

    os.environ.update(ENVIRONMENT)


def local_time_fields(now: datetime) -> dict:
    """Campaign fields: 10:00 local tomorrow, in every recipient's zone."""
    zone = ZoneInfo(CAMPAIGN_ZONE)
    tomorrow = now.astimezone(zone).date() + timedelta(days=1)
    return {
        "send_at": datetime.combine(tomorrow, LOCAL_TIME, tzinfo=zone),
        "send_time_zone": CAMPAIGN_ZONE,
        "send_in_local_time": True,
    }


def approve(campaign, sender) -> None:
    """A Marketing user requests the launch, `sender` approves it."""
    from django.contrib.auth.models import Group, User

    from campaigns.compliance import approval
    from contacts import roles

    campaign.refresh_from_db()
    if not approval.approval_needed(campaign):
        return
    marketer = User.objects.create_user("mia", password="pw", is_staff=True)
    marketer.groups.add(Group.objects.get(name=roles.MARKETING))
    approval.request_launch(campaign, marketer)
    approval.decide(campaign, sender, approve=True)
    campaign.refresh_from_db()


def quiet_hours_breaches(campaign_id: int, every: int = 11) -> tuple[int, int]:
    """(recipients checked, recipients whose batch's send time is outside
    their window (WINDOW, or their country's in OVERRIDES) in one of their
    number's zones, or in their own zone), for one batched recipient in
    `every`."""
    import phonenumbers
    from phonenumbers import timezone as number_zones

    from campaigns.models import Recipient

    rows = (
        Recipient.objects.filter(campaign_id=campaign_id, is_test=False)
        .exclude(batch=None)
        .values_list(
            "contact_id", "identity", "contact__time_zone", "batch__send_after"
        )
    )
    checked = breaches = 0
    for contact_id, identity, own_zone, send_after in rows.iterator(chunk_size=10_000):
        if contact_id % every != 5:  # 11: prime to the fill's 10 and 7
            continue
        checked += 1
        number = phonenumbers.parse(identity)
        if own_zone:
            zones = [own_zone]
        else:
            zones = list(number_zones.time_zones_for_geographical_number(number))
        start, end = OVERRIDES.get(phonenumbers.region_code_for_number(number), WINDOW)
        for name in zones:
            local = send_after.astimezone(ZoneInfo(name)).time()
            if not start <= local < end:
                breaches += 1
                break
    return checked, breaches


def zone_problems(summary: dict, ok: int, at_least: int) -> list[str]:
    """What is wrong with the pre-send check's time zones."""
    zones = (summary.get("send_times") or {}).get("zones") or {}
    problems = []
    if len(zones) < at_least:
        problems.append(f"{len(zones)} time zones, expected {at_least} or more")
    counted = sum(z["recipients"] for z in zones.values())
    if counted != ok:
        problems.append(f"time zones count {counted} recipients, not {ok}")
    return problems
