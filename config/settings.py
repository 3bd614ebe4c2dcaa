"""Settings for the Sinch campaign manager.

Every value comes from the environment (``.env`` is read when present); the
inventory of variables, with comments, is ``.env.example``. Behaviour changes
only through those values: there are no per-environment settings modules.
"""

from pathlib import Path

import environ
from django.core.exceptions import ImproperlyConfigured

from campaigns.compliance.cap_rules import CapRuleError, parse_cap
from config.lib.key_strength import DEV_ERASURE_HASH_KEY, DEV_SECRET_KEY
from config.lib.login_throttling import axes_settings
from config.lib.tolerance import parse_amount, parse_tolerance

BASE_DIR = Path(__file__).resolve().parent.parent

env = environ.Env()
environ.Env.read_env(BASE_DIR / ".env")

# --- core -------------------------------------------------------------------

DEBUG = env.bool("DEBUG", default=False)

SECRET_KEY = env.str("SECRET_KEY", default="")
if not SECRET_KEY:
    if not DEBUG:
        raise ImproperlyConfigured(
            "SECRET_KEY is not set. Set it in the environment or in .env "
            "(DEBUG is off, so no development key is used)."
        )
    SECRET_KEY = DEV_SECRET_KEY

ALLOWED_HOSTS = env.list(
    "ALLOWED_HOSTS", default=["127.0.0.1", "localhost"] if DEBUG else []
)
CSRF_TRUSTED_ORIGINS = env.list("CSRF_TRUSTED_ORIGINS", default=[])

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django_q",
    "axes",
    "sinch",
    "contacts",
    "campaigns",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    # Serves STATIC_ROOT itself (gunicorn alone serves no static files), with
    # long cache lifetimes for the hashed names collectstatic writes.
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "config.lib.query_guard.StripNulFromQueryMiddleware",  # PostgreSQL: no NULs
    # Last: turns a login refused for too many failures into the lock-out page.
    "axes.middleware.AxesMiddleware",
]

ROOT_URLCONF = "config.urls"
WSGI_APPLICATION = "config.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

LANGUAGE_CODE = "en-us"
TIME_ZONE = env.str("TIME_ZONE", default="UTC")
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = env.path("STATIC_ROOT", default=BASE_DIR / "var" / "static")
# With DEBUG off, pages link to the compressed, content-hashed copies that
# `manage.py collectstatic` writes to STATIC_ROOT (make prod-web runs it), and
# WhiteNoise serves them; a page naming a file collectstatic did not see fails
# loudly instead of linking to a 404. With DEBUG on, files come from the apps.
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {
        "BACKEND": (
            "django.contrib.staticfiles.storage.StaticFilesStorage"
            if DEBUG
            else "whitenoise.storage.CompressedManifestStaticFilesStorage"
        )
    },
}
MEDIA_ROOT = env.path("MEDIA_ROOT", default=BASE_DIR / "var" / "media")
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# Uploaded CSV files can be large: they are streamed to disk, never held in memory.
FILE_UPLOAD_MAX_MEMORY_SIZE = 2_621_440
DATA_UPLOAD_MAX_NUMBER_FIELDS = 10_000

# --- database ---------------------------------------------------------------

# An empty DATABASE_URL (e.g. "DATABASE_URL=" in .env) means the default too.
DATABASE_URL = env.str("DATABASE_URL", default="") or (
    f"sqlite:///{BASE_DIR / 'var' / 'db.sqlite3'}"
)
DATABASES = {"default": env.db_url_config(DATABASE_URL)}
# Seconds a web or worker process keeps its database connection (0: one per
# request). Under a steady stream of webhooks a new connection per callback
# would cost more than the callback itself (PostgreSQL: ~5x fewer per second).
DATABASES["default"]["CONN_MAX_AGE"] = env.int("DB_CONN_MAX_AGE", default=60)
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # WAL lets the web server read while a worker writes; the init commands keep
    # writers from failing with "database is locked" under short contention.
    DATABASES["default"].setdefault("OPTIONS", {}).update(
        {
            "transaction_mode": "IMMEDIATE",
            "timeout": 20,
            "init_command": (
                "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL; "
                "PRAGMA cache_size=-64000; PRAGMA temp_store=MEMORY;"
            ),
        }
    )

