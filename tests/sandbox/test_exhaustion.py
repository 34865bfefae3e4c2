"""Attacks on the limits through the path the API uses (SandboxPool.run): time, memory, threads and
output. Each ends in its own status with a reason (the partial graph kept where there is one), and a
normal program right after it gets its correct trace."""

from __future__ import annotations

from .conftest import SyncPool, assert_normal


def test_infinite_loop(pool: SyncPool) -> None:
    t = pool.run("import torch\nx = torch.ones(2, requires_grad=True)\ny = (x * 2).sum()\nwhile True:\n    pass\n")
    assert t.status == "timeout" and t.error is not None
    assert "2 s" in t.error.message and ("line 4" in t.error.message or "line 5" in t.error.message)
    assert any(n.name == "y" for n in t.nodes)  # the partial graph is kept
    assert_normal(pool)


def test_loop_that_swallows_the_timeout(pool: SyncPool) -> None:
    t = pool.run("while True:\n    try:\n        while True:\n            pass\n    except BaseException:\n        pass\n")
    # stopped by the parent's SIGKILL at timeout_s + 1 s, or by the CPU rlimit's SIGKILL at cpu_s + 1 s
    assert t.status == "timeout" and t.error is not None
    assert "did not stop" in t.error.message or "CPU time" in t.error.message
    assert_normal(pool)


def test_sleep_forever(pool: SyncPool) -> None:
    t = pool.run("import time\ntime.sleep(10**6)\n")
    assert t.status == "timeout" and t.error is not None and "line 2" in t.error.message
    assert_normal(pool)


def test_huge_tensor(pool: SyncPool) -> None:
    t = pool.run("import torch\nx = torch.zeros(10**11)\n")
    assert t.error is not None
    assert t.status == "memory" and t.error.hint_id == "out_of_memory" and t.error.line == 2
    assert_normal(pool)


def test_slow_memory_leak(pool: SyncPool) -> None:
    # A leak that grows step by step with pauses, not at once: ~20 steps of 16 MiB to the 1 GiB limit
    # (each pause costs a wake-up, and on a loaded machine each wake-up may wait long).
    t = pool.run("import time\nhoard = []\nwhile True:\n    hoard.append(bytearray(16 * 2**20))\n    time.sleep(0.01)\n")
    assert t.status == "memory", t.error
    assert t.error is not None and "1,024 MiB" in t.error.message
    assert_normal(pool)


def test_thousand_threads(pool: SyncPool) -> None:
    src = """\
import threading, time
threads = []
for i in range(1000):
    t = threading.Thread(target=time.sleep, args=(30,), daemon=True)
    t.start()
    threads.append(t)
"""
    t = pool.run(src)
    assert t.status == "error" and t.error is not None and "thread" in t.error.message
    assert_normal(pool)


def test_stdout_flood(pool: SyncPool) -> None:
    t = pool.run("import os\nfor i in range(10**7):\n    print('x' * 100)\n    os.write(1, b'y' * 100)\n")
    assert t.status in ("ok", "timeout", "memory"), t.error
    assert len(t.stdout.encode()) <= pool.pool.settings.trace.max_stdout_bytes + 1024
    assert_normal(pool)


def test_million_op_graph(pool: SyncPool) -> None:
    src = "import torch\nx = torch.ones(1, requires_grad=True)\ny = x\nfor i in range(10**6):\n    y = y + 1\ny.backward()\n"
    t = pool.run(src)
    assert t.status in ("ok", "timeout"), t.error
    assert t.truncated or t.status == "timeout"
    assert len(t.nodes) <= pool.pool.settings.trace.max_nodes + 10
    assert_normal(pool)
