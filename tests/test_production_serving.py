"""With DEBUG off the product serves itself safely: HTTPS enforced, static
files served under gunicorn, a clean `check --deploy`, no numbers in the
access log.

Each test runs the production configuration in a subprocess (the test
settings keep DEBUG on), with throw-away keys.
"""

import http.client
import json
import os
import re
import runpy
import secrets
import shutil
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent

# The settings the README documents for production (behind nginx or not).
PRODUCTION = {
    "DEBUG": "false",
    "ALLOWED_HOSTS": "campaigns.example.com",
    "CSRF_TRUSTED_ORIGINS": "https://campaigns.example.com",
    "SINCH_PROJECT_ID": "0b5f6a3e-1c2d-4e5f-8a9b-0c1d2e3f4a5b",
    "SINCH_KEY_ID": "5c6d7e8f-9a0b-4c1d-8e2f-3a4b5c6d7e8f",
    "SINCH_KEY_SECRET": "Xq8vT2pLm9RkW4sN7bYc",
    "SINCH_APP_ID": "01HZX3K8Q9M2N4P6R8S0T2V4W6",
    "SINCH_REGION": "eu",
}
OWN_PREFIXES = ("DJANGO_", "SINCH_", "SECURE_", "Q_", "GUNICORN_")
OWN_NAMES = (
    "DEBUG",
    "DATABASE_URL",
    "REDIS_URL",
    "BEHIND_TLS_PROXY",
    "TLS_PROXY_ENFORCES_HTTPS",
    "ALLOWED_HOSTS",
    "STATIC_ROOT",
)


def _env(tmp_path, **overrides) -> dict[str, str]:
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(OWN_PREFIXES) and k not in OWN_NAMES
    }
    env.update(PRODUCTION)
    env.update(
        DJANGO_SETTINGS_MODULE="config.settings",
        SECRET_KEY=secrets.token_urlsafe(50),
        ERASURE_HASH_KEY=secrets.token_urlsafe(50),
        SINCH_WEBHOOK_SECRET=secrets.token_urlsafe(32),
        DATABASE_URL=f"sqlite:///{tmp_path / 'db.sqlite3'}",
        STATIC_ROOT=str(tmp_path / "static"),
        MEDIA_ROOT=str(tmp_path / "media"),
    )
    env.update(overrides)
    return {k: v for k, v in env.items() if v is not None}


def _run(args, env, check=True):
    done = subprocess.run(
        args, cwd=ROOT, env=env, capture_output=True, text=True, timeout=120
    )
    if check and done.returncode:
        raise AssertionError(f"{args} failed:\n{done.stdout}\n{done.stderr}")
    return done


SECURITY = (
    "import json; from django.conf import settings as s; import django; "
    "django.setup(); print(json.dumps({k: getattr(s, k) for k in ("
    "'SECURE_SSL_REDIRECT', 'SECURE_HSTS_SECONDS', 'SECURE_HSTS_INCLUDE_SUBDOMAINS', "
    "'SECURE_HSTS_PRELOAD', 'SECURE_PROXY_SSL_HEADER', 'SESSION_COOKIE_SECURE', "
    "'CSRF_COOKIE_SECURE', 'SECURE_CONTENT_TYPE_NOSNIFF', 'SECURE_REFERRER_POLICY', "
    "'X_FRAME_OPTIONS')}))"
)


def _security(tmp_path, **env) -> dict:
    return json.loads(
        _run([sys.executable, "-c", SECURITY], _env(tmp_path, **env)).stdout
    )


def test_deploy_check_is_clean_with_the_documented_production_settings(tmp_path):
    for proxy in ({}, {"BEHIND_TLS_PROXY": "true"}):
        done = _run(
            [sys.executable, "manage.py", "check", "--deploy", "--fail-level", "INFO"],
            _env(tmp_path, **proxy),
            check=False,
        )
        output = done.stdout + done.stderr
        assert done.returncode == 0, output
        assert "WARNINGS" not in output, output
        assert "ERRORS" not in output, output
        assert "System check identified no issues" in output, output