# --- security ---------------------------------------------------------------

SESSION_COOKIE_SECURE = env.bool("SESSION_COOKIE_SECURE", default=not DEBUG)
CSRF_COOKIE_SECURE = env.bool("CSRF_COOKIE_SECURE", default=not DEBUG)
# A TLS proxy in front (nginx, a load balancer) that sets X-Forwarded-Proto:
# the app trusts that header to tell HTTPS requests. Never set it without such
# a proxy: anyone could then claim HTTPS over plain HTTP.
BEHIND_TLS_PROXY = env.bool("BEHIND_TLS_PROXY", default=False)
SECURE_PROXY_SSL_HEADER = (
    ("HTTP_X_FORWARDED_PROTO", "https") if BEHIND_TLS_PROXY else None
)
# ... and that proxy itself redirects HTTP to HTTPS and sends the HSTS header:
# only then does the app leave both to it. Otherwise (the default with DEBUG
# off) the app redirects every plain-HTTP request to HTTPS and sends HSTS.
TLS_PROXY_ENFORCES_HTTPS = env.bool("TLS_PROXY_ENFORCES_HTTPS", default=False)
if TLS_PROXY_ENFORCES_HTTPS and not BEHIND_TLS_PROXY:
    raise ImproperlyConfigured(
        "TLS_PROXY_ENFORCES_HTTPS=true says a TLS proxy redirects to HTTPS and "
        "sends HSTS, but BEHIND_TLS_PROXY is not true. Set BEHIND_TLS_PROXY=true "
        "when such a proxy is in front, or remove TLS_PROXY_ENFORCES_HTTPS."
    )
_APP_ENFORCES_HTTPS = not DEBUG and not TLS_PROXY_ENFORCES_HTTPS
SECURE_SSL_REDIRECT = env.bool("SECURE_SSL_REDIRECT", default=_APP_ENFORCES_HTTPS)
# HTTP Strict Transport Security: browsers use only HTTPS for this many seconds
# (a year by default with DEBUG off; 0: no header).
SECURE_HSTS_SECONDS = env.int(
    "SECURE_HSTS_SECONDS", default=31_536_000 if _APP_ENFORCES_HTTPS else 0
)
SECURE_HSTS_INCLUDE_SUBDOMAINS = env.bool(
    "SECURE_HSTS_INCLUDE_SUBDOMAINS", default=True
)
# Asking browsers to preload HTTPS for the domain is hard to undo: only on request.
SECURE_HSTS_PRELOAD = env.bool("SECURE_HSTS_PRELOAD", default=False)
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
X_FRAME_OPTIONS = "DENY"
SILENCED_SYSTEM_CHECKS = []
if not SECURE_HSTS_PRELOAD:
    # check --deploy's advice to preload (W021) is a decision for the domain's
    # owner, documented in .env.example, not a missing setting.
    SILENCED_SYSTEM_CHECKS.append("security.W021")
if TLS_PROXY_ENFORCES_HTTPS:
    # The proxy redirects and sends HSTS (W008, W004), as its setting says.
    SILENCED_SYSTEM_CHECKS += ["security.W004", "security.W008"]

# --- login throttling (django-axes: config/lib/login_throttling.py) ----------

