"""app/sandbox/inflight.py: identical runs in flight share one run; nothing is kept after it."""

from __future__ import annotations

import asyncio

import pytest

from app.models import Trace
from app.sandbox.inflight import InFlight

from .conftest import SyncPool, require_root, sandbox_settings


def test_identical_runs_in_flight_share_one_and_nothing_is_kept() -> None:
    async def scene() -> None:
        shared: InFlight[int] = InFlight()
        started: list[str] = []
        gate = asyncio.Event()

        async def run(name: str) -> int:
            started.append(name)
            await gate.wait()
            return len(started)

        first = asyncio.ensure_future(shared.run("a", lambda: run("a1")))
        second = asyncio.ensure_future(shared.run("a", lambda: run("a2")))
        other = asyncio.ensure_future(shared.run("b", lambda: run("b")))
        await asyncio.sleep(0)
        gate.set()
        assert await first == await second and started == ["a1", "b"] and shared.shared == 1
        assert await other == 2
        assert await shared.run("a", lambda: run("a3")) == 3  # after the run ended: a run of its own

    asyncio.run(scene())


def test_a_run_goes_on_for_those_who_wait_and_stops_when_nobody_does() -> None:
    async def scene() -> None:
        shared: InFlight[str] = InFlight()
        cancelled: list[str] = []
        gate = asyncio.Event()

        async def run(name: str) -> str:
            try:
                await gate.wait()
            except asyncio.CancelledError:
                cancelled.append(name)
                raise
            return name

        leaving = asyncio.ensure_future(shared.run("a", lambda: run("a")))
        staying = asyncio.ensure_future(shared.run("a", lambda: run("unused")))
        await asyncio.sleep(0)
        leaving.cancel()
        await asyncio.sleep(0)
        gate.set()
        assert await staying == "a" and cancelled == []
        with pytest.raises(asyncio.CancelledError):
            await leaving

        gate.clear()
        alone = asyncio.ensure_future(shared.run("b", lambda: run("b")))
        await asyncio.sleep(0)
        alone.cancel()
        await asyncio.sleep(0.01)
        assert cancelled == ["b"]  # nobody waits for it any more: the run itself is cancelled

    asyncio.run(scene())


CLOCKED = "import time, torch\nx = torch.randn(3, requires_grad=True)\nx.sum().backward()\nprint(time.time_ns())\n"


@pytest.mark.parametrize("share", [False, True])
def test_a_real_pool_shares_only_when_asked(share: bool) -> None:
    """Two requests for one program at once: one run with share_identical_runs (the same trace, the
    clock it read included), two without (each its own clock)."""
    require_root()
    pool = SyncPool(sandbox_settings(share_identical_runs=share))
    try:

        async def both() -> list[Trace]:
            return list(await asyncio.gather(pool.arun(CLOCKED, "student-1"), pool.arun(CLOCKED, "student-2")))

        first, second = pool.call(both())
        later = pool.run(CLOCKED, "student-3")
    finally:
        pool.close()
    assert first.status == second.status == later.status == "ok"
    assert (first.stdout == second.stdout) is share
    assert later.stdout != first.stdout  # nothing is kept once a run ends
    assert [n.value for n in first.nodes] == [n.value for n in second.nodes]  # seeded: the same values either way
