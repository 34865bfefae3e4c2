"""app/sandbox/inflight.py: identical runs in flight share one run; nothing is kept after it."""

from __future__ import annotations

import asyncio

import pytest

from app.sandbox.inflight import InFlight


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