# After LOGIN_FAILURE_LIMIT failed logins, logins are refused for
# LOGIN_COOLOFF_MINUTES (each further try starts the wait again), counted per
# LOGIN_LOCKOUT_BY: "username+ip" (default: nobody can lock a colleague out
# from elsewhere), "ip", "username", or several separated by commas.
AUTHENTICATION_BACKENDS = [
    "axes.backends.AxesStandaloneBackend",
    "django.contrib.auth.backends.ModelBackend",
]
LOGIN_FAILURE_LIMIT = env.int("LOGIN_FAILURE_LIMIT", default=5)
LOGIN_COOLOFF_MINUTES = env.int("LOGIN_COOLOFF_MINUTES", default=15)
LOGIN_LOCKOUT_BY = env.str("LOGIN_LOCKOUT_BY", default="username+ip")
try:  # the AXES_* settings
    globals().update(
        axes_settings(
            LOGIN_FAILURE_LIMIT,
            LOGIN_COOLOFF_MINUTES,
            LOGIN_LOCKOUT_BY,
            behind_tls_proxy=BEHIND_TLS_PROXY,
        )
    )
except ValueError as exc:
    raise ImproperlyConfigured(str(exc)) from None

# Key of the one-way hash that keeps an erased person's identities suppressed.
# Changing it breaks suppression of earlier erasures, so it is not SECRET_KEY.
ERASURE_HASH_KEY = env.str("ERASURE_HASH_KEY", default="")
if not ERASURE_HASH_KEY:
    if not DEBUG:
        raise ImproperlyConfigured(
            "ERASURE_HASH_KEY is not set (DEBUG is off). Set a long random value "
            "once and never change it: erased numbers stay suppressed through it."
        )
    ERASURE_HASH_KEY = DEV_ERASURE_HASH_KEY

# --- e-mail -----------------------------------------------------------------

# Where e-mail goes, as a URL: smtp+tls://user:password@smtp.example.com:587,
# consolemail:// (printed). Empty: no e-mail is sent.
EMAIL_URL = env.str("EMAIL_URL", default="")
if EMAIL_URL:
    # EMAIL_BACKEND, EMAIL_HOST, EMAIL_PORT, EMAIL_HOST_USER, ... from the URL.
    globals().update(env.email_url_config(EMAIL_URL))
else:
    EMAIL_BACKEND = "django.core.mail.backends.dummy.EmailBackend"
# Seconds an SMTP connection may take before the e-mail is given up.
EMAIL_TIMEOUT = env.int("EMAIL_TIMEOUT", default=10)
# Where people open the product (https://campaigns.example.com): notification
# e-mails link to pages under it (campaigns.notifications).
SITE_URL = env.str("SITE_URL", default="").rstrip("/")

# --- contacts ---------------------------------------------------------------
# Region used to read phone numbers written without a country code, e.g. "US".
PHONE_DEFAULT_REGION = env.str("PHONE_DEFAULT_REGION", default="US")
# Imports over this many bytes run on a worker; IMPORT_LEASE_SECONDS: .env.example
IMPORT_BACKGROUND_BYTES = env.int("IMPORT_BACKGROUND_BYTES", default=2_000_000)
IMPORT_LEASE_SECONDS = env.int("IMPORT_LEASE_SECONDS", default=300)

# --- Sinch ------------------------------------------------------------------

SINCH_PROJECT_ID = env.str("SINCH_PROJECT_ID", default="")
SINCH_KEY_ID = env.str("SINCH_KEY_ID", default="")
SINCH_KEY_SECRET = env.str("SINCH_KEY_SECRET", default="")
SINCH_APP_ID = env.str("SINCH_APP_ID", default="")
SINCH_REGION = env.str("SINCH_REGION", default="us")
if SINCH_REGION not in ("us", "eu", "br"):
    raise ImproperlyConfigured(
        f"SINCH_REGION must be one of us, eu, br (got {SINCH_REGION!r})."
    )
