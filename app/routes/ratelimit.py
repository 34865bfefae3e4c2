"""Per-client-address rate limit of runs: a token bucket of `rate_limit_per_minute` tokens.

Kept in process memory, so with N replicas each enforces its own budget (a client behind a round-robin
proxy gets up to N times the rate); the sandbox queue bounds the real load either way.
"""

from __future__ import annotations

import math
import threading
import time


class RateLimiter:
    """`take(key)` spends a token, or returns the whole seconds to wait for the next one."""

    MAX_KEYS = 10_000  # clients remembered before idle (full) buckets are dropped

    def __init__(self, per_minute: int) -> None:
        self.per_minute = per_minute
        self.rate_per_s = per_minute / 60.0
        self._buckets: dict[str, tuple[float, float]] = {}  # key -> (tokens, monotonic time of last update)
        self._lock = threading.Lock()

    def take(self, key: str) -> int | None:
        if self.per_minute <= 0:
            return None
        now = time.monotonic()
        with self._lock:
            tokens, last = self._buckets.get(key, (float(self.per_minute), now))
            tokens = min(float(self.per_minute), tokens + (now - last) * self.rate_per_s)
            if tokens < 1.0:
                self._buckets[key] = (tokens, now)
                return max(1, math.ceil((1.0 - tokens) / self.rate_per_s))
            self._buckets[key] = (tokens - 1.0, now)
            if len(self._buckets) > self.MAX_KEYS:
                self._prune(now)
            return None

    def _prune(self, now: float) -> None:
        full_after_s = 60.0
        for key in [k for k, (_, last) in self._buckets.items() if now - last > full_after_s]:
            del self._buckets[key]
