"""One run's memory never kills another's: a memory cgroup per run, memfd and tmpfs pages included.

Where the host gives no per-run cgroup, /api/health says so and the sandbox refuses in-memory
files and System V shared memory instead, so the same bombs fail inside their own run.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import pytest

from app.models import Trace

from .conftest import IN_CI, NORMAL, SyncPool, require_root, sandbox_settings

MEMFD_BOMB = """\
import os
chunk = b"x" * (1 << 20)
files = []
while True:  # in-memory files: outside RLIMIT_AS, inside the run's cgroup
    fd = os.memfd_create("bomb")
    for _ in range(48):
        os.write(fd, chunk)
    files.append(fd)
"""
TMPFS_BOMB = """\
chunk = b"x" * (1 << 20)
for i in range(10**6):  # files in the run's own tmpfs (/tmp is /scratch)
    with open(f"/tmp/f{i}", "wb") as f:
        for _ in range(48):
            f.write(chunk)
"""
SHM_BOMB = """\
import ctypes
libc = ctypes.CDLL(None, use_errno=True)
libc.shmat.restype = ctypes.c_void_p
ids = []
for i in range(10**6):  # System V shared memory, never attached: no address space at all
    shm = libc.shmget(0, 48 << 20, 0o1600)
    if shm < 0:
        raise OSError(ctypes.get_errno(), "shmget refused")
    ids.append(shm)
    addr = libc.shmat(shm, None, 0)
    ctypes.memset(addr, 1, 48 << 20)
    libc.shmdt(ctypes.c_void_p(addr))
"""
# Legitimate work that takes a second of CPU, so that it is running while a bomb goes off.
NEIGHBOUR = """\
import torch
w = torch.ones(64, 64, requires_grad=True)
total = 0.0
for i in range(400):
    total += float((w @ w).sum())
loss = (w * 2).sum()
loss.backward()
print(float(w.grad.sum()))
"""


@pytest.fixture(scope="module")
def tight() -> Iterator[SyncPool]:
    """A pool whose runs may use 1 GiB each and whose scratch tmpfs is larger than that."""
    require_root()
    p = SyncPool(sandbox_settings(memory_mb=1024, scratch_mb=3072, timeout_s=6.0, cpu_s=6, max_concurrent_runs=3))
    yield p
    p.close()


def per_run_cgroups(pool: SyncPool) -> bool:
    return pool.pool.protections().get("run_cgroup", False)


def test_per_run_cgroups_are_reported(tight: SyncPool) -> None:
    protections = tight.pool.protections()
    assert "run_cgroup" in protections
    if not protections["run_cgroup"]:
        assert tight.pool.protection_errors()["run_cgroup"]
    if IN_CI:  # CI is Debian 12 as root: a cgroup per run must hold there
        assert protections["run_cgroup"], tight.pool.protection_errors()


def _beside(pool: SyncPool, bomb: str, neighbours: int = 2) -> tuple[Trace, list[Trace]]:
    async def together() -> tuple[Trace, list[Trace]]:
        first = [asyncio.ensure_future(pool.arun(NEIGHBOUR, client=f"student-{i}")) for i in range(neighbours)]
        await asyncio.sleep(0.05)
        attack = asyncio.ensure_future(pool.arun(bomb, client="bomber"))
        return await attack, list(await asyncio.gather(*first))

    return pool.call(together())


@pytest.mark.parametrize("bomb", [MEMFD_BOMB, TMPFS_BOMB, SHM_BOMB], ids=["memfd", "tmpfs", "sysv_shm"])
def test_a_memory_bomb_stops_only_its_own_run(tight: SyncPool, bomb: str) -> None:
    for _ in range(2):  # the victims were random before: twice
        attack, neighbours = _beside(tight, bomb)
        for t in neighbours:
            assert t.status == "ok", t.error
            assert t.stdout == "8192.0\n"
        assert attack.error is not None
        if per_run_cgroups(tight):
            # Stopped in its own group; on a crowded machine a bomb at idle priority (it goes on in
            # the background after demote_after_s) may reach its time limit before 1 GiB instead.
            assert attack.status in ("memory", "timeout"), attack.error
            if attack.status == "memory":
                assert "1,024 MiB" in attack.error.message, attack.error.message
        else:  # refused outright: nothing outside RLIMIT_AS can be filled
            assert attack.status in ("error", "memory"), attack.error
    t = tight.run(NORMAL)
    assert t.status == "ok"


def test_running_out_of_address_space_says_how_much_was_allowed(tight: SyncPool) -> None:
    t = tight.run("hoard = []\nwhile True:\n    hoard.append(bytearray(64 << 20))\n")
    assert t.status == "memory" and t.error is not None
    assert "1,024 MiB" in t.error.message and "memory_mb" in t.error.message
