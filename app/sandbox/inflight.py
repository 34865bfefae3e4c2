"""Identical runs at the same moment share one run (`share_identical_runs`, on by default).

Two requests for the same program with the same job, the second arriving while the first is still
queued or running, get the one document that run produces: a class of 56 students pressing Run on
the same seed within the same second costs one run, not 56. Only runs in flight are shared, nothing
is kept after: the tracer seeds torch, random and numpy, so the same program gives the same trace
anyway, and a program that reads the clock, its pid or os.urandom gives both requests what one run
of it, at that moment, saw. A request that goes away leaves the run to the others; the run is
cancelled when nobody waits for it any more.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Hashable
from typing import Generic, TypeVar

T = TypeVar("T")


class InFlight(Generic[T]):
    def __init__(self) -> None:
        self._runs: dict[Hashable, tuple[asyncio.Task[T], list[int]]] = {}
        self.shared = 0  # requests answered by another's run (for the benchmark)

    async def run(self, key: Hashable, start: Callable[[], Awaitable[T]]) -> T:
        """`start()`'s result, or that of the identical run already in flight."""
        entry = self._runs.get(key)
        if entry is None:
            task = asyncio.ensure_future(start())
            entry = self._runs[key] = (task, [0])
            task.add_done_callback(lambda _: self._runs.pop(key, None) if self._runs.get(key) is entry else None)
        else:
            self.shared += 1
        task, waiting = entry
        waiting[0] += 1
        try:
            return await asyncio.shield(task)
        finally:
            waiting[0] -= 1
            if waiting[0] == 0 and not task.done():  # everybody left: nobody needs the run
                task.cancel()