def test_debug_off_redirects_to_https_sends_hsts_and_secure_cookies_by_default(
    tmp_path,
):
    conf = _security(tmp_path)
    assert conf["SECURE_SSL_REDIRECT"] is True
    assert conf["SECURE_HSTS_SECONDS"] == 31_536_000
    assert conf["SECURE_HSTS_INCLUDE_SUBDOMAINS"] is True
    assert conf["SECURE_HSTS_PRELOAD"] is False
    assert conf["SESSION_COOKIE_SECURE"] is True
    assert conf["CSRF_COOKIE_SECURE"] is True
    assert conf["SECURE_CONTENT_TYPE_NOSNIFF"] is True
    assert conf["SECURE_REFERRER_POLICY"] == "same-origin"
    assert conf["X_FRAME_OPTIONS"] == "DENY"
    # Without a proxy, a request claiming HTTPS in a header is not believed.
    assert conf["SECURE_PROXY_SSL_HEADER"] is None


def test_behind_a_tls_proxy_the_app_still_redirects_and_sends_hsts(tmp_path):
    conf = _security(tmp_path, BEHIND_TLS_PROXY="true")
    assert conf["SECURE_PROXY_SSL_HEADER"] == ["HTTP_X_FORWARDED_PROTO", "https"]
    assert conf["SECURE_SSL_REDIRECT"] is True
    assert conf["SECURE_HSTS_SECONDS"] == 31_536_000


def test_only_a_proxy_said_to_enforce_https_turns_redirect_and_hsts_off(tmp_path):
    conf = _security(tmp_path, BEHIND_TLS_PROXY="true", TLS_PROXY_ENFORCES_HTTPS="true")
    assert conf["SECURE_SSL_REDIRECT"] is False
    assert conf["SECURE_HSTS_SECONDS"] == 0
    assert conf["SESSION_COOKIE_SECURE"] is True
    refused = _run(
        [sys.executable, "-c", SECURITY],
        _env(tmp_path, TLS_PROXY_ENFORCES_HTTPS="true"),
        check=False,
    )
    assert refused.returncode != 0
    assert "BEHIND_TLS_PROXY is not true" in refused.stderr


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _get(url: str, headers: dict | None = None):
    """(status, headers, body) without following redirects."""

    class NoRedirect(urllib.request.HTTPRedirectHandler):
        def redirect_request(self, *args, **kwargs):
            return None

    opener = urllib.request.build_opener(NoRedirect)
    request = urllib.request.Request(url, headers=headers or {})
    try:
        with opener.open(request, timeout=10) as response:
            return response.status, response.headers, response.read()
    except urllib.error.HTTPError as error:
        return error.code, error.headers, error.read()


@pytest.fixture(scope="session")
def migrated_sqlite(tmp_path_factory):
    """A migrated SQLite database, made once and copied for each web process."""
    folder = tmp_path_factory.mktemp("production-db")
    _run([sys.executable, "manage.py", "migrate", "--noinput", "-v0"], _env(folder))
    return folder / "db.sqlite3"


@pytest.fixture
def web(tmp_path, migrated_sqlite):
    """Start the web process as `make prod-web` does (collectstatic, then
    gunicorn with config/gunicorn.conf.py) on a free port: (base URL, log)."""
    processes = []

    def start(**overrides):
        port = _free_port()
        # gunicorn's own output, its access log included (stderr or stdout,
        # however its logging is configured).
        log = tmp_path / "gunicorn.log"
        shutil.copy(migrated_sqlite, tmp_path / "db.sqlite3")
        overrides.setdefault("WEB_CONCURRENCY", "1")
        env = _env(
            tmp_path,
            ALLOWED_HOSTS="127.0.0.1",
            GUNICORN_BIND=f"127.0.0.1:{port}",
            **overrides,
        )
        _run([sys.executable, "manage.py", "collectstatic", "--noinput", "-v0"], env)
        with open(log, "wb") as out:
            process = subprocess.Popen(
                [str(BIN / "gunicorn"), "-c", "config/gunicorn.conf.py", "config.wsgi"],
                cwd=ROOT,
                env=env,
                stdout=out,
                stderr=subprocess.STDOUT,
            )
        processes.append(process)
        deadline = time.monotonic() + 30
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                return f"http://127.0.0.1:{port}", log
            except OSError:
                assert process.poll() is None, log.read_text()
                assert time.monotonic() < deadline, "gunicorn did not start"
                time.sleep(0.2)

    yield start
    for process in processes:
        process.terminate()
        process.wait(timeout=30)


