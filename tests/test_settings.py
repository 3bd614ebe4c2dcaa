"""Settings come from the environment and refuse unsafe production values."""

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DUMP = (
    "import json, config.settings as s; print(json.dumps({'q': s.Q_CLUSTER, "
    "'db': s.DATABASES['default']['ENGINE'], 'batch': s.SINCH_BATCH_API_URL, "
    "'auth': s.SINCH_AUTH_URL}))"
)


def _settings(**env):
    base = {k: v for k, v in os.environ.items() if not k.startswith(("SINCH_", "Q_"))}
    base.update({"DEBUG": "true", "DATABASE_URL": None, "REDIS_URL": None})
    base.update(env)
    base = {k: v for k, v in base.items() if v is not None}
    return subprocess.run(
        [sys.executable, "-c", DUMP],
        cwd=ROOT,
        env=base,
        capture_output=True,
        text=True,
        check=False,
    )


def test_debug_off_without_secret_key_fails_loudly():
    result = _settings(DEBUG="false", SECRET_KEY="", ERASURE_HASH_KEY="x")
    assert result.returncode != 0
    assert "SECRET_KEY is not set" in result.stderr


def test_debug_off_without_erasure_key_fails_loudly():
    result = _settings(DEBUG="false", SECRET_KEY="s" * 50, ERASURE_HASH_KEY="")
    assert result.returncode != 0
    assert "ERASURE_HASH_KEY is not set" in result.stderr


def test_database_is_a_sqlite_file_by_default_and_postgres_from_the_url():
    default = json.loads(_settings(DATABASE_URL="").stdout)
    assert default["db"] == "django.db.backends.sqlite3"
    pg = json.loads(_settings(DATABASE_URL="postgres://u@127.0.0.1:5432/x").stdout)
    assert pg["db"] == "django.db.backends.postgresql"


def test_queue_uses_the_database_broker_unless_redis_is_configured():
    orm = json.loads(_settings(REDIS_URL=None).stdout)["q"]
    assert orm["orm"] == "default"
    assert "redis" not in orm
    redis = json.loads(_settings(REDIS_URL="redis://127.0.0.1:6379/0").stdout)["q"]
    assert redis["redis"] == "redis://127.0.0.1:6379/0"
    assert "orm" not in redis
    for conf in (orm, redis):
        assert conf["timeout"] < conf["retry"]
        assert conf["max_attempts"] == 1
        assert conf["ack_failures"] is True


def test_sinch_origins_follow_the_region_unless_overridden():
    eu = json.loads(_settings(SINCH_REGION="eu").stdout)
    assert eu["batch"] == "https://eu.conversationbatch.api.sinch.com"
    assert eu["auth"] == "https://auth.sinch.com"
    local = json.loads(
        _settings(
            SINCH_BATCH_API_URL="http://127.0.0.1:8025/",
            SINCH_AUTH_URL="http://127.0.0.1:8025",
        ).stdout
    )
    assert local["batch"] == "http://127.0.0.1:8025"
    assert local["auth"] == "http://127.0.0.1:8025"


def test_an_unknown_sinch_region_is_refused():
    result = _settings(SINCH_REGION="mars")
    assert result.returncode != 0
    assert "SINCH_REGION must be one of us, eu, br" in result.stderr


def test_a_bad_audience_tolerance_or_approval_cost_stops_the_start():
    result = _settings(LAUNCH_AUDIENCE_TOLERANCE="lots")
    assert result.returncode != 0
    assert "LAUNCH_AUDIENCE_TOLERANCE: 'lots' is neither a percentage" in (
        result.stderr
    )
    result = _settings(APPROVAL_MIN_COST="fifty euros")
    assert result.returncode != 0
    assert "APPROVAL_MIN_COST must be an amount such as 50 or 12.50" in result.stderr
    assert _settings(LAUNCH_AUDIENCE_TOLERANCE="2%", APPROVAL_MIN_COST="50").stdout
