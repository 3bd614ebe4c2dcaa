"""The main Conversation API's app and webhooks endpoints (what sinch_check reads).

GET    /v1/projects/{p}/apps/{app_id}            the app (404 for another id)
GET    /v1/projects/{p}/apps/{app_id}/webhooks   {"webhooks": [...]}
POST   /v1/projects/{p}/webhooks                 create one
GET    /v1/projects/{p}/webhooks/{id}            read one
PATCH  /v1/projects/{p}/webhooks/{id}            change target, target_type,
                                                 triggers or secret
DELETE /v1/projects/{p}/webhooks/{id}

The app's processing mode and retention come from the knobs (processing_mode,
dispatch_retention); the webhook's secret is shown as the webhook_secret_shown
knob says. A simulator with a webhook_url knob starts with one webhook, as a
ready setup has: that target, every trigger the product needs, the account's
secret. The registered webhooks are what these endpoints serve; callbacks
still go to the webhook_url knob.
"""

import hmac
import re
from typing import TYPE_CHECKING, Any

from sinch import wire
from sinch.simulator.api import Request, Response, basic_credentials
from sinch.simulator.ids import ulid
from sinch.simulator.validation import ApiError, json_object, loads_json

if TYPE_CHECKING:
    from sinch.simulator.server import Simulator

APP_ROUTE = re.compile(r"^/v1/projects/([^/]+)/apps/([^/]+)(/webhooks)?$")
WEBHOOK_ROUTE = re.compile(r"^/v1/projects/([^/]+)/webhooks(?:/([^/]+))?$")
# What a dispatch retention "on" amounts to (Sinch allows 0 to 7 days).
RETENTION_DAYS_WHEN_ON = 7
MAX_TARGET_LENGTH = 742
TRIGGER = re.compile(r"^[A-Z][A-Z_]*$")
WEBHOOK_FIELDS = ("target", "target_type", "triggers", "secret")


def seed(sim: "Simulator") -> None:
    """The webhook of a ready setup, when the simulator knows where to post."""
    if not sim.knobs.webhook_url:
        return
    webhook = {
        "id": ulid(),
        "app_id": sim.account.app_id,
        "target": sim.knobs.webhook_url,
        "target_type": wire.WEBHOOK_TARGET_TYPE,
        "triggers": list(wire.PRODUCT_WEBHOOK_TRIGGERS),
        "secret": sim.account.webhook_secret,
    }
    with sim.state.lock:
        sim.state.webhooks[webhook["id"]] = webhook


def handle(sim: "Simulator", request: Request) -> Response | None:
    app_match = APP_ROUTE.match(request.path)
    webhook_match = WEBHOOK_ROUTE.match(request.path)
    if not (app_match or webhook_match):
        return None
    project = (app_match or webhook_match).group(1)
    sim.state.count("conversation_api_calls")
    _authorise(sim, request, project)
    if app_match:
        app_id, webhooks = app_match.group(2), app_match.group(3)
        if request.method != "GET":
            raise ApiError(404, f"No route for {request.method} {request.path}.")
        _known_app(sim, app_id)
        if webhooks:
            return Response(200, {"webhooks": _list(sim, app_id)})
        return Response(200, _app(sim))
    webhook_id = webhook_match.group(2)
    if webhook_id is None:
        if request.method != "POST":
            raise ApiError(404, f"No route for {request.method} {request.path}.")
        return Response(200, _create(sim, _body(request)))
    with sim.state.lock:
        webhook = sim.state.webhooks.get(webhook_id)
        if webhook is None:
            raise ApiError(404, f"Webhook {webhook_id!r} not found.")
        if request.method == "GET":
            return Response(200, _shown(sim, webhook))
        if request.method == "DELETE":
            del sim.state.webhooks[webhook_id]
            return Response(200, wire.EMPTY_RESPONSE)
        if request.method == "PATCH":
            changes = _fields(sim, _body(request), partial=True, ignore=webhook_id)
            webhook.update(changes)
            return Response(200, _shown(sim, webhook))
    raise ApiError(404, f"No route for {request.method} {request.path}.")


def _authorise(sim: "Simulator", request: Request, project: str) -> None:
    """A bearer token, or (unlike the Batch API) the access key itself."""
    header = request.headers.get("Authorization", "")
    if header.startswith("Basic "):
        key_id, secret = basic_credentials(header)
        account = sim.account
        ok = hmac.compare_digest(key_id.encode(), account.key_id.encode())
        ok &= hmac.compare_digest(secret.encode(), account.key_secret.encode())
        if not ok:
            raise ApiError(401, "Request had invalid credentials.")
        if project != account.project_id:
            raise ApiError(
                wire.WRONG_PROJECT_STATUS,
                f"The key has no access to project {project!r}.",
            )
        return
    sim.api.authorise(request, project)