SINCH_WEBHOOK_SECRET = env.str("SINCH_WEBHOOK_SECRET", default="")
SINCH_BATCH_API_URL = env.str(
    "SINCH_BATCH_API_URL",
    default=f"https://{SINCH_REGION}.conversationbatch.api.sinch.com",
).rstrip("/")
SINCH_AUTH_URL = env.str("SINCH_AUTH_URL", default="https://auth.sinch.com").rstrip("/")
# The main Conversation API (the app and its webhooks, read by sinch_check);
# empty: https://{SINCH_REGION}.conversation.api.sinch.com (sinch.wire).
SINCH_CONVERSATION_API_URL = env.str("SINCH_CONVERSATION_API_URL", default="")
# Messages per second Sinch delivers for the account (the delivery-time estimate).
SINCH_DRAIN_RATE_PER_S = env.float("SINCH_DRAIN_RATE_PER_S", default=20.0)
# The webhook (POST /webhooks/sinch): callbacks signed longer ago (or further
# ahead) than this many seconds are refused, and so are bodies larger than this.
SINCH_WEBHOOK_TOLERANCE_S = env.int("SINCH_WEBHOOK_TOLERANCE_S", default=300)
WEBHOOK_MAX_BODY_BYTES = env.int("WEBHOOK_MAX_BODY_BYTES", default=1_048_576)
# Days a processed callback's raw body (numbers, reply texts) is kept (then deleted).
WEBHOOK_EVENT_RETENTION_DAYS = env.int("WEBHOOK_EVENT_RETENTION_DAYS", default=30)

# --- campaigns --------------------------------------------------------------

# Price of one SMS segment per destination country (ISO 3166 code, or "default"
# for every other country), in SMS_PRICE_CURRENCY: the cost estimate.
SMS_PRICES = env.json("SMS_PRICES", default={"default": 0.0075})
SMS_PRICE_CURRENCY = env.str("SMS_PRICE_CURRENCY", default="EUR")
# Pre-send checks of larger audiences run on the worker, with a progress bar.
PRESEND_INLINE_RECIPIENTS = env.int("PRESEND_INLINE_RECIPIENTS", default=10_000)
# Test sends (campaigns.dispatch.test_send): the most members a seed list may
# have, and how many test sends one user may make per hour.
TEST_SEND_MAX_RECIPIENTS = env.int("TEST_SEND_MAX_RECIPIENTS", default=25)
TEST_SEND_MAX_PER_HOUR = env.int("TEST_SEND_MAX_PER_HOUR", default=10)

# --- launch guards (campaigns.compliance) -------------------------------------

# Four-eyes approval: a campaign whose pre-send check found at least this many
# recipients needs the approval of a second Sender before it is launched
# (0: never for its size).
APPROVAL_MIN_RECIPIENTS = env.int("APPROVAL_MIN_RECIPIENTS", default=10_000)
if APPROVAL_MIN_RECIPIENTS < 0:
    raise ImproperlyConfigured(
        f"APPROVAL_MIN_RECIPIENTS must be 0 or more (got {APPROVAL_MIN_RECIPIENTS})."
    )
# ... and so does one whose estimated cost, in SMS_PRICE_CURRENCY, is at least
# this much (empty: never for its cost).
APPROVAL_MIN_COST = parse_amount(
    "APPROVAL_MIN_COST", env.str("APPROVAL_MIN_COST", default="")
)
# Sender address of the e-mails telling Senders that a launch waits for them.
APPROVAL_EMAIL_FROM = env.str("APPROVAL_EMAIL_FROM", default="campaigns@localhost")
# How far the audience may drift from the last pre-send check (and the
# recipients from an approval's) before a launch is refused: a percentage, a
# number of people, or both, the larger applying ("5%,100").
LAUNCH_AUDIENCE_TOLERANCE = env.str("LAUNCH_AUDIENCE_TOLERANCE", default="5%,100")
try:
    parse_tolerance(LAUNCH_AUDIENCE_TOLERANCE)
except ValueError as exc:
    raise ImproperlyConfigured(f"LAUNCH_AUDIENCE_TOLERANCE: {exc}") from exc

# --- compliance footer (campaigns.compliance.footer) -------------------------

