"""Who runs next: a queue per client, served round-robin, and busy clients behind the others.

Round-robin by who was served longest ago: a client that just arrived goes before one whose run
started a moment ago, however long that one's queue.

A run takes one of `regular` slots (full CPU priority). A run still going after `demote_after_s`
gives its slot up and goes on in one of `background` slots at idle CPU priority (SCHED_IDLE), when
one is free: a busy loop then costs the next student a fraction of a second, not the run's whole
time limit. A client whose runs took more than `busy_after_s` of slot time lately (decaying with a
half-life of `HALF_LIFE_S`) is busy: its runs wait for a background slot and run at idle priority
from their start, so they never hold a regular slot. One client may have at most
`max_queued_per_client` runs waiting, and all clients together `max_queued`; beyond that, `QueueFull`.

Pure bookkeeping on the event loop: no processes, no clocks but the loop's (tests drive it directly).
"""

from __future__ import annotations

import asyncio
import collections
import math
from dataclasses import dataclass, field

HALF_LIFE_S = 30.0  # how fast a client's past runs are forgiven


class QueueFull(Exception):
    """Every run slot is busy and the queue (or this client's share of it) is full; retry after `retry_after_s` seconds."""

    def __init__(self, retry_after_s: int) -> None:
        super().__init__(f"the sandbox is busy; retry after {retry_after_s} s")
        self.retry_after_s = retry_after_s


@dataclass(eq=False)
class Ticket:
    """One admitted run: whose it is and which kind of slot it holds."""

    client: str
    background: bool
    started: float = 0.0


@dataclass(eq=False)
class _Waiter:
    client: str
    future: asyncio.Future[Ticket] = field(default_factory=lambda: asyncio.get_running_loop().create_future())


class Schedule:
    def __init__(
        self,
        regular: int,
        background: int,
        max_queued: int,
        max_queued_per_client: int,
        busy_after_s: float,
    ) -> None:
        self.regular, self.background = regular, background
        self.max_queued, self.max_queued_per_client = max_queued, max_queued_per_client
        self.busy_after_s = busy_after_s
        self.running_regular = 0
        self.running_background = 0
        self._waiting: dict[str, collections.deque[_Waiter]] = {}  # client -> its waiters, oldest first
        self._served: dict[str, int] = {}  # client -> when its last run started (a count of runs started)
        self._starts = 0
        self._usage: dict[str, tuple[float, float]] = {}  # client -> (slot seconds, loop time they were decayed to)
        self._avg_run_s = 0.05

    @property
    def in_flight(self) -> int:
        return self.running_regular + self.running_background

    @property
    def queued(self) -> int:
        return sum(len(q) for q in self._waiting.values())

    def usage(self, client: str) -> float:
        """Slot seconds this client used lately (decayed)."""
        value, at = self._usage.get(client, (0.0, 0.0))
        now = asyncio.get_running_loop().time()
        return value * 0.5 ** ((now - at) / HALF_LIFE_S)

    def busy(self, client: str) -> bool:
        return self.usage(client) > self.busy_after_s

    async def admit(self, client: str) -> Ticket:
        """Wait for this client's turn and a slot; raises QueueFull when its queue or the whole queue is full."""
        waiting = self._waiting.get(client)
        mine = len(waiting) if waiting else 0
        if self.queued >= self.max_queued or mine >= self.max_queued_per_client:
            waves = (self.queued + 1) / max(1, self.regular) + 1
            raise QueueFull(max(1, math.ceil(waves * self._avg_run_s)))
        waiter = _Waiter(client)
        if waiting is None:
            waiting = self._waiting[client] = collections.deque()
        waiting.append(waiter)
        self._dispatch()
        try:
            return await waiter.future
        except asyncio.CancelledError:
            if waiter.future.done() and not waiter.future.cancelled():
                self.release(waiter.future.result(), 0.0)  # admitted in the same instant it was cancelled
            else:
                self._forget(waiter)
            raise

    def demote(self, ticket: Ticket) -> bool:
        """Move a regular run to a background slot, if one is free; True when it moved."""
        if ticket.background or self.running_background >= self.background:
            return False
        ticket.background = True
        self.running_regular -= 1
        self.running_background += 1
        self._dispatch()
        return True

    def release(self, ticket: Ticket, ran_s: float) -> None:
        """The run is over: its slot is free and its time counts against its client."""
        if ticket.background:
            self.running_background -= 1
        else:
            self.running_regular -= 1
        self._usage[ticket.client] = (self.usage(ticket.client) + ran_s, asyncio.get_running_loop().time())
        self._avg_run_s = 0.9 * self._avg_run_s + 0.1 * ran_s
        if len(self._usage) > 10_000:
            self._prune()
        self._dispatch()

    def _dispatch(self) -> None:
        """Hand free slots to waiting clients: regular slots to clients that are not busy, background
        slots to busy ones, each to the client served longest ago."""
        while self._waiting:
            chosen, background = self._next()
            if chosen is None:
                return
            waiter = self._waiting[chosen].popleft()
            if not self._waiting[chosen]:
                del self._waiting[chosen]
            self._starts += 1
            self._served[chosen] = self._starts
            if background:
                self.running_background += 1
            else:
                self.running_regular += 1
            waiter.future.set_result(Ticket(chosen, background, asyncio.get_running_loop().time()))

    def _next(self) -> tuple[str | None, bool]:
        """The client to serve now and whether in a background slot; (None, False) when no slot fits."""
        regular_free = self.running_regular < self.regular
        background_free = self.running_background < self.background
        turns = sorted(self._waiting, key=lambda c: self._served.get(c, 0))  # stable: arrival breaks ties
        if self.background == 0:  # no background slots: busy clients only wait behind the others
            if not regular_free:
                return None, False
            return next((c for c in turns if not self.busy(c)), turns[0]), False
        for client in turns:
            busy = self.busy(client)
            if background_free if busy else regular_free:
                return client, busy
        return None, False

    def _forget(self, waiter: _Waiter) -> None:
        waiting = self._waiting.get(waiter.client)
        if waiting is None or waiter not in waiting:
            return
        waiting.remove(waiter)
        if not waiting:
            del self._waiting[waiter.client]

    def _prune(self) -> None:
        for client in [c for c in self._usage if self.usage(c) < 0.01 and c not in self._waiting]:
            del self._usage[client]
            self._served.pop(client, None)
