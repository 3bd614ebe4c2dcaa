"""Simulated clicks: a recipient opens the short link their message carried.

A tracked-links campaign renders each recipient's short link into their
message (a per-recipient `parameters` value such as
https://go.example.com/l/aB3dE5gH). The simulator finds those links in the
message it rendered and requests them as a phone's browser would, through
the real redirect URL, without following the redirect (the target is the
campaign's web site, not ours).

- `--click-ratio` (knob `click_ratio`): that share of delivered messages
  gets its links opened, by background threads, shortly after delivery.
- POST /_simulator/click {"message_id": ...} or {"identity": ...}
  (optional "user_agent", e.g. a preview fetcher's): opens now and answers
  what each link returned.
"""

import http.client
import logging
import queue
import re
import threading
from collections.abc import Iterable
from typing import Any
from urllib.parse import urlsplit

from sinch.placeholders import strings

logger = logging.getLogger("sinch.simulator")

# A short link: any host, a path ending in /l/ and 8 base62 characters.
SHORT_LINK = re.compile(r"https?://[^\s\"'<>]+?/l/[0-9A-Za-z]{8}(?![0-9A-Za-z])")
PHONE_BROWSER = (
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X) AppleWebKit/605.1.15 "
    "(KHTML, like Gecko) Version/17.4 Mobile/15E148 Safari/604.1"
)
WORKERS = 2
_queue: queue.Queue = queue.Queue(10_000)
_threads: list[threading.Thread] = []
_lock = threading.Lock()
opened = {"ok": 0, "failed": 0}


def links_in(rendered: Any) -> list[str]:
    """The short links in a rendered message, in order, without repeats."""
    found: list[str] = []
    for text in strings(rendered):
        for url in SHORT_LINK.findall(text):
            if url not in found:
                found.append(url)
    return found


def open_link(url: str, user_agent: str = PHONE_BROWSER, timeout: float = 5.0) -> int:
    """GET `url` (redirect not followed); the HTTP status, 0 when unreachable."""
    parts = urlsplit(url)
    kind = (
        http.client.HTTPSConnection
        if parts.scheme == "https"
        else (http.client.HTTPConnection)
    )
    try:
        conn = kind(parts.netloc, timeout=timeout)
        conn.request("GET", parts.path or "/", headers={"User-Agent": user_agent})
        status = conn.getresponse().status
        conn.close()
    except OSError as exc:
        logger.warning("short link %s not reachable: %s", url, exc)
        opened["failed"] += 1
        return 0
    opened["ok"] += 1
    return status


def open_later(urls: Iterable[str]) -> None:
    """Open `urls` from a background thread (a click after delivery)."""
    _start()
    for url in urls:
        try:
            _queue.put_nowait(url)
        except queue.Full:
            opened["failed"] += 1


def pending() -> int:
    return _queue.unfinished_tasks


def _start() -> None:
    with _lock:
        if _threads:
            return
        for n in range(WORKERS):
            thread = threading.Thread(target=_work, name=f"sim-clicks-{n}", daemon=True)
            thread.start()
            _threads.append(thread)


def _work() -> None:
    while True:
        url = _queue.get()
        try:
            open_link(url)
        finally:
            _queue.task_done()
