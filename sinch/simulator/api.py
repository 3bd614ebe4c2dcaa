"""The token endpoint and the Batch API, as request -> response functions.

Order of checks on /v1 routes: bearer token (401), project (403), rate limit
and injected faults (429/500), then the endpoint (a send: validation (400),
then room in the app's queue (429, sinch.simulator.ingress)). An injected timeout is
processed first and answered late, which is the case that forces the client
to reconcile: the batch exists although the caller never heard so.
"""

import base64
import binascii
import hmac
import random
import re
import threading
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs

from sinch import wire
from sinch.simulator import inbound, ingress, validation
from sinch.simulator.ids import ulid
from sinch.simulator.state import Batch, identity_key
from sinch.simulator.validation import ApiError

if TYPE_CHECKING:
    from sinch.simulator.server import Simulator

PROJECT_ROUTE = re.compile(
    r"^/v1/projects/([^/]+)/(messages|contacts|consents)(?:/([^/]+))?$"
)


@dataclass
class Request:
    method: str
    path: str
    query: dict[str, list[str]]
    headers: Any  # case-insensitive (email.message.Message)
    body: bytes


@dataclass
class Response:
    status: int
    body: Any = None  # JSON-able, or bytes
    headers: dict[str, str] = field(default_factory=dict)
    delay_s: float = 0.0  # answer this late (injected timeout)


def error_response(error: ApiError, shape: str) -> Response:
    inner: dict[str, Any] = {
        "code": error.status,
        "message": error.message,
        "status": wire.ERROR_STATUS_NAMES.get(error.status, "UNKNOWN"),
        "details": [],
    }
    if error.violations:
        inner["details"].append(
            {
                "@type": wire.BAD_REQUEST_DETAIL_TYPE,
                "fieldViolations": [
                    {"field": f, "description": d} for f, d in error.violations
                ],
            }
        )
    body = {"error": inner} if shape == "wrapped" else inner
    return Response(error.status, body, dict(error.headers))