HTTPS = {"X-Forwarded-Proto": "https"}


def test_without_a_proxy_plain_http_is_redirected_and_no_header_can_claim_https(web):
    base, _ = web()
    status, headers, _ = _get(f"{base}/admin/login/")
    assert status == 301
    assert headers["Location"] == f"https://{base[7:]}/admin/login/"
    assert "Strict-Transport-Security" not in headers
    # A client claiming HTTPS in a header is not believed (no proxy configured).
    status, _, _ = _get(f"{base}/static/campaigns/dashboard.js", HTTPS)
    assert status == 301


def test_behind_a_tls_proxy_pages_carry_security_headers_and_static_files_load(web):
    base, _ = web(BEHIND_TLS_PROXY="true")
    # What the proxy forwards as plain HTTP is still redirected by the app.
    status, headers, _ = _get(f"{base}/admin/login/", {"X-Forwarded-Proto": "http"})
    assert status == 301
    assert headers["Location"].startswith("https://")

    status, headers, body = _get(f"{base}/admin/login/", HTTPS)
    assert status == 200
    assert headers["Strict-Transport-Security"] == "max-age=31536000; includeSubDomains"
    assert headers["X-Frame-Options"] == "DENY"
    assert headers["X-Content-Type-Options"] == "nosniff"
    assert headers["Referrer-Policy"] == "same-origin"
    cookies = headers.get_all("Set-Cookie") or []
    assert cookies
    assert all("Secure" in cookie for cookie in cookies)
    # The page links to collectstatic's content-hashed copy, and it loads.
    hashed = r'href="(/static/admin/css/base\.[0-9a-f]{12}\.css)"'
    css = re.search(hashed, body.decode())
    assert css, body.decode()[:2000]
    status, headers, _ = _get(base + css.group(1), HTTPS)
    assert status == 200
    assert headers["Content-Type"].startswith("text/css")
    assert "immutable" in headers["Cache-Control"]
    # Our own scripts (the dashboard's, the import page's) load too.
    status, headers, body = _get(f"{base}/static/campaigns/dashboard.js", HTTPS)
    assert status == 200
    assert "javascript" in headers["Content-Type"]
    assert body == (ROOT / "campaigns/static/campaigns/dashboard.js").read_bytes()


def test_access_log_holds_no_query_strings_or_referrers(web):
    base, log = web()
    _get(
        f"{base}/static/admin/css/base.css?search=%2B14155550123",
        {"Referer": f"{base}/admin/contacts/contact/?q=%2B14155550199"},
    )
    deadline = time.monotonic() + 5
    while "base.css" not in log.read_text():
        assert time.monotonic() < deadline, "nothing in the access log"
        time.sleep(0.1)
    text = log.read_text()
    assert "/static/admin/css/base.css" in text
    assert "1415555" not in text
    assert "search" not in text


def test_short_links_carry_the_sites_security_headers_under_gunicorn(web):
    # /l/ is answered before Django's middleware (config/wsgi.py), so the
    # headers SecurityMiddleware gives every page are added by the redirect.
    base, _ = web(BEHIND_TLS_PROXY="true")
    status, headers, body = _get(f"{base}/l/zzzzzzzz", HTTPS)
    assert (status, body) == (404, b"Not found")
    assert headers["Strict-Transport-Security"] == "max-age=31536000; includeSubDomains"
    assert headers["X-Content-Type-Options"] == "nosniff"
    assert headers["X-Frame-Options"] == "DENY"
    assert headers["Cross-Origin-Opener-Policy"] == "same-origin"
    assert headers["Referrer-Policy"] == "no-referrer"
    assert headers["Cache-Control"] == "no-store"
    # HSTS only over HTTPS, as Django sends it; the rest always.
    status, headers, _ = _get(f"{base}/l/zzzzzzzz", {"X-Forwarded-Proto": "http"})
    assert status == 404
    assert "Strict-Transport-Security" not in headers
    assert headers["X-Content-Type-Options"] == "nosniff"


