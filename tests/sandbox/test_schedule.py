"""Fair queues: a queue per client served round-robin, clients that burned time go behind, and a
long run gives its slot up and goes on in the background. The throughput under abuse is measured
by scripts/bench_api.py; these tests check the order of things, not their speed."""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import Iterator

import pytest

from app.models import Trace
from app.sandbox import QueueFull

from .conftest import NORMAL, SyncPool, require_root, sandbox_settings

BUSY = "while True:\n    pass\n"
NAP = "import time\ntime.sleep(0.2)\nprint('{}')\n"
POLICY = "import os\nprint(os.sched_getscheduler(0))\n"


@pytest.fixture(scope="module")
def one_slot() -> Iterator[SyncPool]:
    """One run at a time; a run going on after 0.5 s moves to the background (two may be there); a
    client that ran 2 s lately is busy (a 3 s timeout makes one, with room for the decay meanwhile)."""
    require_root()
    p = SyncPool(
        sandbox_settings(
            max_concurrent_runs=1,
            max_background_runs=2,
            demote_after_s=0.5,
            busy_client_s=2.0,
            max_queued_runs=16,
            max_client_queued_runs=3,
            timeout_s=3.0,
            cpu_s=3,
        )
    )
    yield p
    p.close()


def _settle(pool: SyncPool) -> None:
    """Wait until nothing runs or waits (a previous test's background runs end within timeout_s)."""
    deadline = time.monotonic() + 10
    while (pool.pool.in_flight or pool.pool.queued) and time.monotonic() < deadline:
        time.sleep(0.05)


def test_a_long_run_gives_its_slot_up(one_slot: SyncPool) -> None:
    _settle(one_slot)

    async def scene() -> tuple[float, Trace, Trace]:
        hog = asyncio.ensure_future(one_slot.arun(BUSY, client="hog"))
        await asyncio.sleep(0.1)
        t0 = time.monotonic()
        student = await one_slot.arun(NORMAL, client="student")
        waited = time.monotonic() - t0
        return waited, student, await hog

    waited, student, hog = one_slot.call(scene())
    assert student.status == "ok"
    assert waited < 1.5, f"the student waited {waited:.2f} s behind a busy loop"  # not the hog's 3 s
    assert hog.status == "timeout"  # demoted, not stopped early


def test_queues_are_served_round_robin(one_slot: SyncPool) -> None:
    _settle(one_slot)

    async def scene() -> list[str]:
        done: list[str] = []

        async def run(client: str, tag: str) -> None:
            t = await one_slot.arun(NAP.format(tag), client=client)
            assert t.status == "ok", t.error
            done.append(t.stdout.strip())

        tasks = [asyncio.ensure_future(run("a", f"a{i}")) for i in range(3)]
        await asyncio.sleep(0.05)
        tasks.append(asyncio.ensure_future(run("b", "b0")))
        await asyncio.gather(*tasks)
        return done

    done = one_slot.call(scene())
    assert done.index("b0") <= 1, done  # b waits for one of a's runs, not all three


def test_a_client_that_burned_time_goes_behind(one_slot: SyncPool) -> None:
    _settle(one_slot)
    assert one_slot.run(BUSY, client="burner").status == "timeout"  # 3 s of running, recently (busy after 2 s)
    burner, fresh = one_slot.run(POLICY, client="burner"), one_slot.run(POLICY, client="fresh")
    assert burner.status == fresh.status == "ok"
    assert burner.stdout == f"{os.SCHED_IDLE}\n"  # runs only on CPU time nobody else wants
    assert fresh.stdout == f"{os.SCHED_OTHER}\n"


def test_one_client_cannot_fill_the_queue(one_slot: SyncPool) -> None:
    _settle(one_slot)

    async def scene() -> tuple[int, int, Trace]:
        pending = [asyncio.ensure_future(one_slot.arun(NAP.format(i), client="greedy")) for i in range(8)]
        await asyncio.sleep(0.05)
        other = await one_slot.arun(NORMAL, client="other")  # still admitted
        results = await asyncio.gather(*pending, return_exceptions=True)
        refused = sum(isinstance(r, QueueFull) for r in results)
        ran = sum(isinstance(r, Trace) and r.status == "ok" for r in results)
        return refused, ran, other

    refused, ran, other = one_slot.call(scene())
    assert other.status == "ok"
    assert refused >= 4 and ran >= 1 and refused + ran == 8


GROUP = """\
import os
try:
    group = open("/proc/self/autogroup").read().split()[0]
except OSError:  # a kernel without sched_autogroup
    group = "none"
print(group, os.getsid(0) == os.getpid())
"""


def test_runs_share_one_scheduling_group(one_slot: SyncPool) -> None:
    """A run in a session of its own would be an autogroup of its own, weighed by the kernel like the web
    server's: then nice and SCHED_IDLE rank nothing, and 8 idle bombs took 80% of the CPU from students."""
    _settle(one_slot)
    first, second = one_slot.run(GROUP, client="first"), one_slot.run(GROUP, client="second")
    assert first.status == second.status == "ok"
    assert first.stdout == second.stdout and first.stdout.endswith(" False\n"), (first.stdout, second.stdout)
