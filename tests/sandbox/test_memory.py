"""One run's memory never kills another's: a memory cgroup per run, memfd and tmpfs pages included.

Where the host gives no per-run cgroup, /api/health says so and the sandbox refuses in-memory
files and System V shared memory instead, so the same bombs fail inside their own run.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import pytest

from app.models import Trace
from app.sandbox import cgroup
from app.sandbox.cgroup import ROOT

from .conftest import NORMAL, SyncPool, require_root, sandbox_settings

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


@pytest.fixture(scope="module", params=["host", "refused"])
def tight(request: pytest.FixtureRequest) -> Iterator[SyncPool]:
    """A pool whose runs may use 1 GiB each: with what the host gives (a memory cgroup per run where it
    can; the scratch tmpfs larger than 1 GiB, so that the cgroup is what stops a bomb), and with per-run
    cgroups made unavailable, as on a host without a writable cgroup tree (the tmpfs at its own size is
    the cap then). Runs are not demoted: a bomb must reach its limit, not its time."""
    require_root()
    with pytest.MonkeyPatch.context() as patch:
        if request.param == "refused":
            patch.setattr(cgroup, "create", lambda *_: (None, "no cgroup (made unavailable by the test)"))
        scratch_mb = 3072 if request.param == "host" else 256
        p = SyncPool(
            sandbox_settings(
                memory_mb=1024, scratch_mb=scratch_mb, timeout_s=10.0, cpu_s=10, max_concurrent_runs=3, demote_after_s=10.0
            )
        )
        yield p
        p.close()


def test_health_says_which_mechanism_holds(tight: SyncPool) -> None:
    protections, mechanism = tight.pool.protections(), tight.pool.run_memory()
    assert mechanism != "none", "seccomp holds wherever the sandbox suite runs as root"
    if protections["run_cgroup"]:
        assert mechanism == ("cgroup_v2" if (ROOT / "cgroup.controllers").exists() else "cgroup_v1")
    else:
        assert mechanism == "refused" and tight.pool.protection_errors()["run_cgroup"]
    if "unavailable by the test" in tight.pool.protection_errors().get("cgroup", ""):
        assert mechanism == "refused" and not protections["run_cgroup"]


def _beside(pool: SyncPool, bomb: str, neighbours: int = 2) -> tuple[Trace, list[Trace]]:
    async def together() -> tuple[Trace, list[Trace]]:
        first = [asyncio.ensure_future(pool.arun(NEIGHBOUR, client=f"student-{i}")) for i in range(neighbours)]
        await asyncio.sleep(0.05)
        attack = asyncio.ensure_future(pool.arun(bomb, client="bomber"))
        return await attack, list(await asyncio.gather(*first))

    return pool.call(together())


@pytest.mark.parametrize("bomb", [MEMFD_BOMB, TMPFS_BOMB, SHM_BOMB], ids=["memfd", "tmpfs", "sysv_shm"])
def test_a_memory_bomb_stops_only_its_own_run(tight: SyncPool, bomb: str) -> None:
    """The neighbours come back ok and the bomb is stopped and told why, by whichever mechanism holds."""
    mechanism = tight.pool.run_memory()
    for _ in range(2):  # the victims were random before: twice
        attack, neighbours = _beside(tight, bomb)
        for t in neighbours:
            assert t.status == "ok", t.error
            assert t.stdout == "8192.0\n"
        assert attack.error is not None
        if mechanism in ("cgroup_v1", "cgroup_v2"):  # stopped by the kernel in its own group
            assert attack.status == "memory", attack.error
            assert "1,024 MiB" in attack.error.message, attack.error.message
        elif bomb is TMPFS_BOMB:  # the tmpfs is full at scratch_mb
            assert attack.status == "error" and "No space left" in attack.error.message, attack.error
        else:  # refused outright: nothing outside RLIMIT_AS can be filled
            assert attack.status == "error" and attack.error.type == "PermissionError", attack.error  # EPERM
    t = tight.run(NORMAL)
    assert t.status == "ok"


def test_running_out_of_address_space_says_how_much_was_allowed(tight: SyncPool) -> None:
    t = tight.run("hoard = []\nwhile True:\n    hoard.append(bytearray(64 << 20))\n")
    assert t.status == "memory" and t.error is not None
    assert "1,024 MiB" in t.error.message and "memory_mb" in t.error.message
