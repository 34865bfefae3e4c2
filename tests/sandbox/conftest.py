"""A real sandbox pool, driven from its own event loop thread, shared by the sandbox tests.

In CI (CI=true) the pool starts in strict mode, so a missing protection fails every test here
instead of skipping it.
"""

from __future__ import annotations

import asyncio
import os
import threading
from collections.abc import Coroutine, Iterator
from typing import Any

import pytest

from app.config import Settings
from app.models import Trace
from app.sandbox import SandboxPool
from tests.conftest import IN_CI

CANARY_ENV = "GRADWALK_TEST_CANARY"
CANARY = "canary-7f3a9c1e-do-not-leak"

NORMAL = """\
import torch
x = torch.tensor([1.0, 2.0, 3.0], requires_grad=True)
y = (x ** 2).sum()
y.backward()
print(x.grad)
"""


def sandbox_settings(**overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "sandbox_mode": "strict" if IN_CI else "dev",
        "timeout_s": 2.0,
        "cpu_s": 2,
        "memory_mb": 1024,
        "max_concurrent_runs": 2,
        "max_queued_runs": 16,
    }
    values.update(overrides)
    return Settings(**values)


def current_test() -> str:
    """The running test's id (pytest sets PYTEST_CURRENT_TEST), as a run's client key."""
    return os.environ.get("PYTEST_CURRENT_TEST", "test").split(" ")[0]


class SyncPool:
    """A SandboxPool on a private event loop, with blocking helpers for tests."""

    def __init__(self, settings: Settings) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()
        self.pool = SandboxPool(settings)
        try:
            self.call(self.pool.start())
        except BaseException:
            self._stop_loop()
            raise

    def call(self, coro: Coroutine[Any, Any, Any], timeout: float = 120) -> Any:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    async def arun(self, source: str, client: str = "") -> Trace:
        """On the pool's loop: one run's checked document, as the model. The client is the running
        test unless named: the suite's earlier attacks do not make a later test's runs a busy
        client's (idle CPU priority from their start, starved on a loaded machine)."""
        document = await self.pool.trace_document(source, client or current_test())
        return document.trace()

    def run(self, source: str, client: str = "") -> Trace:
        return self.call(self.arun(source, client or current_test()))

    def close(self) -> None:
        try:
            self.call(self.pool.close())
        finally:
            self._stop_loop()

    def _stop_loop(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join()
        self.loop.close()


def require_root() -> None:
    if os.geteuid() != 0:
        if IN_CI:
            pytest.fail("the sandbox suite runs as root in CI")
        pytest.skip("the full sandbox needs root (namespaces, uids); dev mode is covered by the API tests")


@pytest.fixture(scope="session")
def pool() -> Iterator[SyncPool]:
    """One pool for the attack suite; the service's environment carries a canary while it starts."""
    require_root()
    os.environ[CANARY_ENV] = CANARY
    try:
        p = SyncPool(sandbox_settings())
    finally:
        os.environ.pop(CANARY_ENV, None)
    os.environ[CANARY_ENV] = CANARY  # present in the service for the whole suite
    yield p
    os.environ.pop(CANARY_ENV, None)
    p.close()


def assert_normal(pool: SyncPool) -> None:
    """A normal program right after an attack gets its correct trace."""
    t = pool.run(NORMAL)
    assert t.status == "ok", t.error
    assert t.stdout == "tensor([2., 4., 6.])\n"
    x = next(n for n in t.nodes if n.name == "x")
    assert x.grad == [2.0, 4.0, 6.0]
