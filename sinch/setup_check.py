"""The checks of `manage.py sinch_check`: the real Sinch setup, step by step.

Each step ends OK, WARN or FAIL with one line saying why and, unless it is OK,
one saying what to do. A step that needs one that failed is SKIPped. Secrets
and tokens never appear in any text.
"""

import hmac
from dataclasses import dataclass
from urllib.parse import urlsplit

from sinch import wire
from sinch.app_setup import App, AppSetupClient, Webhook
from sinch.client import SinchClient
from sinch.config import CREDENTIAL_SETTINGS, SIMULATOR_WEBHOOK_SECRET, SinchSettings
from sinch.errors import (
    SinchAuthError,
    SinchError,
    SinchNotFoundError,
    SinchTransportError,
    SinchValidationError,
)
from sinch.transport import RetryPolicy, Transport

OK, WARN, FAIL, SKIP = "OK", "WARN", "FAIL", "SKIP"
STEP_NAMES = (
    "credentials",
    "token",
    "batch API",
    "app",
    "reply linking",
    "webhook target",
    "webhook triggers",
    "webhook secret",
)
# The Batch API probe: a by-metadata read that finds nothing and changes nothing.
PROBE_METADATA = ("sinch_check", "probe")
# What the product loses without each trigger.
TRIGGER_LOSSES = {
    "MESSAGE_DELIVERY": "no delivery receipts (recipients stay 'submitted')",
    "MESSAGE_INBOUND": "no replies and no STOP by SMS (opt-outs are lost)",
    wire.BATCH_STATUS_TRIGGER: "no batch status (progress only by polling Sinch)",
}
VERIFY_SECRET = (
    "Verify it with a signed test callback: send a test message to a seed list. "
    "Sinch signs its delivery receipt with the webhook's secret: the receipt "
    "shows on the campaign when the secrets match; the web log says 'Sinch "
    "webhook refused (401): signature mismatch' when they differ."
)


@dataclass(frozen=True)
class Step:
    name: str
    status: str
    text: str
    advice: str = ""


@dataclass(frozen=True)
class Options:
    webhook_url: str  # where Sinch must post callbacks ("" when unknown)
    consent_management: bool = False  # OPT_IN/OPT_OUT required, not advised
    timeout_s: float = 10.0


def check_setup(
    conf: SinchSettings,
    configured: dict[str, str],
    options: Options,
    transport: Transport | None = None,
) -> list[Step]:
    """Every step, in order. `configured`: the SINCH_* settings as set."""
    transport = transport or Transport(
        timeout=(min(5.0, options.timeout_s), options.timeout_s),
        retry=RetryPolicy(attempts=2, backoff_s=0.5, backoff_max_s=1.0, max_wait_s=2),
    )
    steps = [_credentials(conf, configured)]
    if steps[0].status == FAIL:
        return steps + [_skip(name, "credentials") for name in STEP_NAMES[1:]]
    setup = AppSetupClient(conf, transport)
    steps.append(_token(conf, setup))
    if steps[-1].status == FAIL:
        return steps + [_skip(name, "a token") for name in STEP_NAMES[2:]]
    batch_client = SinchClient.from_settings(conf, transport=transport)
    steps.append(_batch_host(conf, batch_client))
    app_step, app = _app(conf, setup)
    steps.append(app_step)
    steps.append(reply_linking(app) if app else _skip("reply linking", "the app"))
    steps.extend(_webhook(conf, configured, options, setup, app is not None))
    return steps


def failed(steps: list[Step]) -> bool:
    return any(step.status == FAIL for step in steps)


# --- the steps ---


def _credentials(conf: SinchSettings, configured: dict[str, str]) -> Step:
    missing = [name for name in CREDENTIAL_SETTINGS if not configured.get(name)]
    if len(missing) == len(CREDENTIAL_SETTINGS):
        return Step(
            "credentials",
            FAIL,
            "No Sinch credentials are set: the product sends to the local simulator.",
            "Set SINCH_PROJECT_ID, SINCH_KEY_ID, SINCH_KEY_SECRET and SINCH_APP_ID "
            "(README: Going live with Sinch).",
        )
    if missing:
        return Step(
            "credentials",
            FAIL,
            f"Sinch is partly configured; missing: {', '.join(missing)}.",
            "Set all four: the project id, the access key's id and secret "
            "(dashboard: Settings > Access keys) and the Conversation API app id.",
        )
    return Step(
        "credentials",
        OK,
        f"Project {conf.project_id}, app {conf.app_id}, region {conf.region}.",
    )


