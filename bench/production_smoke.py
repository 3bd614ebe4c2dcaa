"""Production smoke test: the production configuration on this machine, end to end.

    python bench/production_smoke.py [--contacts 5] [--redis-url redis://127.0.0.1:6379/0]
        [--login-attempts 30] [--keep]

Starts what README "Deploying to production" describes, with DEBUG off and
keys generated for the run: a fresh PostgreSQL database (BENCH_POSTGRES_URL's
server) migrated and collectstatic'd as `make prod-release` does, Redis as the
broker (under a queue name of its own), gunicorn with config/gunicorn.conf.py
(`make prod-web`), one `manage.py qcluster` (`make prod-worker`), and the
local Sinch simulator (`manage.py sinch_simulator`) standing in for Sinch: the
app has (made-up) Sinch credentials and SINCH_BATCH_API_URL / SINCH_AUTH_URL
point at the simulator, which signs its callbacks with the run's
SINCH_WEBHOOK_SECRET.

TLS: the run uses the documented setup behind a TLS proxy
(BEHIND_TLS_PROXY=true). A small proxy in this process stands in for nginx:
it forwards every request to gunicorn with "X-Forwarded-Proto: https" (it
speaks plain HTTP itself, so this script sends the Secure cookies back by
hand). Requests straight to gunicorn without that header are plain HTTP to
the app, which must redirect them to HTTPS.

Checks, each a key of the JSON line:
- static_ok: the login page links to collectstatic's hashed admin CSS and the
  dashboard to our own hashed dashboard.js; both answer 200 with the right
  content type; an unknown static file answers 404.
- security_headers_ok: plain HTTP gets a 301 to https://; over "HTTPS" pages
  carry HSTS (a year, subdomains), nosniff, X-Frame-Options DENY,
  Referrer-Policy same-origin, and only Secure cookies.
- campaign_delivered: a Sender made by `manage.py create_user` logs in over
  HTTP (with CSRF); a list of --contacts opted-in people, a template and a
  campaign are made and checked and the campaign launched through the domain
  functions (what the admin's buttons call); the worker hands it to the
  simulator and the delivery receipts come back through the webhook (via the
  proxy): the number of recipients delivered (read counts as delivered).
- login_throttled: then --login-attempts wrong passwords for one user: true
  when the login page answers 429 or 403 (locked out) before the end,
  with lockout_after the attempt that was refused first; false (and
  "login_throttle": "not throttled ...") otherwise.

Progress goes to stderr; the last line of stdout is one JSON object, e.g.
{"static_ok": true, "security_headers_ok": true, "campaign_delivered": 5,
"recipients": 5, "login_throttled": true, "lockout_after": 5, "wall_s": 48.1}.
The exit status is 0 only when every check passed. Every process started is
stopped and the database dropped at the end (--keep: the run's folder with
the processes' logs is kept).
"""

import argparse
import contextlib
import http.client
import http.cookies
import os
import re
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import urlencode

sys.path.insert(0, str(Path(__file__).resolve().parent))

import _common as common

ROOT = common.ROOT
PYTHON = common.PYTHON
GUNICORN = str(Path(PYTHON).parent / "gunicorn")
HOP_BY_HOP = {
    "connection",
    "keep-alive",
    "transfer-encoding",
    "te",
    "trailer",
    "upgrade",
    "proxy-authenticate",
    "proxy-authorization",
    "content-length",
}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for_port(port: int, process: subprocess.Popen, name: str, log: Path):
    deadline = time.monotonic() + 60
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            if process.poll() is not None:
                raise RuntimeError(f"{name} ended: {log.read_text()[-2000:]}") from None
            if time.monotonic() > deadline:
                raise RuntimeError(f"{name} did not listen on {port}") from None
            time.sleep(0.2)


# --- the stand-in TLS proxy ------------------------------------------------------


