"""Inspection and control endpoints under /_simulator/ (not part of Sinch).

GET  /_simulator/state[?batch_id=..&limit=100]  batches, messages, callbacks
GET  /_simulator/knobs                          current knobs
POST /_simulator/knobs          {"failure_ratio": 0.2, ...}
POST /_simulator/inbound        {"identity": "+15551230001", "text": "STOP"}
POST /_simulator/advance        {"seconds": 600}   let simulated time jump
POST /_simulator/expire-tokens  every issued token is expired from now on
POST /_simulator/inject         {"responses": [{"status": 429, "retry_after": 2},
                                               {"status": 500}, {"timeout": true}]}
                                the next API calls get these, in order
POST /_simulator/click          {"message_id": ..} or {"identity": ..}: the recipient
                                opens the short links of that message (their latest)
POST /_simulator/reset          forget everything; knobs back to start values
"""

import json
from typing import TYPE_CHECKING

from sinch.simulator import clicks, inbound
from sinch.simulator.api import Request, Response
from sinch.simulator.state import identity_key
from sinch.simulator.validation import ApiError

if TYPE_CHECKING:
    from sinch.simulator.server import Simulator

PREFIX = "/_simulator/"


def handle(sim: "Simulator", request: Request) -> Response | None:
    if not request.path.startswith(PREFIX):
        return None
    name = request.path[len(PREFIX) :].strip("/")
    try:
        data = json.loads(request.body) if request.body else {}
    except ValueError:
        raise ApiError(400, "Invalid JSON payload received.") from None
    if not isinstance(data, dict):
        raise ApiError(400, "A JSON object was expected.")
    if request.method == "GET" and name == "state":
        return Response(200, _state(sim, request))
    if name == "knobs":
        if request.method == "POST":
            try:
                sim.set_knobs(data)
            except ValueError as exc:
                raise ApiError(400, str(exc)) from None
        return Response(200, sim.knobs.as_dict())
    if request.method != "POST":
        raise ApiError(404, f"No route for {request.method} {request.path}.")
    if name == "inbound":
        if not data.get("identity"):
            raise ApiError(400, "identity is required")
        message_id = inbound.receive(
            sim.engine,
            channel=str(data.get("channel", "SMS")),
            identity=str(data["identity"]),
            text=str(data.get("text", "STOP")),
        )
        return Response(200, {"message_id": message_id})
    if name == "advance":
        sim.clock.advance(float(data.get("seconds", 0)))
        sim.engine.wake()
        return Response(200, {"now": sim.clock.now_dt().isoformat()})
    if name == "expire-tokens":
        with sim.state.lock:
            for token in sim.state.tokens:
                sim.state.tokens[token] = 0.0
        return Response(200, {"expired": len(sim.state.tokens)})
    if name == "inject":
        responses = data.get("responses")
        if not isinstance(responses, list):
            raise ApiError(400, "responses: a list is required")
        with sim.state.lock:
            sim.state.injected.extend(r for r in responses if isinstance(r, dict))
        return Response(200, {"queued": len(sim.state.injected)})
    if name == "click":
        return Response(200, _click(sim, data))
    if name == "reset":
        sim.reset()
        return Response(200, {"reset": True})
    raise ApiError(404, f"No route for {request.method} {request.path}.")


def _state(sim: "Simulator", request: Request) -> dict:
    batch_id = (request.query.get("batch_id") or [""])[0]
    limit = int((request.query.get("limit") or ["100"])[0])
    data = sim.state.to_json(batch_id=batch_id, limit=limit)
    data["now"] = sim.clock.now_dt().isoformat()
    data["time_factor"] = sim.clock.factor
    data["callback_backlog"] = sim.engine.sender.backlog()
    return data


def _click(sim: "Simulator", data: dict) -> dict:
    """Open the short links of one message: by id, else the identity's latest."""
    message_id, identity = (
        str(data.get("message_id", "")),
        str(data.get("identity", "")),
    )
    if not (message_id or identity):
        raise ApiError(400, "message_id or identity is required")
    with sim.state.lock:
        messages = list(sim.state.messages)
    found = [
        m
        for m in messages
        if (message_id and m.message_id == message_id)
        or (identity and identity_key(m.identity) == identity_key(identity))
    ]
    if not found:
        raise ApiError(404, "No such message.")
    urls = clicks.links_in(found[-1].rendered)
    if not urls:
        raise ApiError(400, "The message holds no short link.")
    agent = str(data.get("user_agent") or clicks.PHONE_BROWSER)
    return {"opened": [{"url": u, "status": clicks.open_link(u, agent)} for u in urls]}