def _token(conf: SinchSettings, setup: AppSetupClient) -> Step:
    url = conf.auth_url + wire.TOKEN_PATH
    try:
        setup.tokens.token()
    except (SinchAuthError, SinchValidationError) as exc:
        # RFC 6749 answers a refused client with 401 or 400 (invalid_client).
        return Step(
            "token",
            FAIL,
            f"Sinch refused the access key (HTTP {exc.status}) at {url}.",
            "SINCH_KEY_ID and SINCH_KEY_SECRET must be the Key ID and Key Secret of "
            f"an access key of project {conf.project_id} (dashboard: Settings > "
            "Access keys). The secret is shown once, at creation: if it is lost, "
            "create a new key.",
        )
    except SinchTransportError:
        return Step(
            "token",
            FAIL,
            f"The auth server does not answer at {url}.",
            "Check SINCH_AUTH_URL (default https://auth.sinch.com), DNS, and that "
            "this machine may open HTTPS connections to it (firewall, proxy).",
        )
    except SinchError as exc:
        return Step(
            "token",
            FAIL,
            f"The token request failed: {_why(exc)}.",
            "Try again in a few minutes; if it persists, see status.sinch.com.",
        )
    return Step("token", OK, f"An access token was obtained from {url}.")


def _batch_host(conf: SinchSettings, client: SinchClient) -> Step:
    host = conf.batch_api_url
    try:
        client.batches_by_metadata(*PROBE_METADATA)
    except SinchNotFoundError:
        return Step(
            "batch API",
            FAIL,
            f"The Batch API at {host} does not know project {conf.project_id}.",
            "Check SINCH_PROJECT_ID, and SINCH_REGION: it must be the region your "
            "app was created in (us, eu or br).",
        )
    except SinchAuthError as exc:
        return Step(
            "batch API",
            FAIL,
            f"The Batch API at {host} refused the token (HTTP {exc.status}).",
            f"The access key must belong to project {conf.project_id} "
            "(SINCH_PROJECT_ID), and the project must have the Batch API enabled.",
        )
    except SinchTransportError:
        return Step(
            "batch API",
            FAIL,
            f"The Batch API host of region {conf.region} does not answer at {host}.",
            "Check SINCH_REGION (or SINCH_BATCH_API_URL when set), DNS, and "
            "outbound HTTPS from this machine.",
        )
    except SinchError as exc:
        return Step("batch API", FAIL, f"{host} answered badly: {_why(exc)}.")
    return Step("batch API", OK, f"{host} answers for project {conf.project_id}.")


def _app(conf: SinchSettings, setup: AppSetupClient) -> tuple[Step, App | None]:
    host = conf.conversation_api_url
    try:
        app = setup.get_app()
    except SinchNotFoundError:
        step = Step(
            "app",
            FAIL,
            f"App {conf.app_id} is not known in project {conf.project_id} on {host}.",
            "Check SINCH_APP_ID (dashboard: Conversation API > Apps, the app's ID) "
            "and SINCH_REGION: an app created in another region is not found here.",
        )
        return step, None
    except SinchAuthError as exc:
        step = Step(
            "app",
            FAIL,
            f"The Conversation API at {host} refused the token (HTTP {exc.status}).",
            f"The access key must belong to project {conf.project_id}.",
        )
        return step, None
    except SinchTransportError:
        step = Step(
            "app",
            FAIL,
            f"The Conversation API of region {conf.region} does not answer at {host}.",
            "Check SINCH_REGION (or SINCH_CONVERSATION_API_URL when set), DNS, and "
            "outbound HTTPS from this machine.",
        )
        return step, None
    except SinchError as exc:
        return Step("app", FAIL, f"{host} answered badly: {_why(exc)}."), None
    name = f" ({app.display_name})" if app.display_name else ""
    return Step(
        "app", OK, f"App {conf.app_id}{name} is known in region {conf.region}."
    ), app