# The compliance footer appended to marketing SMS text messages, e.g.
# "Acme Shoes: Reply STOP to opt out" (campaigns/compliance/footer.py).
# The sender's name before the opt-out instruction; empty: the instruction only.
COMPLIANCE_FOOTER_ORGANISATION = env.str("COMPLIANCE_FOOTER_ORGANISATION", default="")
# The opt-out instruction; empty turns the footer off.
COMPLIANCE_FOOTER_OPT_OUT = env.str(
    "COMPLIANCE_FOOTER_OPT_OUT", default="Reply STOP to opt out"
)
# The instruction per contact language (BCP 47, "de-AT" falls back to "de"),
# "de=Antworte STOP zum Abmelden;fr=Répondez STOP pour vous désabonner".
COMPLIANCE_FOOTER_BY_LANGUAGE = env.str("COMPLIANCE_FOOTER_BY_LANGUAGE", default="")

# --- quiet hours and recipients' time zones (campaigns.compliance) ----------

# When marketing messages may arrive, in each recipient's local time, every day:
# "HH:MM-HH:MM" (start included, end excluded; "00:00-24:00": any time).
QUIET_HOURS = env.str("QUIET_HOURS", default="08:00-21:00")
# Other windows, comma separated KEY=HH:MM-HH:MM; KEY is an ISO country (US), an
# IANA zone (America/Chicago) or a number prefix (+1305: a state is written as its
# area codes). The most specific applies: prefix, then zone, then country.
QUIET_HOURS_OVERRIDES = env.str("QUIET_HOURS_OVERRIDES", default="")
# Public holidays, quiet all day, per country: US=2026-12-25;2027-01-01,DE=...
QUIET_HOURS_HOLIDAYS = env.str("QUIET_HOURS_HOLIDAYS", default="")
# The zone of a recipient whose zone is neither known nor inferable from the
# number (a campaign can choose another); empty: the campaign's send time zone.
DEFAULT_RECIPIENT_TIME_ZONE = env.str("DEFAULT_RECIPIENT_TIME_ZONE", default="")

# --- inbound messages -------------------------------------------------------

# Extra or replacement keywords per language code, e.g.
# {"it": {"stop": ["ANNULLA"], "start": ["INIZIA"], "help": ["AIUTO"]}}; the
# defaults (en, es, fr, de) are in campaigns/tracking/keywords.py, and the English stop
# words (STOP, UNSUBSCRIBE, ...) always apply.
INBOUND_KEYWORDS = env.json("INBOUND_KEYWORDS", default={})
# Purposes a STOP reply opts out of (and START opts back in to): marketing only
# by default, so order and security messages still reach the person.
INBOUND_STOP_PURPOSES = env.list("INBOUND_STOP_PURPOSES", default=["MARKETING"])
# How a stop word opts out: "word" (default), a reply containing it as a word
# ("stop please", "STOP!!! no more"); "exact", only a reply that is the word
# as a whole (replies containing one are then flagged for review).
INBOUND_STOP_MATCH = env.str("INBOUND_STOP_MATCH", default="word").lower()
if INBOUND_STOP_MATCH not in ("word", "exact"):
    raise ImproperlyConfigured(
        f"INBOUND_STOP_MATCH must be word or exact (got {INBOUND_STOP_MATCH!r})."
    )
# A reply Sinch does not tie to a batch (`_batch_id`) is attributed to the last
# campaign delivered to that number within this many days, marked inferred.
REPLY_ATTRIBUTION_DAYS = env.int("REPLY_ATTRIBUTION_DAYS", default=3)
# WhatsApp's customer-service window: a free-form message (anything but a
# WhatsApp template) reaches only people who wrote within this many hours.
WHATSAPP_WINDOW_HOURS = env.int("WHATSAPP_WINDOW_HOURS", default=24)

# --- compliance guards (campaigns.compliance) ----------------------------------

# The frequency cap: at most COUNT marketing messages per person in any rolling
# LENGTH (days d or hours h), several rules separated by commas; counted from
# the messages Sinch accepted for other marketing campaigns. Empty: no cap.
FREQUENCY_CAP = env.str("FREQUENCY_CAP", default="2/7d,1/1d")
try:
    parse_cap(FREQUENCY_CAP)
