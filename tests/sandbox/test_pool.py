"""SandboxPool: protections, strict mode, queueing, concurrency, restarts, trace_in_sandbox."""

from __future__ import annotations

import asyncio
import os
import time

import pytest

from app.config import Settings
from app.sandbox import QueueFull, SandboxPool, SandboxUnavailable, policy, trace_in_sandbox
from app.sandbox.zygote import ALL_PROTECTIONS

from .conftest import IN_CI, NORMAL, SyncPool, assert_normal, require_root, sandbox_settings


def test_protections_reported(pool: SyncPool) -> None:
    prot = pool.pool.protections()
    assert set(prot) == set(ALL_PROTECTIONS)
    missing = sorted(k for k, ok in prot.items() if not ok)
    if IN_CI:  # CI runs as root on a kernel with Landlock and cgroups: everything must hold
        assert missing == [], pool.pool.protection_errors()
    else:
        assert not [p for p in policy.REQUIRED if p in missing], pool.pool.protection_errors()
    assert pool.pool.mode == ("strict" if IN_CI else "dev")


def test_strict_mode_refuses_a_missing_protection(monkeypatch: pytest.MonkeyPatch) -> None:
    require_root()
    monkeypatch.setattr(policy, "REQUIRED", (*policy.REQUIRED, "a_protection_nobody_has"))
    p = SandboxPool(sandbox_settings(sandbox_mode="strict", max_concurrent_runs=1))
    with pytest.raises(SandboxUnavailable, match="a_protection_nobody_has"):
        asyncio.run(p.start())


def test_queue_full_then_recovers() -> None:
    require_root()
    sp = SyncPool(sandbox_settings(max_concurrent_runs=1, max_queued_runs=1, timeout_s=1.0))
    try:

        async def burst() -> list[object]:
            slow = "import time\ntime.sleep(0.5)\n# run {}\n"  # three programs: identical ones would share a run
            tasks = [asyncio.ensure_future(sp.arun(slow.format(i))) for i in range(2)]
            await asyncio.sleep(0.05)
            assert (sp.pool.in_flight, sp.pool.queued) == (1, 1)
            with pytest.raises(QueueFull) as e:
                await sp.arun(slow.format(2))
            assert isinstance(e.value.retry_after_s, int) and e.value.retry_after_s >= 1
            return await asyncio.gather(*tasks)

        results = sp.call(burst())
        assert [t.status for t in results] == ["ok", "ok"]  # type: ignore[attr-defined]
        assert (sp.pool.in_flight, sp.pool.queued) == (0, 0)
        assert_normal(sp)
    finally:
        sp.close()


def test_concurrent_runs_are_all_answered(pool: SyncPool) -> None:
    async def many() -> list[object]:
        return await asyncio.gather(*(pool.arun(NORMAL, client=f"c{i}") for i in range(16)))

    results = pool.call(many())
    assert [t.status for t in results] == ["ok"] * 16  # type: ignore[attr-defined]


def test_zygote_death_is_survived() -> None:
    require_root()
    sp = SyncPool(sandbox_settings(max_concurrent_runs=1))
    try:
        assert_normal(sp)
        z = sp.pool._zygote
        assert z is not None
        os.kill(z.proc.pid, 9)
        z.proc.wait()
        t = sp.run(NORMAL)  # either answered by a fresh zygote or a plain "killed", never an exception
        assert t.status in ("ok", "killed")
        assert_normal(sp)
        assert sp.pool._zygote is not z
    finally:
        sp.close()


def test_close_stops_running_programs() -> None:
    require_root()
    sp = SyncPool(sandbox_settings(max_concurrent_runs=1, timeout_s=30.0))

    async def go() -> object:
        task = asyncio.ensure_future(sp.arun("while True:\n    pass\n"))
        await asyncio.sleep(0.3)
        await sp.pool.close()
        return await task

    t = sp.call(go())
    sp._stop_loop()
    assert t.status == "killed"  # type: ignore[attr-defined]


