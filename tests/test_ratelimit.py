"""app/ratelimit.py: the per-address token buckets, in memory and shared through the database."""

from __future__ import annotations

import pytest

from app.ratelimit import RateLimiter


def test_shared_rate_limiter_lets_runs_through_when_the_database_is_away() -> None:
    from sqlalchemy import create_engine

    from app.ratelimit import SharedRateLimiter

    nowhere = create_engine("postgresql+psycopg://nobody@127.0.0.1:1/none", connect_args={"connect_timeout": 2})
    assert SharedRateLimiter(nowhere, 1).take("203.0.113.1") is None  # a run, not a 500


def test_rate_limiter_refills_over_time(monkeypatch: pytest.MonkeyPatch) -> None:
    now = [1000.0]
    monkeypatch.setattr("app.ratelimit.time.monotonic", lambda: now[0])
    limiter = RateLimiter(per_minute=60)
    assert all(limiter.take("a") is None for _ in range(60))
    assert limiter.take("a") == 1
    assert limiter.take("b") is None  # per address
    now[0] += 1.0
    assert limiter.take("a") is None and limiter.take("a") == 1
    assert RateLimiter(per_minute=0).take("a") is None
