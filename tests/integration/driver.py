"""What the integration tests do to the product, run as a separate process.

The tests share a real database with a real `manage.py qcluster`, so they act
through the product's own code in a process of its own, configured by the
same environment as the cluster (config.settings, not the test settings):

    python -m tests.integration.driver launch --contacts 3 --send-in 5
    python -m tests.integration.driver launch --contacts 30000 --imported
    python -m tests.integration.driver cancel 1
    python -m tests.integration.driver tick

Each command prints one JSON object on stdout.
"""

import argparse
import json
import os
import sys
from datetime import timedelta

TICK_HELD_OFF = timedelta(days=1)


def _setup() -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    import django

    django.setup()


def hold_tick(args) -> dict:
    """Keep the periodic tick from firing until a test says time has passed."""
    from django.utils import timezone
    from django_q.models import Schedule

    from campaigns.schedules import TICK_NAME

    n = Schedule.objects.filter(name=TICK_NAME).update(
        next_run=timezone.now() + TICK_HELD_OFF
    )
    return {"held": n}


def launch(args) -> dict:
    """A Sender launches a campaign to `contacts` opted-in people."""
    from django.contrib.auth.models import Group, User
    from django.utils import timezone

    from campaigns.authoring import presend
    from campaigns.compliance import approval
    from campaigns.dispatch import freeze, launching
    from campaigns.models import Campaign, MessageTemplate
    from contacts import roles
    from contacts.models import ChannelIdentity, Contact, ContactList
    from contacts.services.consent import Evidence, record_consent

    sender, created = User.objects.get_or_create(
        username="sandra", defaults={"is_staff": True}
    )
    if created:
        sender.groups.add(Group.objects.get(name=roles.SENDER))
    n = Campaign.objects.count() + 1
    customers = ContactList.objects.create(name=f"Customers {n}")
    for i in range(0 if args.imported else args.contacts):
        contact = Contact.objects.create(first_name=f"Person{n}x{i}")
        identity = ChannelIdentity.objects.create(
            contact=contact, channel="SMS", identity=f"+1415{200 + n:03d}{i:04d}"
        )
        record_consent(
            identity=identity,
            kind="OPT_IN",
            purpose="MARKETING",
            source="FORM",
            evidence=Evidence(wording="Integration test consent"),
        )
        customers.memberships.create(contact=contact, source="ADMIN")
    if args.imported:
        _import_into(customers, args.contacts, n)
    template = MessageTemplate.objects.create(
        name=f"Spring {n}", text="Hi ${first_name}, spring sale!"
    )
    send_at = None
    if args.send_in is not None:
        send_at = timezone.now() + timedelta(seconds=args.send_in)
    elif args.held_for is not None:
        horizon = freeze.schedule_horizon()
        send_at = timezone.now() + horizon + timedelta(seconds=args.held_for)
    campaign = Campaign.objects.create(
        name=f"Spring {n}", template=template, send_at=send_at
    )
    campaign.lists.add(customers)
    presend.run_presend_check(campaign)
    campaign.refresh_from_db()
    if approval.approval_needed(campaign):  # a large audience: four eyes
        marketer, _ = User.objects.get_or_create(
            username="mia", defaults={"is_staff": True}
        )
        marketer.groups.add(Group.objects.get(name=roles.MARKETING))
        approval.request_launch(campaign, marketer)
        approval.decide(campaign, sender, approve=True)
        campaign.refresh_from_db()
    launching.launch(campaign, sender)
    campaign.refresh_from_db()
    return {
        "campaign": campaign.pk,
        "status": campaign.status,
        "send_at": send_at.isoformat() if send_at else None,
        "not_before": (freeze.hold_until(campaign).isoformat() if send_at else None),
    }