except CapRuleError as exc:
    raise ImproperlyConfigured(str(exc)) from None

# --- dispatch ---------------------------------------------------------------

# Requests per second to the Batch API, shared by every worker (Sinch allows 800).
SINCH_MAX_REQUESTS_PER_S = env.int("SINCH_MAX_REQUESTS_PER_S", default=100)
# Messages handed to Sinch and not yet processed, across campaigns (Sinch
# queues at most 500,000 per app): further batches wait below this.
SINCH_MAX_IN_FLIGHT_MESSAGES = env.int("SINCH_MAX_IN_FLIGHT_MESSAGES", default=400_000)
# A scheduled campaign larger than the room left under that cap at its send
# time goes in waves (later send times, one per drained queue); a launch
# whose last wave would start more than this many hours after the send time
# (or after the campaign's ttl) is refused (campaigns.dispatch.ingress).
SINCH_INGRESS_MAX_SPREAD_HOURS = env.float(
    "SINCH_INGRESS_MAX_SPREAD_HOURS", default=24.0
)
# Drain loops started per campaign (one per worker is enough).
DISPATCH_CONCURRENCY = env.int("DISPATCH_CONCURRENCY", default=2)
# A batch claimed longer ago than this, with no outcome, is treated as uncertain
# (its worker died): it is looked up at Sinch before any resubmission.
DISPATCH_CLAIM_LEASE_S = env.int("DISPATCH_CLAIM_LEASE_S", default=600)
# How long a batch Sinch does not know about stays uncertain before it is sent again.
DISPATCH_UNCERTAIN_GRACE_S = env.int("DISPATCH_UNCERTAIN_GRACE_S", default=120)
# A batch still uncertain after this is shown as a problem (health page,
# campaign page) with what the operator can do.
DISPATCH_UNCERTAIN_ALERT_S = env.int("DISPATCH_UNCERTAIN_ALERT_S", default=3600)
# Submissions of one batch before it is failed (each claim counts, also one
# whose worker was killed).
DISPATCH_MAX_ATTEMPTS = env.int("DISPATCH_MAX_ATTEMPTS", default=5)
# Auto-pause: share of failed submissions among the campaign's recent ones
# (at least DISPATCH_PAUSE_MIN_BATCHES of them, in the last 10 minutes).
DISPATCH_PAUSE_ERROR_RATE = env.float("DISPATCH_PAUSE_ERROR_RATE", default=0.3)
DISPATCH_PAUSE_MIN_BATCHES = env.int("DISPATCH_PAUSE_MIN_BATCHES", default=5)
# How long a drain loop waits for the next batch a running launch seals.
DISPATCH_FREEZE_WAIT_S = env.float("DISPATCH_FREEZE_WAIT_S", default=10.0)
# Launches of larger audiences freeze their recipients on the worker.
LAUNCH_INLINE_RECIPIENTS = env.int("LAUNCH_INLINE_RECIPIENTS", default=5_000)
# A launch whose freeze gave no sign of life for this long lost its worker:
# the periodic tick resumes it, at most LAUNCH_MAX_RESUMES times, then fails
# it with the reason (campaigns.dispatch.launch_recovery).
LAUNCH_LEASE_S = env.int("LAUNCH_LEASE_S", default=300)
LAUNCH_MAX_RESUMES = env.int("LAUNCH_MAX_RESUMES", default=3)
# How far ahead of its send time a batch goes to Sinch (at most 7 days): held here,
# re-checked at release; at Sinch, a late opt-out costs a cancel and a replacement.
SINCH_SCHEDULE_AHEAD_HOURS = env.int("SINCH_SCHEDULE_AHEAD_HOURS", default=24)
# An opt-out or erasure at least this long before a scheduled batch's send
# time never results in a message: the batch is cancelled and replaced.
SCHEDULED_OPTOUT_MARGIN_S = env.int("SCHEDULED_OPTOUT_MARGIN_S", default=600)
# How long a cancel waits for Sinch to confirm it (cancels are asynchronous);
# unconfirmed ones are read again, and cancelled again, by the periodic tick.
SINCH_CANCEL_CONFIRM_WAIT_S = env.float("SINCH_CANCEL_CONFIRM_WAIT_S", default=5.0)
# Tracked links: BASE/l/<code> answers until TTL days after the campaign ends.
SHORT_LINK_BASE_URL = env.str("SHORT_LINK_BASE_URL", default="http://127.0.0.1:8000")
SHORT_LINK_TTL_DAYS = env.int("SHORT_LINK_TTL_DAYS", default=90)
# --- delivery reconciliation (campaigns.tracking.reconciliation) ---------------------

