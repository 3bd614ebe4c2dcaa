"""Several workers (`manage.py qcluster` on one or more machines) share one
database and broker: each periodic schedule still fires once per due time.

django-q2 runs its scheduler inside every cluster, about every 30 s; the
passes of two clusters can meet. Here two passes, in two processes as two
clusters would make them, start at the same moment on schedules that are all
due.
"""

import subprocess
import time

from tests.integration.conftest import PYTHON, ROOT


def test_two_clusters_passing_at_the_same_moment_queue_each_due_schedule_once(
    stack,
):
    due = stack.driver("make-due")["due"]
    assert due >= 2  # the tick and the delivery reconciliation
    at = time.time() + 5  # both processes have set Django up by then
    passes = [
        subprocess.Popen(
            [
                PYTHON,
                "-m",
                "tests.integration.driver",
                "schedule-pass",
                "--at",
                str(at),
            ],
            cwd=ROOT,
            env=stack.env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(2)
    ]
    for process in passes:
        _, err = process.communicate(timeout=60)
        assert process.returncode == 0, err
    assert stack.driver("queued")["queued"] == due