def reply_linking(app: App) -> Step:
    mode = app.processing_mode
    days = app.dispatch_retention_days
    if mode == "CONVERSATION":
        return Step(
            "reply linking",
            OK,
            "Processing mode CONVERSATION: replies carry the _batch_id of the "
            "campaign they answer, so each reply is linked to its campaign.",
        )
    if mode == "DISPATCH" and days:
        return Step(
            "reply linking",
            OK,
            f"Processing mode DISPATCH with a dispatch retention of {days} days: "
            f"a reply within {days} days of a message is linked to its campaign.",
        )
    advice = (
        "Set the app's dispatch retention to 1-7 days (dashboard: the app's "
        "settings), or use the CONVERSATION processing mode. STOP is honoured "
        "either way."
    )
    if mode == "DISPATCH":
        return Step(
            "reply linking",
            WARN,
            "Processing mode DISPATCH without dispatch retention: Sinch keeps no "
            "conversation metadata, so replies come back without the campaign's "
            "_batch_id and are only linked by inference (the last campaign sent "
            "to that number within REPLY_ATTRIBUTION_DAYS, marked inferred).",
            advice,
        )
    said = (
        f"The app's processing mode {mode!r} is unknown here"
        if mode
        else "Sinch did not say the app's processing mode"
    )
    return Step(
        "reply linking",
        WARN,
        f"{said}: whether replies can be linked to their campaign is unknown.",
        "Look at the app in the dashboard: CONVERSATION, or DISPATCH with a "
        "dispatch retention of 1-7 days, links replies. " + advice,
    )


def _webhook(
    conf: SinchSettings,
    configured: dict[str, str],
    options: Options,
    setup: AppSetupClient,
    app_known: bool,
) -> list[Step]:
    secret_step = _configured_secret(configured)
    if not options.webhook_url:
        target = Step(
            "webhook target",
            FAIL,
            "SITE_URL is not set, so the webhook's address is unknown.",
            "Set SITE_URL to the product's public address "
            "(https://campaigns.example.com), or pass --webhook-url.",
        )
        return [target, _skip("webhook triggers", "the webhook"), secret_step]
    if not app_known:
        return [
            _skip("webhook target", "the app"),
            _skip("webhook triggers", "the app"),
            secret_step,
        ]
    try:
        webhooks = setup.list_webhooks()
    except SinchError as exc:
        target = Step(
            "webhook target",
            FAIL,
            f"The app's webhooks could not be read: {_why(exc)}.",
        )
        return [target, _skip("webhook triggers", "the webhook"), secret_step]
    found = [w for w in webhooks if same_url(w.target, options.webhook_url)]
    if not found:
        return [
            _no_webhook(conf, options, webhooks),
            _skip("webhook triggers", "the webhook"),
            secret_step,
        ]
    webhook = found[0]
    steps = [_target(webhook), _triggers(webhook, options)]
    if secret_step.status == FAIL:
        return [*steps, secret_step]
    return [*steps, _webhook_secret(webhook, conf)]


def _no_webhook(conf: SinchSettings, options: Options, webhooks: list[Webhook]) -> Step:
    if webhooks:
        targets = ", ".join(w.target or "(none)" for w in webhooks)
        seen = f" Its webhooks target: {targets}."
    else:
        seen = " The app has no webhook."
    full = (
        f" The app already has {len(webhooks)} webhooks, the most Sinch allows: "
        "change or delete one."
        if len(webhooks) >= wire.MAX_WEBHOOKS_PER_APP
        else ""
    )
    return Step(
        "webhook target",
        FAIL,
        f"No webhook of app {conf.app_id} targets {options.webhook_url}.{seen}",
        f"Register one (dashboard: the app > Webhooks, or README: Going live with "
        f"Sinch) with target {options.webhook_url}, target type HTTP, the triggers "
        f"{', '.join(wire.PRODUCT_WEBHOOK_TRIGGERS)} and the secret of "
        f"SINCH_WEBHOOK_SECRET.{full}",
    )


def _target(webhook: Webhook) -> Step:
    if webhook.target_type != wire.WEBHOOK_TARGET_TYPE:
        return Step(
            "webhook target",
            FAIL,
            f"Webhook {webhook.webhook_id} targets {webhook.target} with target "
            f"type {webhook.target_type}: Sinch sends it nothing.",
            "Set its target type to HTTP.",
        )
    parts = urlsplit(webhook.target)
    if parts.scheme != "https" and parts.hostname not in ("localhost", "127.0.0.1"):
        return Step(
            "webhook target",
            WARN,
            f"Webhook {webhook.webhook_id} targets {webhook.target} over plain "
            "HTTP: callbacks (phone numbers, message texts) cross the internet "
            "unencrypted.",
            "Serve the product over HTTPS and register the https:// address.",
        )
    return Step(
        "webhook target",
        OK,
        f"Webhook {webhook.webhook_id} targets {webhook.target} (HTTP).",
    )


