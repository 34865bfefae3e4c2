"""Per-client-address rate limit of runs: a token bucket of `rate_limit_per_minute` tokens.

`RateLimiter` keeps the buckets in process memory (one server on SQLite). `SharedRateLimiter` keeps
them in PostgreSQL, so replicas behind a proxy spend one budget per client between them: one
statement per run, on the database's clock (replicas' clocks may differ).
"""

from __future__ import annotations

import logging
import math
import threading
import time

from sqlalchemy import Engine, text
from sqlalchemy.exc import SQLAlchemyError

log = logging.getLogger("gradwalk.ratelimit")


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


_TAKE = text(
    """
    INSERT INTO rate_buckets AS b (client, tokens, updated_s)
    VALUES (:client, :cap - 1, EXTRACT(EPOCH FROM clock_timestamp()))
    ON CONFLICT (client) DO UPDATE
    SET tokens = LEAST(:cap, b.tokens + (EXTRACT(EPOCH FROM clock_timestamp()) - b.updated_s) * :rate) - 1,
        updated_s = EXTRACT(EPOCH FROM clock_timestamp())
    WHERE LEAST(:cap, b.tokens + (EXTRACT(EPOCH FROM clock_timestamp()) - b.updated_s) * :rate) >= 1
    RETURNING tokens
    """
)
_LEFT = text(
    "SELECT LEAST(:cap, tokens + (EXTRACT(EPOCH FROM clock_timestamp()) - updated_s) * :rate) FROM rate_buckets WHERE client = :client"
)


class SharedRateLimiter:
    """As RateLimiter, with the buckets in PostgreSQL (table rate_buckets, migration 0002)."""

    def __init__(self, engine: Engine, per_minute: int) -> None:
        self.engine = engine
        self.per_minute = per_minute
        self.rate_per_s = per_minute / 60.0

    def take(self, key: str) -> int | None:
        if self.per_minute <= 0:
            return None
        params = {"client": key[:64], "cap": float(self.per_minute), "rate": self.rate_per_s}
        try:
            with self.engine.begin() as connection:
                if connection.execute(_TAKE, params).first() is not None:
                    return None
                left = connection.execute(_LEFT, params).scalar() or 0.0
        except SQLAlchemyError:  # the database is away: runs go on (the sandbox queue still bounds the load)
            log.warning("rate limit unavailable: the database did not answer; letting the run through", exc_info=True)
            return None
        return max(1, math.ceil((1.0 - left) / self.rate_per_s))