def test_trace_in_sandbox_starts_runs_and_stops_a_pool() -> None:
    require_root()
    t = trace_in_sandbox(NORMAL, sandbox_settings(max_concurrent_runs=1))
    assert t.status == "ok" and t.stdout == "tensor([2., 4., 6.])\n"


def test_not_started() -> None:
    with pytest.raises(SandboxUnavailable):
        asyncio.run(SandboxPool(Settings()).trace_document(NORMAL))


def test_zygote_kills_a_child_the_pool_forgot() -> None:
    """A backstop independent of the parent: a run nobody waits for dies at the zygote's own deadline."""
    require_root()
    sp = SyncPool(sandbox_settings(max_concurrent_runs=1, timeout_s=1.0))
    sleeper = "import time\nwhile True:\n    try:\n        time.sleep(100)\n    except BaseException:\n        pass\n"

    async def forgotten() -> dict:
        z = sp.pool._zygote
        assert z is not None
        loop = asyncio.get_running_loop()
        r, w = os.pipe()
        src = os.memfd_create("src")
        os.write(src, sleeper.encode())
        z.started[-1] = loop.create_future()
        exited = z.exited[-1] = loop.create_future()
        z.send({"id": -1}, [w, src])
        os.close(w)
        os.close(src)
        pidfd = await z.started[-1]
        os.close(pidfd)  # from here on, nobody in the pool will kill it
        try:
            return await asyncio.wait_for(exited, 10)
        finally:
            os.close(r)

    try:
        t0 = time.monotonic()
        report = sp.call(forgotten())
        assert os.WIFSIGNALED(report["status"]) and os.WTERMSIG(report["status"]) == 9
        assert 3.5 < time.monotonic() - t0 < 15  # killed at 4 s (timeout 1 + grace 1 + 2)
        assert_normal(sp)
    finally:
        sp.close()


WITHOUT_ROOT = """\
import asyncio, json, os
from app.config import Settings
from app.sandbox import SandboxPool

async def main():
    pool = SandboxPool(Settings(sandbox_mode="dev", max_concurrent_runs=1, timeout_s=2.0))
    await pool.start()
    try:
        t = (await pool.trace_document(NORMAL)).trace()
        caps = (await pool.trace_document("print(open('/proc/self/status').read().split('CapEff:')[1].split()[0])")).trace()
        print(json.dumps({"euid": os.geteuid(), "protections": pool.protections(), "status": t.status,
                          "stdout": t.stdout, "caps": caps.stdout.strip()}))
    finally:
        await pool.close()

asyncio.run(main())
"""


def test_without_root_in_a_user_namespace() -> None:
    """A developer's laptop: not root, but user namespaces; every layer but per-child uids holds."""
    import json
    import shutil
    import subprocess
    import sys

    from app.sandbox.policy import PROJECT_ROOT

    require_root()  # to map a non-root uid onto ourselves, so that the venv under /root stays readable
    if shutil.which("unshare") is None:
        pytest.fail("util-linux's unshare is missing") if IN_CI else pytest.skip("no unshare(1)")
    out = subprocess.run(
        [
            "unshare",
            "--user",
            "--map-user=1000",
            "--map-group=1000",
            sys.executable,
            "-c",
            f"NORMAL = {NORMAL!r}\n" + WITHOUT_ROOT,
        ],
        cwd=PROJECT_ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert out.returncode == 0, out.stderr[-2000:]
    report = json.loads(out.stdout.strip().splitlines()[-1])
    assert report["euid"] == 1000
    assert report["status"] == "ok" and report["stdout"] == "tensor([2., 4., 6.])\n"
    assert report["caps"] == "0000000000000000"  # uid 0 of the zygote's user namespace, without capabilities
    missing = sorted(k for k, ok in report["protections"].items() if not ok)
    assert missing == ["cgroup", "run_cgroup", "unprivileged_uid"]
