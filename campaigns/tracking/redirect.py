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

# Links change rarely (their expiry is set once, when the campaign ends):
# each worker keeps what it read of them this many seconds.
LINK_CACHE_S = 30.0
_links: dict[int, tuple] = {}


def _query() -> str:
    table = ShortLink._meta.db_table
    return f"SELECT link_id, recipient_id, is_test FROM {table} WHERE code = %s"


def lookup(number: int):
    """(link id, recipient id, is_test) of a stored code, or None. On
    PostgreSQL a prepared statement (the database plans it once per
    connection); a connection that went away is replaced once."""
    for attempt in (1, 2):
        try:
            if connection.vendor == "postgresql":
                return _lookup_prepared(number)
            with connection.cursor() as cursor:
                cursor.execute(_query(), [number])
                return cursor.fetchone()
        except DatabaseError:
            connection.close()
            if attempt == 2:
                raise
    return None


def _lookup_prepared(number: int):
    import psycopg

    connection.ensure_connection()
    with connection.wrap_database_errors, psycopg.Cursor(connection.connection) as cur:
        cur.execute(_query(), [number], prepare=True)
        return cur.fetchone()


def link_info(link_id: int) -> tuple | None:
    """(campaign id, target, expires_at) of a TrackedLink, read at most every
    LINK_CACHE_S seconds per worker."""
    now = time.monotonic()
    entry = _links.get(link_id)
    if entry is None or now - entry[3] > LINK_CACHE_S:
        row = (
            TrackedLink.objects.filter(pk=link_id)
            .values_list("campaign_id", "target", "expires_at")
            .first()
        )
        if row is None:
            _links.pop(link_id, None)
            return None
        entry = _links[link_id] = (*row, now)
    return entry[:3]


def forget_links() -> None:
    """Read every link afresh (tests; a changed expiry shows within LINK_CACHE_S)."""
    _links.clear()


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
    row = lookup(number) if number is not None else None
    info = link_info(row[0]) if row is not None else None
    if info is None or (info[2] is not None and info[2] <= now):
        delay = miss_delay(client_address(environ))
        if delay:
            sleep(delay)
        return 404, None
    link_id, recipient_id, is_test = row
    campaign_id, target, _ = info
    user_agent = environ.get("HTTP_USER_AGENT", "")
    is_preview, agent = agents.classify(method, user_agent, environ)
    click_buffer.add(
        (number, link_id, campaign_id, recipient_id, is_test, is_preview, agent, now)
    )
    return 302, target


def is_secure(environ) -> bool:
    """Whether the request came over HTTPS, as Django's request.is_secure()
    decides it (the proxy's header only when BEHIND_TLS_PROXY set it)."""
    header = settings.SECURE_PROXY_SSL_HEADER
    if header:
        value = environ.get(header[0])
        if value is not None:
            return value.split(",", 1)[0].strip() == header[1]
    return environ.get("wsgi.url_scheme") == "https"


def security_headers(environ) -> list[tuple[str, str]]:
    """The headers the rest of the site gets from SecurityMiddleware and
    XFrameOptionsMiddleware, which the thin door skips: nosniff, the frame
    ban, the opener policy, and HSTS on a request that came over HTTPS. A
    short link sends no referrer at all (stricter than the site's
    same-origin) and is never cached. A few attribute reads per request."""
    headers = [("Cache-Control", "no-store"), ("Referrer-Policy", "no-referrer")]
    if settings.SECURE_CONTENT_TYPE_NOSNIFF:
        headers.append(("X-Content-Type-Options", "nosniff"))
    if settings.X_FRAME_OPTIONS:
        headers.append(("X-Frame-Options", settings.X_FRAME_OPTIONS))
    if settings.SECURE_CROSS_ORIGIN_OPENER_POLICY:
        policy = settings.SECURE_CROSS_ORIGIN_OPENER_POLICY
        headers.append(("Cross-Origin-Opener-Policy", policy))
    if settings.SECURE_HSTS_SECONDS and is_secure(environ):
        hsts = f"max-age={settings.SECURE_HSTS_SECONDS}"
        if settings.SECURE_HSTS_INCLUDE_SUBDOMAINS:
            hsts += "; includeSubDomains"
        if settings.SECURE_HSTS_PRELOAD:
            hsts += "; preload"
        headers.append(("Strict-Transport-Security", hsts))
    return headers


def _headers(target: str | None, environ) -> list[tuple[str, str]]:
    headers = security_headers(environ)
    if target is None:
        return [("Content-Type", "text/plain"), *headers]
    return [("Location", target), ("Content-Length", "0"), *headers]


def wsgi_app(environ, start_response):
    """The thin door: a WSGI app for paths under /l/ (config/wsgi.py)."""
    method = environ.get("REQUEST_METHOD", "GET")
    code = environ.get("PATH_INFO", "")[len(PREFIX) :]
    if method not in ("GET", "HEAD"):
        headers = [("Allow", "GET, HEAD"), *security_headers(environ)]
        start_response("405 Method Not Allowed", headers)
        return [b""]
    _, target = answer(code, method, environ)
    if target is None:
        start_response("404 Not Found", _headers(None, environ))
        return [NOT_FOUND_BODY]
    # The target is a URL we stored; a CR/LF in it would never pass WSGI.
    start_response("302 Found", _headers(target, environ))
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
    if target is not None:
        response["Location"] = target
    # The middleware adds the rest of the security headers on this door.
    response["Cache-Control"] = "no-store"
    response["Referrer-Policy"] = "no-referrer"
    return response