def _sockets_on(port: int, state: str) -> list[str]:
    """The owning pid of each TCP socket on local `port` in `state` (ss)."""
    listing = subprocess.run(
        ["ss", "-Htnp", "state", state, f"( sport = :{port} )"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    return [re.search(r"pid=(\d+)", line).group(1) for line in listing.splitlines()]


@pytest.mark.skipif(shutil.which("ss") is None, reason="needs iproute2's ss")
def test_each_web_worker_listens_on_its_own_socket_so_connections_spread(web):
    # One shared socket let the worker that woke first take most kept-alive
    # connections, and one GIL-bound worker then carried the redirect's load.
    base, _ = web(WEB_CONCURRENCY="2", GUNICORN_REUSE_PORT="1")
    port = int(base.rsplit(":", 1)[1])
    deadline = time.monotonic() + 30
    while len(listeners := _sockets_on(port, "listening")) < 2:
        assert time.monotonic() < deadline, listeners
        time.sleep(0.2)
    assert len(listeners) == 2
    assert len(set(listeners)) == 2

    # Kept-alive connections land on both workers (all 16 on one worker by
    # chance: 1 in 32,768).
    connections = [http.client.HTTPConnection("127.0.0.1", port) for _ in range(16)]
    try:
        for connection in connections:
            # (Not an unknown short link: misses from one address are slowed
            # down, and a connection idle for gunicorn's keepalive is closed.)
            connection.request("GET", "/admin/login/")
            response = connection.getresponse()
            response.read()
            assert response.status == 301  # to HTTPS: no proxy in front
        holders = _sockets_on(port, "established")
        assert len(holders) == 16
        assert set(holders) == set(listeners)
    finally:
        for connection in connections:
            connection.close()


@pytest.mark.parametrize("threads", ["1", "4"])  # sync and gthread workers
def test_workers_with_their_own_socket_answer(web, threads):
    base, _ = web(
        WEB_CONCURRENCY="2", GUNICORN_REUSE_PORT="1", GUNICORN_THREADS=threads
    )
    for _ in range(10):
        status, headers, _ = _get(f"{base}/admin/login/")
        assert status == 301
        assert headers["Location"].startswith("https://")


def test_a_second_web_process_on_the_same_port_is_refused(web, tmp_path):
    # A socket per worker (SO_REUSEPORT) would let an old release left
    # running share the port silently; the start refuses instead.
    base, _ = web(GUNICORN_REUSE_PORT="1")
    port = base.rsplit(":", 1)[1]
    second = _run(
        [str(BIN / "gunicorn"), "-c", "config/gunicorn.conf.py", "config.wsgi"],
        _env(tmp_path, GUNICORN_BIND=f"127.0.0.1:{port}", GUNICORN_REUSE_PORT="1"),
        check=False,
    )
    assert second.returncode != 0
    assert f"127.0.0.1:{port} is already in use" in second.stdout + second.stderr
    status, _, _ = _get(f"{base}/l/zzzzzzzz")
    assert status == 404  # the first one still answers


@pytest.mark.parametrize(
    ("choice", "address", "kernel_migrates", "expected"),
    [
        ("auto", "127.0.0.1:8000", "1", True),
        # Without the kernel's help a recycled worker's queued connections
        # would be reset: the shared socket stays.
        ("auto", "127.0.0.1:8000", "0", False),
        ("auto", "127.0.0.1:8000", None, False),  # kernel before 5.14
        ("1", "127.0.0.1:8000", "0", True),
        ("0", "127.0.0.1:8000", "1", False),
        ("1", "unix:/run/campaigns/web.sock", "1", False),
    ],
)
def test_workers_get_their_own_socket_only_where_no_connection_can_be_dropped(
    tmp_path, choice, address, kernel_migrates, expected
):
    conf = runpy.run_path(str(ROOT / "config" / "gunicorn.conf.py"))
    setting = tmp_path / "tcp_migrate_req"
    if kernel_migrates is not None:
        setting.write_text(kernel_migrates + "\n")
    decide = conf["socket_per_worker"]
    assert decide(choice, address, setting=str(setting)) is expected