def _app(sim: "Simulator") -> dict[str, Any]:
    knobs = sim.knobs
    days = RETENTION_DAYS_WHEN_ON if knobs.dispatch_retention else 0
    retention: dict[str, Any] = {"retention_type": "MESSAGE_EXPIRE_POLICY"}
    if days:  # proto3 JSON leaves a 0 out
        retention[wire.APP_RETENTION_DAYS_FIELD] = days
    return {
        "id": sim.account.app_id,
        "display_name": "Simulator app",
        "processing_mode": knobs.processing_mode,
        wire.APP_DISPATCH_RETENTION_FIELD: retention,
        "retention_policy": {
            "retention_type": "MESSAGE_EXPIRE_POLICY",
            "ttl_days": 180,
        },
        "channel_credentials": [{"channel": "SMS", "state": {"status": "ACTIVE"}}],
        "conversation_metadata_report_view": "NONE",
    }


def _known_app(sim: "Simulator", app_id: str) -> None:
    if app_id != sim.account.app_id:
        raise ApiError(404, f"App {app_id!r} not found.")


def _list(sim: "Simulator", app_id: str) -> list[dict]:
    with sim.state.lock:
        return [
            _shown(sim, w) for w in sim.state.webhooks.values() if w["app_id"] == app_id
        ]


def _shown(sim: "Simulator", webhook: dict) -> dict:
    shown = {k: v for k, v in webhook.items() if k != "secret"}
    secret = webhook.get("secret", "")
    how = sim.knobs.webhook_secret_shown
    if secret and how == "plain":
        shown["secret"] = secret
    elif secret and how == "masked":
        shown["secret"] = "*" * 8
    return shown


def _body(request: Request) -> dict:
    return json_object(loads_json(request.body))


def _create(sim: "Simulator", data: dict) -> dict:
    app_id = str(data.get("app_id") or "")
    if not app_id:
        raise ApiError(400, "Invalid argument", [("app_id", "app_id is required")])
    _known_app(sim, app_id)
    webhook = {
        "id": ulid(),
        "app_id": app_id,
        "target_type": wire.WEBHOOK_DEFAULT_TARGET_TYPE,
        "triggers": [],
        "secret": "",
        **_fields(sim, data, partial=False),
    }
    with sim.state.lock:
        count = sum(1 for w in sim.state.webhooks.values() if w["app_id"] == app_id)
        if count >= wire.MAX_WEBHOOKS_PER_APP:
            raise ApiError(
                400,
                f"An app has at most {wire.MAX_WEBHOOKS_PER_APP} webhooks.",
            )
        sim.state.webhooks[webhook["id"]] = webhook
    return _shown(sim, webhook)


def _fields(sim: "Simulator", data: dict, *, partial: bool, ignore: str = "") -> dict:
    changes = {k: data[k] for k in WEBHOOK_FIELDS if k in data}
    violations = []
    target = changes.get("target")
    if target is None and not partial:
        violations.append(("target", "target is required"))
    elif target is not None:
        if not isinstance(target, str) or not target.startswith(
            ("http://", "https://")
        ):
            violations.append(("target", "target must be an http(s) URL"))
        elif len(target) > MAX_TARGET_LENGTH:
            violations.append(("target", f"at most {MAX_TARGET_LENGTH} characters"))
        else:
            with sim.state.lock:
                taken = any(
                    w["target"] == target and w["id"] != ignore
                    for w in sim.state.webhooks.values()
                )
            if taken:
                violations.append(("target", "the app has a webhook with this target"))
    if "target_type" in changes and changes["target_type"] not in ("HTTP", "DISMISS"):
        violations.append(("target_type", "HTTP or DISMISS"))
    triggers = changes.get("triggers")
    if triggers is not None and not (
        isinstance(triggers, list)
        and all(isinstance(t, str) and TRIGGER.match(t) for t in triggers)
    ):
        violations.append(("triggers", "a list of trigger names"))
    if "secret" in changes and not isinstance(changes["secret"], str):
        violations.append(("secret", "a string"))
    if violations:
        raise ApiError(400, "Invalid argument", violations)
    return changes
