"""`GET /l/<code>`: a recipient's short link answers a 302 to its frozen target.

The target is read from the TrackedLink row (frozen at launch), never from
the request: no query string, path trick or header changes where it goes.
Every request of a live code is kept as a Click (campaigns.tracking.agents
tells preview fetchers from people), written in bulk by
campaigns.tracking.click_buffer. An unknown, malformed, erased or expired
code gets the same bare 404; an address that keeps missing is slowed down
(MISS_FREE misses per MISS_WINDOW_S, then a growing delay up to MISS_DELAY_MAX_S).

Two doors, one function (`answer`): `wsgi_app`, which config/wsgi.py routes
/l/ to before Django's middleware (no session, auth or axes work: one
indexed read per request), and `redirect_view` for the URLconf (runserver,
the test client).
"""

import threading
import time

from django.conf import settings
from django.db import DatabaseError, connection
from django.http import HttpResponse
from django.utils import timezone

from campaigns.models import ShortLink, TrackedLink
from campaigns.models.links import decode
from campaigns.tracking import agents, click_buffer

PREFIX = "/l/"
MISS_FREE = 5
MISS_WINDOW_S = 600
MISS_DELAY_S = 0.1
MISS_DELAY_MAX_S = 2.0
NOT_FOUND_BODY = b"Not found"

_misses: dict[str, list[float]] = {}
_misses_lock = threading.Lock()
sleep = time.sleep  # tests replace it to see the delay

_QUERY = None


def _query() -> str:
    global _QUERY
    if _QUERY is None:
        s, t = ShortLink._meta.db_table, TrackedLink._meta.db_table
        _QUERY = (
            f"SELECT t.id, t.campaign_id, s.recipient_id, s.is_test, t.target "
            f"FROM {s} s JOIN {t} t ON t.id = s.link_id "
            f"WHERE s.code = %s AND (t.expires_at IS NULL OR t.expires_at > %s)"
        )
    return _QUERY


def lookup(number: int, now):
    """(link id, campaign id, recipient id, is_test, target) of a code that
    has not expired at `now`, or None."""
    for attempt in (1, 2):
        try:
            with connection.cursor() as cursor:
                at = connection.ops.adapt_datetimefield_value(now)
                cursor.execute(_query(), [number, at])
                return cursor.fetchone()
        except DatabaseError:
            connection.close()  # a dropped connection: once more on a new one
            if attempt == 2:
                raise
    return None


def miss_delay(address: str, now: float | None = None) -> float:
    """Counts a miss from `address`; the seconds its answer waits."""
    now = time.monotonic() if now is None else now
    with _misses_lock:
        if len(_misses) > 10_000:
            _misses.clear()  # bounded memory under a spread-out scan
        times = [t for t in _misses.get(address, ()) if now - t < MISS_WINDOW_S]
        times.append(now)
        _misses[address] = times
    over = len(times) - MISS_FREE
    if over <= 0:
        return 0.0
    return min(MISS_DELAY_S * 2 ** (over - 1), MISS_DELAY_MAX_S)


def client_address(environ) -> str:
    """The requester's address (behind the TLS proxy: the one it forwarded,
    as config.lib.login_throttling counts login failures)."""
    if settings.BEHIND_TLS_PROXY:
        forwarded = environ.get("HTTP_X_FORWARDED_FOR", "")
        last = forwarded.rsplit(",", 1)[-1].strip()
        if last:
            return last
    return environ.get("REMOTE_ADDR", "")


def answer(code: str, method: str, environ) -> tuple[int, str | None]:
    """(status, target or None) for a request of /l/<code>; `environ` is
    the WSGI environ (request.META)."""
    number = decode(code)
    now = timezone.now()
    row = lookup(number, now) if number is not None else None
    if row is None:
        delay = miss_delay(client_address(environ))
        if delay:
            sleep(delay)
        return 404, None
    link_id, campaign_id, recipient_id, is_test, target = row
    user_agent = environ.get("HTTP_USER_AGENT", "")
    is_preview, agent = agents.classify(method, user_agent, environ)
    click_buffer.add(
        (number, link_id, campaign_id, recipient_id, is_test, is_preview, agent, now)
    )
    return 302, target


def _headers(target: str | None) -> list[tuple[str, str]]:
    headers = [("Cache-Control", "no-store"), ("Referrer-Policy", "no-referrer")]
    if target is None:
        return [("Content-Type", "text/plain"), *headers]
    return [("Location", target), ("Content-Length", "0"), *headers]


def wsgi_app(environ, start_response):
    """The thin door: a WSGI app for paths under /l/ (config/wsgi.py)."""
    method = environ.get("REQUEST_METHOD", "GET")
    code = environ.get("PATH_INFO", "")[len(PREFIX) :]
    if method not in ("GET", "HEAD"):
        start_response("405 Method Not Allowed", [("Allow", "GET, HEAD")])
        return [b""]
    _, target = answer(code, method, environ)
    if target is None:
        start_response("404 Not Found", _headers(None))
        return [NOT_FOUND_BODY]
    # The target is a URL we stored; a CR/LF in it would never pass WSGI.
    start_response("302 Found", _headers(target))
    return [b""]


def redirect_view(request, code: str):
    """The same through Django's URLconf (no login, no CSRF: a GET that
    changes nothing but a click count)."""
    if request.method not in ("GET", "HEAD"):
        return HttpResponse(status=405, headers={"Allow": "GET, HEAD"})
    status, target = answer(code, request.method, request.META)
    response = HttpResponse(
        NOT_FOUND_BODY if target is None else b"",
        status=status,
        content_type="text/plain",
    )
    for name, value in _headers(target):
        if name != "Content-Type":
            response[name] = value
    return response