class Api:
    def __init__(self, sim: "Simulator") -> None:
        self.sim = sim
        self.rng = random.Random()
        self._bucket_lock = threading.Lock()
        self._bucket_next = time.monotonic()

    # --- token ---

    def token(self, request: Request) -> Response:
        account = self.sim.account
        if self.sim.knobs.outage in ("auth", "all"):
            self.sim.state.count("token_outage")
            return error_response(
                ApiError(503, "The auth server is unavailable."),
                self.sim.knobs.error_shape,
            )
        key_id, secret = basic_credentials(request.headers.get("Authorization", ""))
        ok = hmac.compare_digest(key_id.encode(), account.key_id.encode())
        ok &= hmac.compare_digest(secret.encode(), account.key_secret.encode())
        if not ok:
            body = {"error": "invalid_client", "error_description": "Bad credentials"}
            return Response(401, body, {"WWW-Authenticate": 'Basic realm="sinch"'})
        form = parse_qs(request.body.decode("utf-8", "replace"))
        if form.get("grant_type") != ["client_credentials"]:
            body = {"error": "unsupported_grant_type", "error_description": ""}
            return Response(400, body)
        token = "sim." + ulid().lower() + ulid().lower()
        ttl = self.sim.knobs.token_ttl_s
        with self.sim.state.lock:
            self.sim.state.tokens[token] = self.sim.clock.now() + ttl
            self.sim.state.counters["tokens_issued"] += 1
        body = {
            "access_token": token,
            "expires_in": ttl,
            "scope": "",
            "token_type": "bearer",
        }
        return Response(200, body)

    # --- Batch API ---

    def handle(self, request: Request) -> Response | None:
        match = PROJECT_ROUTE.match(request.path)
        if not match:
            return None
        project, resource, item = match.groups()
        self.sim.state.count("api_calls")
        try:
            if self.sim.knobs.outage in ("api", "all"):
                raise ApiError(503, "The service is unavailable.")
            self.authorise(request, project)
            late = self._inject()
            response = self._route(request, resource, item)
        except ApiError as error:
            return error_response(error, self.sim.knobs.error_shape)
        response.delay_s = late
        return response

    def authorise(self, request: Request, project: str) -> None:
        header = request.headers.get("Authorization", "")
        token = header[7:] if header.startswith("Bearer ") else ""
        with self.sim.state.lock:
            expires = self.sim.state.tokens.get(token)
        if expires is None:
            challenge = {"WWW-Authenticate": wire.INVALID_TOKEN_CHALLENGE}
            raise ApiError(401, "Request had invalid credentials.", headers=challenge)
        if self.sim.clock.now() >= expires:
            challenge = {"WWW-Authenticate": wire.EXPIRED_TOKEN_CHALLENGE}
            raise ApiError(401, "The access token expired.", headers=challenge)
        if project != self.sim.account.project_id:
            raise ApiError(
                wire.WRONG_PROJECT_STATUS,
                f"The key has no access to project {project!r}.",
            )

    def _inject(self) -> float:
        """Rate limit and injected faults; returns how late to answer."""
        knobs = self.sim.knobs
        retry_after = {"Retry-After": str(knobs.retry_after_s)}
        if knobs.api_rate_limit and not self._take_token(knobs.api_rate_limit):
            raise ApiError(429, "Too many requests.", headers={"Retry-After": "1"})
        with self.sim.state.lock:
            forced = (
                self.sim.state.injected.popleft() if self.sim.state.injected else None
            )
        if forced is not None:
            if forced.get("timeout"):
                return float(forced.get("delay_s", knobs.timeout_s))
            status = int(forced.get("status", 500))
            headers = {}
            if status == 429:
                headers = {
                    "Retry-After": str(forced.get("retry_after", knobs.retry_after_s))
                }
            raise ApiError(status, "Injected failure.", headers=headers)
        roll = self.rng.random()
        if roll < knobs.error_429_ratio:
            raise ApiError(429, "Too many requests.", headers=retry_after)
        roll -= knobs.error_429_ratio
        if roll < knobs.error_500_ratio:
            raise ApiError(500, "Internal error.")
        roll -= knobs.error_500_ratio
        return knobs.timeout_s if roll < knobs.timeout_ratio else 0.0

    def _take_token(self, rate: float) -> bool:
        with self._bucket_lock:
            now = time.monotonic()
            # A bucket one second deep: bursts up to `rate` calls are fine.
            self._bucket_next = max(self._bucket_next, now - 1.0)
            if self._bucket_next > now:
                return False
            self._bucket_next += 1.0 / rate
            return True

    def _route(self, request: Request, resource: str, item: str | None) -> Response:
        method = request.method
        if resource == "messages" and item:
            if method == "GET":
                return self._get_batch(item)
        elif resource == "messages":
            handler = {"POST": self._send, "DELETE": self._cancel, "GET": self._list}
            if method in handler:
                return handler[method](request)
        elif resource == "contacts" and method in ("POST", "DELETE"):
            return self._contacts(request)
        elif resource == "consents" and method == "POST":
            return self._consents(request)
        raise ApiError(404, f"No route for {method} {request.path}.")

    def _send(self, request: Request) -> Response:
        now = self.sim.clock.now_dt()
        outcome = validation.check_send(request.body, self.sim.account.app_id, now)
        if isinstance(outcome, ApiError):
            raise outcome
        batch = Batch(
            batch_id=ulid(),
            body=request.body,
            size=outcome.size,
            metadata=outcome.batch_metadata,
            accepted_at=now.timestamp(),
            send_after=outcome.send_after.timestamp(),
            scheduled=outcome.scheduled,
            callback_url=outcome.callback_url,
        )
        with self.sim.state.lock:  # checked and stored at once
            ingress.check(self.sim, due=batch.send_after, size=batch.size)
            self.sim.state.add_batch(batch)
        self.sim.engine.accept(batch)
        send_after = wire.format_time(outcome.send_after)
        return Response(200, {"batch_id": batch.batch_id, "send_after": send_after})

    def _cancel(self, request: Request) -> Response:
        data = _json(request.body) if request.body else {}
        state = self.sim.state
        with state.lock:
            targets = []
            if data.get(wire.CANCEL_BODY_ID_FIELD) in state.batches:
                targets.append(state.batches[data[wire.CANCEL_BODY_ID_FIELD]])
            meta = (
                data.get("metadata") if isinstance(data.get("metadata"), dict) else {}
            )
            key = meta.get("key") or data.get("metadata_key")
            value = meta.get("value") or data.get("metadata_value")
            if key and value is not None:
                targets.extend(state.by_metadata.get((str(key), str(value)), []))
        for batch in targets:
            self.sim.engine.cancel(batch)
        # Always 200, cancelled or not (spec §3.2).
        return Response(200, wire.EMPTY_RESPONSE)

    def _get_batch(self, batch_id: str) -> Response:
        with self.sim.state.lock:
            batch = self.sim.state.batches.get(batch_id)
            if batch is None:
                raise ApiError(404, f"Batch {batch_id!r} not found.")
            return Response(200, batch.to_wire())

    def _list(self, request: Request) -> Response:
        key = (request.query.get("metadataKey") or [""])[0]
        value = request.query.get("metadataValue")
        if not key or value is None:
            raise ApiError(
                400,
                "Invalid argument",
                [("metadataKey", "metadataKey and metadataValue are required")],
            )
        with self.sim.state.lock:
            found = [
                b.to_wire() for b in self.sim.state.by_metadata.get((key, value[0]), [])
            ]
        if self.sim.knobs.metadata_list_shape == "list":
            return Response(200, found)
        # "object": the API page's shape, one batch object (and, since it does
        # not say, {} for none and a holder for several).
        if len(found) == 1:
            return Response(200, found[0])
        return Response(200, {"batches": found} if found else {})

    def _contacts(self, request: Request) -> Response:
        data = _json(request.body)
        engine = self.sim.engine
        state = self.sim.state
        if request.method == "POST":
            for item in validation.validate_contacts(data):
                contact = {
                    "id": ulid(),
                    "channel_identities": [
                        {
                            "channel": c["channel"],
                            "identity": c["identity"],
                            "app_id": c.get("app_id", ""),
                        }
                        for c in item["channel_identities"]
                    ],
                    "channel_priority": item.get("channel_priority") or [],
                    "display_name": item.get("display_name") or "Unknown",
                    "email": item.get("email", ""),
                    "external_id": item.get("external_id", ""),
                    "metadata": item.get("metadata", ""),
                    "language": item["language"],
                }
                with state.lock:
                    state.contacts[contact["id"]] = contact
                inbound.contact_changed(engine, "CREATE", contact)
            return Response(200, wire.EMPTY_RESPONSE)
        ids = validation.validate_ids(data, "contact_ids", wire.MAX_CONTACTS)
        for contact_id in ids:
            with state.lock:
                contact = state.contacts.pop(contact_id, None)
            if contact is not None:
                inbound.contact_changed(engine, "DELETE", contact)
        return Response(200, wire.EMPTY_RESPONSE)

    def _consents(self, request: Request) -> Response:
        data = _json(request.body)
        records = validation.validate_consents(data, app_id=self.sim.account.app_id)
        with self.sim.state.lock:
            for record in records:
                key = identity_key(record["identification"])
                self.sim.state.opt_outs[key].add(
                    record.get("consent_type", "OPT_OUT_ALL")
                )
        return Response(200, {"batch_id": ulid()})


def _json(body: bytes) -> dict:
    return validation.json_object(validation.loads_json(body))


def basic_credentials(header: str) -> tuple[str, str]:
    if not header.startswith("Basic "):
        return "", ""
    try:
        decoded = base64.b64decode(header[6:], validate=True).decode()
    except (binascii.Error, UnicodeDecodeError):
        return "", ""
    key_id, _, secret = decoded.partition(":")
    return key_id, secret
