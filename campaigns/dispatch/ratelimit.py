"""The project-wide limit on Batch API requests, shared by every worker.

Sinch allows about 800 requests per second per project; every worker on every
machine takes a slot here before a call (SINCH_MAX_REQUESTS_PER_S). Slots are
counted per wall-clock second, in Redis when REDIS_URL is set, else in the
database (one upsert per request: atomic on SQLite and PostgreSQL alike).
"""

import time
from functools import cache

from django.conf import settings
from django.db import connection

from campaigns.models import RequestWindow


def acquire(*, timeout_s: float = 30.0, sleep=time.sleep, clock=time.time) -> bool:
    """Take one request slot, waiting up to `timeout_s`; False if none came."""
    limit = settings.SINCH_MAX_REQUESTS_PER_S
    deadline = clock() + timeout_s
    while True:
        now = clock()
        second = int(now)
        if _count(second) <= limit:
            return True
        wait = second + 1 - now
        if now + wait > deadline:
            return False
        sleep(wait)


def _count(second: int) -> int:
    """Count one more request in `second` and return the count."""
    if settings.REDIS_URL:
        return _redis_count(second)
    table = RequestWindow._meta.db_table
    with connection.cursor() as cursor:
        cursor.execute(
            f"INSERT INTO {table} (second, count) VALUES (%s, 1) "
            f"ON CONFLICT (second) DO UPDATE SET count = {table}.count + 1 "
            "RETURNING count",
            [second],
        )
        (count,) = cursor.fetchone()
        if count == 1:  # the first request of a second clears old windows
            cursor.execute(f"DELETE FROM {table} WHERE second < %s", [second - 60])
    return count


def _redis_count(second: int) -> int:
    key = f"campaigns:sinch-requests:{second}"
    pipe = _redis().pipeline()
    pipe.incr(key)
    pipe.expire(key, 5)
    count, _ = pipe.execute()
    return int(count)


@cache
def _redis():
    import redis

    return redis.Redis.from_url(settings.REDIS_URL)