def _import_into(customers, count: int, n: int) -> None:
    """A Compliance user imports `count` opted-in people into `customers`
    from a CSV file, inline (as a small upload is)."""
    import csv

    from django.conf import settings
    from django.contrib.auth.models import Group, User

    from contacts import roles
    from contacts.importing import jobs
    from contacts.models import ImportJob

    user, created = User.objects.get_or_create(
        username="carla", defaults={"is_staff": True}
    )
    if created:
        user.groups.add(Group.objects.get(name=roles.COMPLIANCE))
    folder = os.path.join(settings.MEDIA_ROOT, "imports")
    os.makedirs(folder, exist_ok=True)
    path = os.path.join(folder, f"customers-{n}.csv")
    with open(path, "w", newline="", encoding="utf-8") as out:
        writer = csv.writer(out)
        writer.writerow(["phone", "first_name", "channel", "consent"])
        for i in range(count):
            writer.writerow([f"+49151{n:02d}{i:06d}", f"Person{n}x{i}", "SMS", "yes"])
    job = jobs.create_import_job(
        path=path,
        original_name=os.path.basename(path),
        actor=user,
        target_list=customers,
        default_channel="SMS",
        purpose="MARKETING",
        consent_mode=ImportJob.ConsentMode.COLUMN,
        consent_source="IMPORT",
        consent_evidence="Shop sign-up form",
    )
    settings.IMPORT_BACKGROUND_BYTES = 10**10  # inline, whatever its size
    jobs.start(job, dry_run=False, actor=user)
    job.refresh_from_db()
    if (job.status, job.rows_ok) != (ImportJob.Status.DONE, count):
        raise AssertionError(
            f"the import did not take every row: {job.status} "
            f"{job.rows_ok} of {count}: {job.error}"
        )


def cancel(args) -> dict:
    """The Sender cancels the campaign; the cancellation receipt."""
    from django.contrib.auth.models import User

    from campaigns.dispatch import control
    from campaigns.models import Campaign

    campaign = Campaign.objects.get(pk=args.campaign)
    return control.cancel(campaign, User.objects.get(username="sandra"))


def tick(args) -> dict:
    """Time has passed: the periodic tick is due, and the scheduler makes its
    pass (django-q2's own, which the cluster makes only every 30 s)."""
    from django.utils import timezone
    from django_q.brokers import get_broker
    from django_q.models import Schedule
    from django_q.scheduler import scheduler

    from campaigns.schedules import TICK_NAME

    Schedule.objects.filter(name=TICK_NAME).update(
        next_run=timezone.now() - timedelta(seconds=1)
    )
    scheduler(broker=get_broker())
    return {"tick": "queued"}


def schedule_pass(args) -> dict:
    """Only the scheduler's pass: due schedules (not the tick) are queued.

    --at: the pass starts at that moment (epoch seconds), so that passes in
    several processes (one per cluster) run at the same time.
    """
    import time

    from django_q.brokers import get_broker
    from django_q.scheduler import scheduler

    broker = get_broker()
    if args.at:
        time.sleep(max(0.0, args.at - time.time()))
    scheduler(broker=broker)
    return {"pass": "done"}


def make_due(args) -> dict:
    """Every schedule (the tick too) is due now."""
    from django.utils import timezone
    from django_q.models import Schedule

    n = Schedule.objects.update(next_run=timezone.now() - timedelta(seconds=1))
    return {"due": n}


def queued(args) -> dict:
    """How many tasks wait in the broker."""
    from django_q.brokers import get_broker

    return {"queued": get_broker().queue_size()}


def purge(args) -> dict:
    """The broker lost every queued task (e.g. Redis restarted empty)."""
    from django_q.brokers import get_broker

    broker = get_broker()
    before = broker.queue_size()
    broker.purge_queue()
    return {"purged": before}


def main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(prog="driver")
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("hold-tick").set_defaults(run=hold_tick)
    p = commands.add_parser("launch")
    p.add_argument("--contacts", type=int, default=3)
    p.add_argument(
        "--imported",
        action="store_true",
        help="the contacts come from a CSV import (fast for many)",
    )
    when = p.add_mutually_exclusive_group()
    when.add_argument("--send-in", type=float, help="send time, seconds from now")
    when.add_argument(
        "--held-for",
        type=float,
        help="seconds until a send time beyond Sinch's horizon comes within it",
    )
    p.set_defaults(run=launch)
    p = commands.add_parser("cancel")
    p.add_argument("campaign", type=int)
    p.set_defaults(run=cancel)
    commands.add_parser("tick").set_defaults(run=tick)
    p = commands.add_parser("schedule-pass")
    p.add_argument("--at", type=float, help="start at this epoch time")
    p.set_defaults(run=schedule_pass)
    commands.add_parser("make-due").set_defaults(run=make_due)
    commands.add_parser("queued").set_defaults(run=queued)
    commands.add_parser("purge").set_defaults(run=purge)
    args = parser.parse_args(argv)
    _setup()
    sys.stdout.write(json.dumps(args.run(args), default=str) + "\n")


if __name__ == "__main__":
    main(sys.argv[1:])