# The reconciliation task runs every this many minutes.
RECONCILE_EVERY_MINUTES = env.int("RECONCILE_EVERY_MINUTES", default=5)
# A batch Sinch has not finished, with no callback for this long, has its status
# read from Sinch (and again at most this often).
RECONCILE_SILENT_AFTER_S = env.int("RECONCILE_SILENT_AFTER_S", default=600)
# A campaign with messages waiting for a receipt and none for this long (after
# its last receipt or its last processed batch) is flagged "receipts stalled".
RECEIPTS_STALLED_AFTER_S = env.int("RECEIPTS_STALLED_AFTER_S", default=1800)
# After the campaign's ttl plus this, waiting messages are reported "no receipt".
RECEIPTS_TTL_MARGIN_S = env.int("RECEIPTS_TTL_MARGIN_S", default=3600)
# Kept counters are checked against a full count every run for campaigns below
# this many recipients, and once per RECONCILE_RECOUNT_EVERY_S for larger ones.
RECONCILE_RECOUNT_ALWAYS_BELOW = env.int(
    "RECONCILE_RECOUNT_ALWAYS_BELOW", default=50_000
)
RECONCILE_RECOUNT_EVERY_S = env.int("RECONCILE_RECOUNT_EVERY_S", default=3600)

# --- django-q2 --------------------------------------------------------------
# django-q2 reads Q_CLUSTER once, at import: tests override it in tests/settings.py.
WORKER_NAME = env.str("WORKER_NAME", default="")  # Batch.claimed_by; "": hostname
REDIS_URL = env.str("REDIS_URL", default="")
Q_CLUSTER = {
    "name": env.str("Q_CLUSTER_NAME", default="campaigns"),
    "workers": env.int("Q_WORKERS", default=2),
    # A task running longer than `timeout` is killed; `retry` must be larger,
    # or a slow task would be handed to a second worker while still running.
    "timeout": env.int("Q_TIMEOUT", default=1800),
    "retry": env.int("Q_RETRY", default=1860),
    # Our own tables record failures and drive retries, so the broker never
    # redelivers endlessly (0 would mean "forever").
    "max_attempts": 1,
    "ack_failures": True,
    "catch_up": False,
    "save_limit": 1000,
    "label": "Background tasks",
}
if REDIS_URL:
    Q_CLUSTER["redis"] = REDIS_URL
else:
    Q_CLUSTER["orm"] = "default"
    Q_CLUSTER["poll"] = 1

# --- logging ----------------------------------------------------------------

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {
        "plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"}
    },
    # Phone-like numbers are masked in everything written (erasure cannot
    # reach a log once written).
    "filters": {"mask_numbers": {"()": "config.lib.redaction.MaskNumbers"}},
    "handlers": {
        "console": {
            "class": "logging.StreamHandler",
            "formatter": "plain",
            "filters": ["mask_numbers"],
        }
    },
    "root": {"handlers": ["console"], "level": env.str("LOG_LEVEL", default="INFO")},
    "loggers": {
        "django.db.backends": {"level": "WARNING"},
        # Through the masked handler, not Django's own (unmasked) ones.
        "django": {"handlers": [], "level": "INFO"},
        "django.server": {"handlers": [], "level": "INFO"},
    },
}
