"""Simulated time: runs `factor` times faster than real time and can jump.

Scheduled batches, receipt latency, token lifetimes and callback backoff all
follow this clock, so a test can let ten minutes pass in a second.
"""

import threading
import time
from datetime import UTC, datetime


class SimClock:
    def __init__(self, factor: float = 1.0) -> None:
        self._lock = threading.Lock()
        self._factor = factor
        self._base_sim = time.time()
        self._base_mono = time.monotonic()

    @property
    def factor(self) -> float:
        return self._factor

    def now(self) -> float:
        """Simulated Unix time in seconds."""
        return self._base_sim + (time.monotonic() - self._base_mono) * self._factor

    def now_dt(self) -> datetime:
        return datetime.fromtimestamp(self.now(), UTC)

    def set_factor(self, factor: float) -> None:
        with self._lock:
            self._base_sim = self.now()
            self._base_mono = time.monotonic()
            self._factor = factor

    def advance(self, seconds: float) -> None:
        with self._lock:
            self._base_sim += seconds

    def reset(self, factor: float) -> None:
        with self._lock:
            self._base_sim = time.time()
            self._base_mono = time.monotonic()
            self._factor = factor

    def real_seconds(self, simulated: float) -> float:
        return simulated / self._factor
