"""A throwaway webhook that prints each Sinch callback and its signature verdict.

    python -m sinch.simulator.echo [--port 8001] [--secret SECRET]

For trying the simulator by hand (README); the product's own webhook is
the app's. Answers 200 to everything.
"""

import argparse
import contextlib
import json
import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from sinch.signatures import verify


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8001)
    parser.add_argument("--secret", default="sim-webhook-secret")
    args = parser.parse_args()

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            verdict = verify(dict(self.headers.items()), body, [args.secret])
            data = json.loads(body or b"{}")
            kind = next((k for k, v in data.items() if isinstance(v, dict)), "?")
            sys.stdout.write(f"{kind} signature={verdict.value} {body.decode()}\n")
            sys.stdout.flush()
            self.send_response(200)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer((args.host, args.port), Handler)
    sys.stdout.write(f"Printing callbacks sent to http://{args.host}:{args.port}/\n")
    sys.stdout.flush()
    with contextlib.suppress(KeyboardInterrupt):
        server.serve_forever()


if __name__ == "__main__":
    main()
