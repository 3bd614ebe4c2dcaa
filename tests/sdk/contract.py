"""The official Sinch Python SDK as the judge of what we send (issue 12, item 9).

`SdkValidator` runs tests/sdk/validator.py in a process of its own (the SDK's
import name `sinch` is also ours) on the SDK installed by `make install-dev`
in .venv/sinch-sdk (requirements-sdk.txt; SINCH_SDK_DIR overrides the place).
Nothing is downloaded at test time: a missing or outdated install fails with
what to run.

The SDK models the Conversation API, not the Batch API. A Batch API body is
checked as the Conversation API requests it stands for, one per entry of
`recipient_and_params` (`batch_requests`):

- `app_id`, `message`, `ttl`, `channel_priority_order`, `channel_properties`,
  `processing_strategy`, `callback_url`, `correlation_id` and every other
  top-level key go into each request as they are, so a key the SDK does not
  know (a misspelt or Batch-only-looking name) is refused there;
- the entry's `recipient` becomes the request's `recipient`;
- `message_metadata` (an object in the Batch API, request level merged with
  the entry's, the entry winning) becomes the JSON string the Conversation API
  takes; `conversation_metadata` is merged the same way and stays an object.

Batch-only parts have no SDK model and are checked here against the wire
notes (shared/spec/sinch-batch-api.md §3.1) instead: `batch_metadata` and each
entry's `parameters` are objects of strings, `send_after` is an RFC 3339 UTC
time, `recipient_and_params` holds 1 to 1000 entries, and an entry holds only
`recipient`, `parameters`, `message_metadata` and `conversation_metadata`.
"""

import json
import os
import re
import subprocess
import sys
import tempfile
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
SDK_DIR = Path(os.environ.get("SINCH_SDK_DIR") or ROOT / ".venv" / "sinch-sdk")
VALIDATOR = Path(__file__).with_name("validator.py")
REQUIREMENTS = ROOT / "requirements-sdk.txt"

BATCH_ONLY = ("batch_metadata", "send_after", "recipient_and_params")
MERGED = ("message_metadata", "conversation_metadata")
ENTRY_KEYS = ("recipient", "parameters", *MERGED)
MAX_ENTRIES = 1000
RFC3339_UTC = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d{1,9})?Z$")


class SdkUnavailable(RuntimeError):
    """The SDK is not installed where the tests look, or will not start."""


def pinned_version() -> str:
    match = re.search(r"^sinch==(\S+)", REQUIREMENTS.read_text(), re.MULTILINE)
    assert match, f"{REQUIREMENTS} pins no sinch version"
    return match.group(1)


class SdkValidator:
    """One validator process; `refusals` asks it about one body."""

    def __init__(self, sdk_dir: Path = SDK_DIR) -> None:
        wanted = pinned_version()
        if not (sdk_dir / "sinch").is_dir():
            raise SdkUnavailable(
                f"The Sinch SDK {wanted} is not installed in {sdk_dir}: run "
                "`make install-dev` (it installs requirements-sdk.txt there)."
            )
        self._stderr = tempfile.TemporaryFile(mode="w+")  # noqa: SIM115 (close())
        self._process = subprocess.Popen(
            [sys.executable, "-I", "-S", str(VALIDATOR), str(sdk_dir)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=self._stderr,
            text=True,
        )
        hello = self._read()
        self.version = hello["sdk"]
        self.models = hello["models"]
        if self.version != wanted:
            self.close()
            raise SdkUnavailable(
                f"{sdk_dir} holds the Sinch SDK {self.version}, requirements-sdk.txt "
                f"pins {wanted}: run `make install-dev`."
            )

    def _read(self) -> dict[str, Any]:
        line = self._process.stdout.readline()
        if not line:
            self._stderr.seek(0)
            raise SdkUnavailable(
                "the SDK validator stopped:\n" + self._stderr.read()[-3000:]
            )
        return json.loads(line)

    def refusals(self, model: str, body: Any) -> list[str]:
        """What the SDK refuses in `body` (a "request" or a "message"); [] if
        nothing."""
        self._process.stdin.write(json.dumps({"model": model, "body": body}) + "\n")
        self._process.stdin.flush()
        return self._read()["errors"]

    def message_refusals(self, message: Mapping[str, Any]) -> list[str]:
        """A `message` object (one kind, optional overrides)."""
        return self.refusals("message", message)

    def batch_refusals(self, body: Mapping[str, Any]) -> list[str]:
        """A Batch API send body: its Batch-only parts, then each recipient's
        Conversation API request (see the module docstring)."""
        problems = batch_only_problems(body)
        for n, request in enumerate(batch_requests(body)):
            problems += [
                f"recipient_and_params.{n}: {problem}"
                for problem in self.refusals("request", request)
            ]
        return problems

    def close(self) -> None:
        if self._process.poll() is None:
            self._process.stdin.close()
            self._process.wait(timeout=10)
        self._stderr.close()


def batch_requests(body: Mapping[str, Any]) -> Iterator[dict[str, Any]]:
    """The Conversation API requests a Batch API body stands for, in order."""
    shared = {k: v for k, v in body.items() if k not in BATCH_ONLY + MERGED}
    for entry in body.get("recipient_and_params") or ():
        request = {**shared, "recipient": entry.get("recipient")}
        for key in MERGED:
            merged = {**(body.get(key) or {}), **(entry.get(key) or {})}
            if merged:
                request[key] = merged
        if "message_metadata" in request:
            request["message_metadata"] = json.dumps(request["message_metadata"])
        yield request


def batch_only_problems(body: Mapping[str, Any]) -> list[str]:
    """The Batch-only parts, checked against the wire notes (no SDK model)."""
    problems = []
    entries = body.get("recipient_and_params")
    if not isinstance(entries, list) or not 1 <= len(entries) <= MAX_ENTRIES:
        problems.append(f"recipient_and_params: 1 to {MAX_ENTRIES} entries needed")
        entries = []
    for name, value in [("batch_metadata", body.get("batch_metadata"))] + [
        (f"recipient_and_params.{n}.parameters", entry.get("parameters"))
        for n, entry in enumerate(entries)
    ]:
        if value is not None and not _string_map(value):
            problems.append(f"{name}: not an object of strings: {value!r}")
    for key in MERGED:
        if key in body and not _string_map(body[key]):
            problems.append(f"{key}: not an object of strings")
    for n, entry in enumerate(entries):
        unknown = sorted(set(entry) - set(ENTRY_KEYS))
        if unknown:
            problems.append(f"recipient_and_params.{n}: unknown keys {unknown}")
    send_after = body.get("send_after")
    if send_after is not None and not RFC3339_UTC.match(str(send_after)):
        problems.append(f"send_after: not an RFC 3339 UTC time: {send_after!r}")
    return problems


def _string_map(value: Any) -> bool:
    return isinstance(value, dict) and all(
        isinstance(k, str) and isinstance(v, str) for k, v in value.items()
    )
