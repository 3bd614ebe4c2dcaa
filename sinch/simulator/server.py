"""The simulator's HTTP server and the `Simulator` that ties the parts together.

Standard library only: a ThreadingHTTPServer with keep-alive (HTTP/1.1), one
thread per connection, each response written in one piece with Nagle off.
Use it in-process (tests) or through `manage.py sinch_simulator`:

    with Simulator(account=..., port=0).start() as sim:
        sim.url  # http://127.0.0.1:<port>
"""

import contextlib
import json
import logging
import socket
import threading
import time
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

from sinch import wire
from sinch.simulator import app_setup, control
from sinch.simulator.api import Api, Request, Response, error_response
from sinch.simulator.clock import SimClock
from sinch.simulator.engine import Engine
from sinch.simulator.knobs import Account, Knobs
from sinch.simulator.state import State
from sinch.simulator.validation import ApiError

logger = logging.getLogger("sinch.simulator")
API_QUIET_S = 0.2
REASONS = {status.value: status.phrase for status in HTTPStatus}


class Simulator:
    def __init__(
        self,
        *,
        account: Account,
        knobs: Knobs | None = None,
        host: str = "127.0.0.1",
        port: int = 0,
    ) -> None:
        self.account = account
        self.knobs = knobs or Knobs()
        self._initial_knobs = self.knobs.as_dict()
        self.state = State()
        self.clock = SimClock(self.knobs.time_factor)
        self.engine = Engine(
            state=self.state, knobs=self.knobs, clock=self.clock, account=account
        )
        self.api = Api(self)
        app_setup.seed(self)
        # Background work (callbacks, message generation) yields to API calls
        # being answered, or answered in the last API_QUIET_S (a burst).
        self.in_flight = 0
        self.last_call = 0.0
        self._in_flight_lock = threading.Lock()
        self.engine.sender.busy = self.engine.busy = self.api_busy
        self._server = _Server((host, port), _Handler)
        self._server.simulator = self
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    def start(self) -> "Simulator":
        """Serve from a background thread; returns self."""
        self.engine.start()
        self._thread = threading.Thread(
            target=self._server.serve_forever,
            kwargs={"poll_interval": 0.05},
            name="sim-http",
            daemon=True,
        )
        self._thread.start()
        return self

    def serve_forever(self) -> None:
        """Serve from this thread until interrupted (the management command)."""
        self.engine.start()
        try:
            self._server.serve_forever(poll_interval=0.2)
        finally:
            self.stop()

    def stop(self) -> None:
        if self._thread is not None:
            self._server.shutdown()
            self._thread = None
        self._server.server_close()
        self.engine.stop()

    def go_down(self) -> None:
        """An outage: stop listening and drop every open connection, so
        that calls meet "connection refused" until `come_back` (the
        simulated Sinch keeps its state and goes on sending meanwhile)."""
        if self._thread is not None:
            self._server.shutdown()
            self._thread = None
        self._server.server_close()
        self._server.drop_connections()

    def come_back(self) -> None:
        """The end of the outage: listen again on the same port."""
        address = self._server.server_address[:2]
        self._server = _Server(address, _Handler)
        self._server.simulator = self
        self._thread = threading.Thread(
            target=self._server.serve_forever,
            kwargs={"poll_interval": 0.05},
            name="sim-http",
            daemon=True,
        )
        self._thread.start()

    def __enter__(self) -> "Simulator":
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def set_knobs(self, values: dict[str, Any]) -> None:
        self.knobs.update(values)
        if "time_factor" in values:
            self.clock.set_factor(self.knobs.time_factor)
        self.engine.wake()

    def reset(self) -> None:
        self.engine.reset()
        self.state.clear()
        self.knobs.update(self._initial_knobs)
        self.clock.reset(self.knobs.time_factor)
        app_setup.seed(self)

    def api_busy(self) -> bool:
        return self.in_flight > 0 or time.monotonic() - self.last_call < API_QUIET_S

    def handle(self, request: Request) -> Response:
        if request.path.startswith(control.PREFIX):
            return self._handle(request)  # inspection is not API load
        with self._in_flight_lock:
            self.in_flight += 1
        try:
            return self._handle(request)
        finally:
            with self._in_flight_lock:
                self.in_flight -= 1
                self.last_call = time.monotonic()

    def _handle(self, request: Request) -> Response:
        try:
            if request.method == "POST" and request.path == wire.TOKEN_PATH:
                return self.api.token(request)
            response = (
                self.api.handle(request)
                or app_setup.handle(self, request)
                or control.handle(self, request)
            )
        except ApiError as error:
            return error_response(error, self.knobs.error_shape)
        if response is None:
            error = ApiError(404, f"No route for {request.method} {request.path}.")
            return error_response(error, self.knobs.error_shape)
        return response


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    # Kept-alive client connections must not hold up stop().
    block_on_close = False
    request_queue_size = 128
    simulator: Simulator

    def __init__(self, *args, **kwargs) -> None:
        self.connections: set[socket.socket] = set()
        self._connections_lock = threading.Lock()
        super().__init__(*args, **kwargs)

    def process_request(self, request, client_address) -> None:
        with self._connections_lock:
            self.connections.add(request)
        super().process_request(request, client_address)

    def shutdown_request(self, request) -> None:
        with self._connections_lock:
            self.connections.discard(request)
        super().shutdown_request(request)

    def drop_connections(self) -> None:
        """Close every open client connection (an outage, `go_down`)."""
        with self._connections_lock:
            dropped, self.connections = self.connections, set()
        for connection in dropped:
            with contextlib.suppress(OSError):
                connection.shutdown(socket.SHUT_RDWR)
            connection.close()

    def handle_error(self, request, client_address) -> None:
        # A client that hung up is no news; anything else is logged.
        logger.debug("connection from %s ended badly", client_address, exc_info=True)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "SinchSimulator/1"
    disable_nagle_algorithm = True
    server: _Server

    def do_GET(self) -> None:
        self._serve()

    do_POST = do_DELETE = do_PUT = do_PATCH = do_GET

    def _serve(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        parts = urlsplit(self.path)
        request = Request(
            method=self.command,
            path=parts.path,
            query=parse_qs(parts.query),
            headers=self.headers,
            body=body,
        )
        try:
            response = self.server.simulator.handle(request)
        except Exception:
            logger.exception("simulator failed on %s %s", self.command, parts.path)
            error = ApiError(500, "Simulator error.")
            response = error_response(error, "wrapped")
        if response.delay_s:
            time.sleep(response.delay_s)
        self._write(response)

    def _write(self, response: Response) -> None:
        body = response.body
        if not isinstance(body, bytes):
            body = json.dumps(body, separators=(",", ":")).encode()
        head = [f"HTTP/1.1 {response.status} {REASONS.get(response.status, '')}"]
        head.append("Content-Type: application/json")
        head.append(f"Content-Length: {len(body)}")
        head.extend(f"{k}: {v}" for k, v in response.headers.items())
        try:
            self.wfile.write(("\r\n".join(head) + "\r\n\r\n").encode() + body)
        except OSError:
            self.close_connection = True

    def log_message(self, format: str, *args: Any) -> None:
        logger.debug("%s " + format, self.address_string(), *args)