def start_proxy(upstream_port: int) -> tuple[ThreadingHTTPServer, int]:
    """Forward every request to gunicorn as a TLS proxy would: Host kept,
    X-Forwarded-Proto: https and X-Forwarded-For added."""

    class Forward(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def _forward(self):
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length) if length else None
            headers = {
                k: v for k, v in self.headers.items() if k.lower() not in HOP_BY_HOP
            }
            headers["X-Forwarded-Proto"] = "https"
            headers["X-Forwarded-For"] = self.client_address[0]
            upstream = http.client.HTTPConnection(
                "127.0.0.1", upstream_port, timeout=60
            )
            try:
                upstream.request(self.command, self.path, body=body, headers=headers)
                answer = upstream.getresponse()
                data = answer.read()
            finally:
                upstream.close()
            self.send_response(answer.status, answer.reason)
            for name, value in answer.getheaders():
                if name.lower() not in HOP_BY_HOP:
                    self.send_header(name, value)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        do_GET = do_POST = do_HEAD = do_PUT = do_DELETE = _forward

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Forward)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, server.server_address[1]


# --- a small HTTP client ------------------------------------------------------------


class Browser:
    """Requests to one origin, keeping cookies (Secure ones too: the proxy
    stands for HTTPS) and never following redirects."""

    def __init__(self, port: int, https: bool) -> None:
        self.port = port
        self.https = https
        self.origin = f"{'https' if https else 'http'}://127.0.0.1:{port}"
        self.cookies: dict[str, str] = {}
        self.set_cookie_lines: list[str] = []

    def request(self, method: str, path: str, form: dict | None = None):
        headers = {"Host": f"127.0.0.1:{self.port}"}
        if self.cookies:
            headers["Cookie"] = "; ".join(f"{k}={v}" for k, v in self.cookies.items())
        body = None
        if form is not None:
            body = urlencode(form)
            headers["Content-Type"] = "application/x-www-form-urlencoded"
            headers["Origin"] = self.origin
            headers["Referer"] = self.origin + path
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=60)
        try:
            conn.request(method, path, body=body, headers=headers)
            answer = conn.getresponse()
            data = answer.read()
        finally:
            conn.close()
        for line in answer.headers.get_all("Set-Cookie") or []:
            self.set_cookie_lines.append(line)
            jar = http.cookies.SimpleCookie(line)
            for name, morsel in jar.items():
                self.cookies[name] = morsel.value
        return answer.status, answer.headers, data

    def get(self, path: str):
        return self.request("GET", path)

    def post(self, path: str, form: dict):
        form = {"csrfmiddlewaretoken": self.cookies.get("csrftoken", ""), **form}
        return self.request("POST", path, form)


# --- the run --------------------------------------------------------------------------


