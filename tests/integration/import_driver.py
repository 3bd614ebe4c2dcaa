"""What the import fault tests do to the product, in a process of its own
(configured like the cluster, see driver.py):

    python -m tests.integration.import_driver queue --rows 30000 --name a.csv
    python -m tests.integration.import_driver queue --rows 10 --first 30000
    python -m tests.integration.import_driver resume-stalled

Each command prints one JSON object on stdout.
"""

import argparse
import csv
import json
import os
import sys

from tests.integration.driver import _setup


def queue(args) -> dict:
    """A Compliance user uploads a file of `rows` opted-in people (numbers
    `first`, `first` + 1, ...) and confirms it: it is queued for a worker."""
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
    path = os.path.join(folder, args.name)
    with open(path, "w", newline="", encoding="utf-8") as out:
        writer = csv.writer(out)
        writer.writerow(["phone", "first_name", "channel", "consent"])
        for n in range(args.first, args.first + args.rows):
            writer.writerow([f"+4915123{n:06d}", f"Person {n}", "SMS", "yes"])
    job = jobs.create_import_job(
        path=path,
        original_name=args.name,
        actor=user,
        target_list=None,
        default_channel="SMS",
        purpose="MARKETING",
        consent_mode=ImportJob.ConsentMode.COLUMN,
        consent_source="IMPORT",
        consent_evidence="Shop sign-up form",
    )
    settings.IMPORT_BACKGROUND_BYTES = 0  # on a worker, whatever its size
    ImportJob.objects.filter(pk=job.pk).update(status=ImportJob.Status.QUEUED)
    jobs.start(job, dry_run=False, actor=user)
    return {"job": job.pk}


def resume_stalled(args) -> dict:
    """The periodic task's pass (it runs every minute in the cluster)."""
    from contacts.tasks import resume_stalled_imports

    return {"result": resume_stalled_imports()}


def main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(prog="import_driver")
    commands = parser.add_subparsers(dest="command", required=True)
    p = commands.add_parser("queue")
    p.add_argument("--rows", type=int, default=30_000)
    p.add_argument("--first", type=int, default=0, help="the first number's index")
    p.add_argument("--name", default="contacts.csv")
    p.set_defaults(run=queue)
    commands.add_parser("resume-stalled").set_defaults(run=resume_stalled)
    args = parser.parse_args(argv)
    _setup()
    sys.stdout.write(json.dumps(args.run(args), default=str) + "\n")


if __name__ == "__main__":
    main(sys.argv[1:])
