"""Ordinary programs that used to fail in the sandbox, or fail with a misleading message."""

from __future__ import annotations

from .conftest import SyncPool, assert_normal


def test_a_warnings_flood_keeps_the_trace_with_a_notice(pool: SyncPool) -> None:
    src = "import warnings\nfor i in range(60000):\n    warnings.warn('a long warning, said again and again ' * 20)\nprint('done')\n"
    t = pool.run(src)
    assert t.status == "ok", t.error
    assert t.stdout == "done\n"
    assert t.truncated and t.notice is not None and "warning" in t.notice
    assert 1 <= len(t.warnings) <= 100
    assert_normal(pool)


def test_writing_bytes_to_sys_stdout_buffer(pool: SyncPool) -> None:
    src = "import sys\nsys.stdout.buffer.write('héllo\\n'.encode())\nsys.stdout.buffer.flush()\nprint('text')\n"
    t = pool.run(src)
    assert t.status == "ok", t.error
    assert t.stdout == "héllo\ntext\n"


def test_torch_jit_script_compiles_the_programs_own_function(pool: SyncPool) -> None:
    src = """\
import torch

@torch.jit.script
def double(x):
    return x * 2

print(double(torch.ones(2)))
"""
    t = pool.run(src)
    assert t.status == "ok", t.error
    assert t.stdout == "tensor([2., 2.])\n"


def test_asking_for_many_threads_runs_on_the_threads_allowed(pool: SyncPool) -> None:
    src = "import torch\ntorch.set_num_threads(200)\nx = torch.randn(512, 512)\nprint(float((x @ x).sum()) != 0)\n"
    t = pool.run(src)
    assert t.status == "ok", t.error
    assert t.stdout == "True\n"
    assert_normal(pool)


def test_a_native_library_that_exits_is_explained(pool: SyncPool) -> None:
    # Every thread the run may have is taken, then OpenMP cannot start its own and ends the process.
    src = """\
import threading, time, torch
torch.set_num_threads(8)
held = []
while True:
    try:
        t = threading.Thread(target=time.sleep, args=(30,), daemon=True)
        t.start()
        held.append(t)
    except RuntimeError:
        break
x = torch.randn(1024, 1024)
print((x @ x).sum())
"""
    t = pool.run(src)
    assert t.status in ("killed", "error"), t
    assert t.error is not None
    if t.status == "killed":
        assert "exit status" in t.error.message and "thread" in t.error.message, t.error.message
    assert_normal(pool)