def _triggers(webhook: Webhook, options: Options) -> Step:
    missing = webhook.missing(wire.REQUIRED_WEBHOOK_TRIGGERS)
    consent = webhook.missing(wire.CONSENT_WEBHOOK_TRIGGERS)
    add = "Add them to the webhook's triggers (dashboard: the app > Webhooks)."
    if missing:
        losses = "; ".join(f"{t}: {TRIGGER_LOSSES[t]}" for t in missing)
        return Step(
            "webhook triggers", FAIL, f"Missing {', '.join(missing)} ({losses}).", add
        )
    if consent:
        status = FAIL if options.consent_management else WARN
        return Step(
            "webhook triggers",
            status,
            f"Missing {', '.join(consent)}: with Sinch's consent management on "
            "(Secondary mode), opt-outs and opt-ins arrive only through these "
            "triggers and would be lost.",
            add + " They do no harm without consent management.",
        )
    subscribed = ", ".join(wire.PRODUCT_WEBHOOK_TRIGGERS)
    return Step("webhook triggers", OK, f"Subscribed to {subscribed}.")


def _configured_secret(configured: dict[str, str]) -> Step:
    secrets = [s for s in configured.get("SINCH_WEBHOOK_SECRET", "").split(",") if s]
    if not secrets:
        return Step(
            "webhook secret",
            FAIL,
            "SINCH_WEBHOOK_SECRET is not set: the product refuses every callback.",
            "Set it to the secret of the app's webhook.",
        )
    if SIMULATOR_WEBHOOK_SECRET in (s.strip() for s in secrets):
        return Step(
            "webhook secret",
            FAIL,
            "SINCH_WEBHOOK_SECRET is the simulator's public development secret: "
            "anyone could sign callbacks.",
            "Choose a long random secret (python -c 'import secrets; "
            "print(secrets.token_urlsafe(32))'), set it on the webhook and in "
            "SINCH_WEBHOOK_SECRET.",
        )
    return Step("webhook secret", OK, "SINCH_WEBHOOK_SECRET is set.")


def _webhook_secret(webhook: Webhook, conf: SinchSettings) -> Step:
    if not webhook.secret:
        return Step(
            "webhook secret",
            WARN,
            "Sinch does not show whether the webhook has a secret, so it cannot be "
            "compared with SINCH_WEBHOOK_SECRET.",
            VERIFY_SECRET,
        )
    if webhook.secret_masked:
        return Step(
            "webhook secret",
            WARN,
            "The webhook has a secret, shown masked: it cannot be compared with "
            "SINCH_WEBHOOK_SECRET.",
            VERIFY_SECRET,
        )
    shown = webhook.secret.encode()
    if any(hmac.compare_digest(shown, s.encode()) for s in conf.webhook_secrets):
        return Step(
            "webhook secret", OK, "The webhook's secret is SINCH_WEBHOOK_SECRET."
        )
    return Step(
        "webhook secret",
        FAIL,
        "The webhook's secret differs from SINCH_WEBHOOK_SECRET: every callback "
        "would be refused (signature mismatch).",
        "Set the same secret on the webhook and in SINCH_WEBHOOK_SECRET.",
    )


# --- helpers ---


def same_url(a: str, b: str) -> bool:
    """Equal but for the case of scheme and host and a trailing slash."""
    pa, pb = urlsplit(a.strip()), urlsplit(b.strip())
    return (
        pa.scheme.lower() == pb.scheme.lower()
        and pa.netloc.lower() == pb.netloc.lower()
        and pa.path.rstrip("/") == pb.path.rstrip("/")
        and pa.query == pb.query
    )


def _why(exc: SinchError) -> str:
    return str(exc)  # status, Sinch's message; never a credential


def _skip(name: str, needs: str) -> Step:
    return Step(name, SKIP, f"Not checked: needs {needs}.")
