"""Test settings: the real settings with test-only overrides."""

import os
import tempfile

os.environ.setdefault("DEBUG", "true")

from config.settings import *  # noqa: F403
from config.settings import DATABASES, Q_CLUSTER

# django-q2 reads Q_CLUSTER at import; tests run tasks inline.
Q_CLUSTER = {**Q_CLUSTER, "sync": True}
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
MEDIA_ROOT = tempfile.mkdtemp(prefix="campaigns-test-media-")
# WhiteNoise serves STATIC_ROOT (empty here: with DEBUG the apps' files are
# found directly) and warns when the directory is missing.
STATIC_ROOT = tempfile.mkdtemp(prefix="campaigns-test-static-")
SINCH_WEBHOOK_SECRET = "test-webhook-secret"
# Tasks run inline here: a drain loop started while a launch is still freezing
# must not wait for batches the same thread would only seal after it returns.
DISPATCH_FREEZE_WAIT_S = 0
# Test threads (live server, concurrency tests) must not keep connections open
# past their work, or the test database cannot be dropped at the end.
DATABASES["default"]["CONN_MAX_AGE"] = 0
# SQLite's test database is a file in memory (/dev/shm), not Django's shared
# in-memory database: that one hands the test's own connection to the live
# server's threads, whose writes then met the test's reads as "database table
# is locked" (receipts refused while a browser test waited for its figures).
# With a file each thread has its own connection, and WAL and the busy
# timeout (config.settings) apply as in production.
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    _shm = "/dev/shm" if os.path.isdir("/dev/shm") else tempfile.gettempdir()
    DATABASES["default"]["TEST"] = {
        "NAME": os.path.join(_shm, f"campaigns-test-{os.getpid()}.sqlite3")
    }
# The compliance footer changes every marketing SMS text: tests that describe
# it turn it on (tests/campaigns/test_compliance_footer.py); the others read
# the template's text as written.
COMPLIANCE_FOOTER_OPT_OUT = ""
# Tests run at any hour of the real clock: no quiet hours unless a test sets
# them (the compliance tests do, through the `settings` fixture).
QUIET_HOURS = "00:00-24:00"
# Pages link to the apps' own static files, never to collectstatic's hashed
# copies (which a test run has not made), whatever DEBUG says.
STORAGES = {
    **STORAGES,  # noqa: F405
    "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
}