class Run:
    def __init__(self, args) -> None:
        self.args = args
        self.name = f"smoke_{secrets.token_hex(4)}"
        self.folder = Path(common.workdir("production-smoke-"))
        self.processes: list[tuple[str, subprocess.Popen]] = []
        self.proxy: ThreadingHTTPServer | None = None
        self.result: dict = {}

    # processes
    def start(self, name: str, args: list[str]) -> subprocess.Popen:
        log = self.folder / f"{name}.log"
        with open(log, "ab") as out:
            process = subprocess.Popen(
                args,
                cwd=ROOT,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        self.processes.append((name, process))
        return process

    def manage(self, *args: str) -> str:
        done = subprocess.run(
            [PYTHON, "manage.py", *args], cwd=ROOT, capture_output=True, text=True
        )
        if done.returncode:
            raise RuntimeError(f"manage.py {' '.join(args)}: {done.stderr[-2000:]}")
        return done.stdout

    def stop_all(self) -> None:
        if self.proxy:
            self.proxy.shutdown()
        for _, process in reversed(self.processes):
            if process.poll() is None:
                # One SIGTERM to the main process only: gunicorn and
                # django-q2 stop their own workers (a signal to each would
                # interrupt that shutdown half-way).
                with contextlib.suppress(ProcessLookupError):
                    os.kill(process.pid, signal.SIGTERM)
        for name, process in reversed(self.processes):
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                common.say(f"{name} did not stop on SIGTERM: killed")
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(process.pid, signal.SIGKILL)
                process.wait(timeout=10)
            # Nothing of the group may outlive the run.
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)

    # set-up
    def configure(self) -> None:
        self.sim_port, self.web_port = free_port(), free_port()
        database_url = common.fresh_database("postgres", self.name, str(self.folder))
        os.environ.update(
            DJANGO_SETTINGS_MODULE="config.settings",
            DEBUG="false",
            SECRET_KEY=secrets.token_urlsafe(50),
            ERASURE_HASH_KEY=secrets.token_urlsafe(50),
            SINCH_WEBHOOK_SECRET=secrets.token_urlsafe(32),
            SINCH_PROJECT_ID=f"smoke-project-{secrets.token_hex(4)}",
            SINCH_APP_ID=f"SMOKEAPP{secrets.token_hex(6).upper()}",
            SINCH_KEY_ID=f"smoke-key-{secrets.token_hex(4)}",
            SINCH_KEY_SECRET=secrets.token_urlsafe(24),
            SINCH_BATCH_API_URL=f"http://127.0.0.1:{self.sim_port}",
            SINCH_AUTH_URL=f"http://127.0.0.1:{self.sim_port}",
            DATABASE_URL=database_url,
            REDIS_URL=self.args.redis_url,
            Q_CLUSTER_NAME=self.name,
            Q_WORKERS="2",
            BEHIND_TLS_PROXY="true",
            ALLOWED_HOSTS="127.0.0.1,localhost",
            STATIC_ROOT=str(self.folder / "static"),
            MEDIA_ROOT=str(self.folder / "media"),
            GUNICORN_BIND=f"127.0.0.1:{self.web_port}",
            WEB_CONCURRENCY="2",
            QUIET_HOURS="00:00-24:00",  # the smoke runs at any hour
            LOG_LEVEL="INFO",
            PYTHONUNBUFFERED="1",
        )
        common.say(f"database {self.name}, Redis {self.args.redis_url}")
        common.say("release: migrate and collectstatic (make prod-release)")
        self.manage("migrate", "--noinput", "-v0")
        self.manage("collectstatic", "--noinput", "-v0")
        self.password = secrets.token_urlsafe(16)
        self.manage(
            "create_user", "smoke-sender", "--role", "Sender",
            "--password", self.password, "--no-input",
        )  # fmt: skip

    def start_services(self) -> None:
        common.say("starting the simulator, gunicorn, the stand-in TLS proxy, qcluster")
        self.proxy, self.proxy_port = start_proxy(self.web_port)
        simulator = self.start(
            "simulator",
            [
                PYTHON, "manage.py", "sinch_simulator",
                "--port", str(self.sim_port),
                "--webhook-url", f"http://127.0.0.1:{self.proxy_port}/webhooks/sinch",
                "--failure-ratio", "0", "--latency-s", "0.3",
                "--processing-delay-s", "0.3",
            ],
        )  # fmt: skip
        web = self.start(
            "gunicorn", [GUNICORN, "-c", "config/gunicorn.conf.py", "config.wsgi"]
        )
        self.start("qcluster", [PYTHON, "manage.py", "qcluster"])
        wait_for_port(
            self.sim_port, simulator, "simulator", self.folder / "simulator.log"
        )
        wait_for_port(self.web_port, web, "gunicorn", self.folder / "gunicorn.log")

    # checks
    def check_security_headers(self, browser: Browser) -> bool:
        problems = []
        plain = Browser(self.web_port, https=False)
        status, headers, _ = plain.get("/admin/login/")
        if status != 301 or not (headers["Location"] or "").startswith("https://"):
            problems.append(f"plain HTTP answered {status} {headers['Location']}")
        if headers["Strict-Transport-Security"]:
            problems.append("HSTS sent over plain HTTP")
        status, headers, _ = browser.get("/admin/login/")
        expected = {
            "Strict-Transport-Security": "max-age=31536000; includeSubDomains",
            "X-Content-Type-Options": "nosniff",
            "X-Frame-Options": "DENY",
            "Referrer-Policy": "same-origin",
        }
        if status != 200:
            problems.append(f"login page over HTTPS answered {status}")
        for name, value in expected.items():
            if headers[name] != value:
                problems.append(f"{name}: {headers[name]!r}, expected {value!r}")
        cookies = browser.set_cookie_lines
        if not cookies or not all("Secure" in line for line in cookies):
            problems.append(f"cookies not all Secure: {cookies}")
        self.result["security_problems"] = problems
        for problem in problems:
            common.say(f"security headers: {problem}")
        return not problems

    def static_file(self, browser: Browser, page: bytes, pattern: str, kind: str):
        found = re.search(pattern, page.decode())
        if not found:
            return f"no link matching {pattern}"
        status, headers, _ = browser.get(found.group(1))
        content_type = headers["Content-Type"] or ""
        if status != 200 or kind not in content_type:
            return f"{found.group(1)} answered {status} {content_type}"
        return None

    def log_in(self, browser: Browser) -> bytes:
        status, _, page = browser.get("/admin/login/")
        status, _, _ = browser.post(
            "/admin/login/?next=/admin/",
            {"username": "smoke-sender", "password": self.password, "next": "/admin/"},
        )
        if status != 302:
            raise RuntimeError(f"the Sender's login answered {status}")
        return page

    def launch_campaign(self) -> int:
        """What the admin's buttons call: a list of opted-in people, a
        template, a campaign, its pre-send check and the launch."""
        if str(ROOT) not in sys.path:
            sys.path.insert(0, str(ROOT))
        import django

        django.setup()
        from django.contrib.auth.models import User

        from campaigns.authoring import presend
        from campaigns.dispatch import launching
        from campaigns.models import Campaign, MessageTemplate
        from contacts.models import ChannelIdentity, Contact, ContactList
        from contacts.services.consent import Evidence, record_consent

        customers = ContactList.objects.create(name="Smoke customers")
        for i in range(self.args.contacts):
            contact = Contact.objects.create(first_name=f"Smoke{i}")
            identity = ChannelIdentity.objects.create(
                contact=contact, channel="SMS", identity=f"+1415730{i:04d}"
            )
            record_consent(
                identity=identity,
                kind="OPT_IN",
                purpose="MARKETING",
                source="FORM",
                evidence=Evidence(wording="Production smoke test consent"),
            )
            customers.memberships.create(contact=contact, source="ADMIN")
        template = MessageTemplate.objects.create(
            name="Smoke", text="Hi ${first_name}, this is the production smoke test."
        )
        campaign = Campaign.objects.create(name="Production smoke", template=template)
        campaign.lists.add(customers)
        presend.run_presend_check(campaign)
        campaign.refresh_from_db()
        launching.launch(campaign, User.objects.get(username="smoke-sender"))
        return campaign.pk

    def wait_for_receipts(self, pk: int) -> int:
        from django.db import connection

        from campaigns.models import Recipient

        done = {Recipient.Status.DELIVERED, Recipient.Status.READ}
        final = done | {Recipient.Status.FAILED, Recipient.Status.CANCELLED}
        deadline = time.monotonic() + self.args.timeout
        while True:
            statuses = list(
                Recipient.objects.filter(campaign_id=pk, is_test=False)
                .exclude(status=Recipient.Status.EXCLUDED)
                .values_list("status", flat=True)
            )
            connection.close()
            delivered = sum(s in done for s in statuses)
            if statuses and all(s in final for s in statuses):
                return delivered
            if time.monotonic() > deadline:
                common.say(f"receipts still missing after {self.args.timeout} s")
                return delivered
            time.sleep(0.5)

    def check_login_throttle(self) -> None:
        browser = Browser(self.proxy_port, https=True)
        browser.get("/admin/login/")
        refused_at = None
        statuses = []
        for attempt in range(1, self.args.login_attempts + 1):
            status, _, _ = browser.post(
                "/admin/login/",
                {"username": "smoke-sender", "password": f"wrong-{attempt}"},
            )
            statuses.append(status)
            if status in (403, 429):
                refused_at = attempt
                break
        self.result["login_throttled"] = refused_at is not None
        if refused_at:
            self.result["lockout_after"] = refused_at
            common.say(f"login locked out at wrong password {refused_at} ({status})")
        else:
            self.result["login_throttle"] = (
                f"not throttled: {len(statuses)} wrong passwords all answered "
                f"{sorted(set(statuses))}"
            )
            common.say(self.result["login_throttle"])

    def run(self) -> dict:
        started = time.monotonic()
        self.configure()
        self.start_services()
        browser = Browser(self.proxy_port, https=True)
        self.result["security_headers_ok"] = self.check_security_headers(browser)

        common.say("logging in as the Sender (create_user) over HTTP with CSRF")
        login_page = self.log_in(browser)
        common.say(f"launching a campaign to {self.args.contacts} people")
        pk = self.launch_campaign()
        from django.urls import reverse

        status, _, dashboard = browser.get(
            reverse("admin:campaigns_campaign_dashboard", args=[pk])
        )
        problems = [
            self.static_file(
                browser, login_page,
                r'href="(/static/admin/css/base\.[0-9a-f]{12}\.css)"', "text/css",
            ),
            self.static_file(
                browser, dashboard,
                r'src="(/static/campaigns/dashboard\.[0-9a-f]{12}\.js)"', "javascript",
            ),
        ]  # fmt: skip
        if status != 200:
            problems.append(f"the dashboard answered {status}")
        missing, _, _ = browser.get("/static/campaigns/no-such-file.js")
        if missing != 404:
            problems.append(f"a missing static file answered {missing}")
        problems = [p for p in problems if p]
        for problem in problems:
            common.say(f"static files: {problem}")
        self.result["static_ok"] = not problems

        common.say("waiting for the delivery receipts (simulator -> proxy -> webhook)")
        self.result["campaign_delivered"] = self.wait_for_receipts(pk)
        self.result["recipients"] = self.args.contacts
        common.say(f"{self.result['campaign_delivered']} delivered")

        common.say(f"{self.args.login_attempts} wrong passwords for smoke-sender")
        self.check_login_throttle()
        self.result["wall_s"] = round(time.monotonic() - started, 1)
        return self.result

    def clean_up(self) -> None:
        self.stop_all()
        with contextlib.suppress(Exception):
            import redis

            client = redis.Redis.from_url(self.args.redis_url)
            keys = list(client.scan_iter(f"*{self.name}*"))
            if keys:
                client.delete(*keys)
        if "django" in sys.modules:
            with contextlib.suppress(Exception):
                from django.db import connections

                connections.close_all()
        import psycopg

        with psycopg.connect(
            f"{common.POSTGRES_SERVER}/postgres", autocommit=True
        ) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{self.name}" WITH (FORCE)')
        if self.args.keep:
            common.say(f"logs kept in {self.folder}")
        else:
            shutil.rmtree(self.folder, ignore_errors=True)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--contacts", type=int, default=5)
    parser.add_argument(
        "--redis-url",
        default=os.environ.get("SMOKE_REDIS_URL", "redis://127.0.0.1:6379/0"),
    )
    parser.add_argument("--login-attempts", type=int, default=30)
    parser.add_argument("--timeout", type=float, default=180, help="receipt wait, s")
    parser.add_argument("--keep", action="store_true", help="keep the logs")
    args = parser.parse_args()
    run = Run(args)
    try:
        result = run.run()
    except Exception as exc:
        common.say(f"failed: {exc}")
        result = {**run.result, "error": str(exc)}
    finally:
        run.clean_up()
    passed = bool(
        result.get("static_ok")
        and result.get("security_headers_ok")
        and result.get("login_throttled")
        and result.get("campaign_delivered") == args.contacts
    )
    result["passed"] = passed
    common.emit(result)
    return 0 if passed else 1


if __name__ == "__main__":
    sys.exit(main())
