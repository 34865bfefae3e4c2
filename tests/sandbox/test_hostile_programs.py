"""Hostile programs the first attack suite (test_attacks.py) did not try: leaving the runs' scheduling
group, and the tracer's own reading of what a program builds. Each goes through the path the API uses
(SandboxPool.run); PyTorch is the oracle for every value."""

from __future__ import annotations

import contextlib
import io
import warnings
from typing import Any

import pytest
import torch

from app import i18n

from .conftest import SyncPool, assert_normal, require_root, sandbox_settings


def test_a_program_cannot_leave_the_runs_session(pool: SyncPool) -> None:
    """setsid() made the run a scheduling autogroup of its own, weighed like the web server's even at
    SCHED_IDLE; it is refused, and the run stays in the zygote's session and autogroup."""
    src = """\
import os
before = open("/proc/self/autogroup").read()
try:
    os.setsid()
    print("left")
except PermissionError:
    print("refused")
print(os.getsid(0) == 0, open("/proc/self/autogroup").read() == before)
"""
    t = pool.run(src)
    assert t.status == "ok", t.error
    assert t.stdout == "refused\nTrue True\n"
    assert_normal(pool)


def _torch_run(source: str) -> tuple[str, dict[str, Any]]:
    """The program run by plain torch, in this process: (its stdout, its globals), the oracle."""
    out, env = io.StringIO(), {"__name__": "__main__"}
    with contextlib.redirect_stdout(out), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        exec(compile(source, "<program>", "exec"), env)
    return out.getvalue(), env


UNREADABLE = """\
import torch
a = torch.tensor([1.0, 2.0], requires_grad=True)
q = torch.quantize_per_tensor(a.detach() * 3, 0.1, 10, torch.quint8)
qc = torch.quantize_per_channel(torch.ones(2, 2), torch.tensor([0.1, 0.2]), torch.tensor([0, 0]), 0, torch.qint8)
bits = torch.zeros(2, dtype=torch.bits8)
packed = torch.zeros(3, dtype=torch.int4)
ragged = torch.nested.nested_tensor([a.detach(), torch.ones(3)])
jagged = torch.nested.as_nested_tensor([a * 2, a * 3], layout=torch.jagged)
y = (jagged * 2).values().sum() + (a * q.dequantize()).sum()
y.backward()
print(q.int_repr(), qc.dequantize().sum(), bits.shape, packed.shape, ragged.size(0), a.grad)
"""


def test_tensors_whose_elements_the_tracer_cannot_read_keep_their_trace(pool: SyncPool) -> None:
    """A quantized tensor (and a bits8, int4 or nested one) made the tracer's reading raise ('load_scalar:
    invalid type', 'NestedTensorImpl doesn't support sizes'): the whole trace was lost ('killed'), or
    the program failed at its line. Quantized values are read as torch prints them (dequantized)."""
    t = pool.run(UNREADABLE)
    stdout, env = _torch_run(UNREADABLE)
    assert t.status == "ok", t.error
    assert t.stdout == stdout
    nodes = {n.name: n for n in t.nodes if n.name}
    assert nodes["a"].grad == env["a"].grad.tolist()
    assert nodes["q"].value == env["q"].dequantize().tolist() and nodes["q"].dtype == "quint8"
    assert nodes["bits"].value is None and nodes["packed"].value is None
    assert nodes["ragged"].shape == [2, -1] and nodes["ragged"].value is None
    assert_normal(pool)


VIEWS = """\
import torch
x = torch.tensor([1.5, -2.0, float("nan"), 4.0, float("inf")], requires_grad=True)
wide = x.expand(400, 3, 5)
wt = torch.arange(6e6).reshape(3000, 2000).sin().t()
huge = x[:2].expand(10**6, 10**6, 2)
lap = torch.arange(2.0 * 10**6).as_strided((10**6, 10**6), (1, 1))
print(huge.shape, lap.shape, wt.shape)
"""


def _oracle_stats(t: torch.Tensor) -> dict[str, Any]:
    t = t.detach().double()
    finite = t[torch.isfinite(t)]
    return {
        "numel": t.numel(),
        "min": finite.min().item(),
        "max": finite.max().item(),
        "mean": finite.mean().item(),
        "std": finite.std().item(),
        "nan_count": int(torch.isnan(t).sum()),
        "inf_count": int(torch.isinf(t).sum()),
    }


def test_views_bigger_than_memory_keep_their_trace_and_true_stats(pool: SyncPool) -> None:
    """expand() to 10**12 elements, or an overlapping as_strided view: the tracer's stats copied them
    dense ('tried to allocate 4000000000000 bytes') and failed the program at that line, where torch
    runs it. Stats now come from the distinct elements (torch's own over the view where it fits)."""
    t = pool.run(VIEWS)
    stdout, env = _torch_run(VIEWS)
    assert t.status == "ok", t.error
    assert t.stdout == stdout
    nodes = {n.name: n for n in t.nodes if n.name}
    for name in ("wide", "wt"):
        got = nodes[name].stats
        assert got is not None
        for key, want in _oracle_stats(env[name]).items():
            assert getattr(got, key) == pytest.approx(want, rel=1e-6), (name, key)
    huge = nodes["huge"].stats
    assert huge is not None and (huge.numel, huge.min, huge.max, huge.mean) == (2 * 10**12, -2.0, 1.5, -0.25)
    assert huge.std == pytest.approx(float(torch.tensor([1.5, -2.0] * 1000, dtype=torch.float64).std()), rel=1e-3)
    assert nodes["lap"].stats is None and nodes["lap"].shape == [10**6, 10**6]
    assert_normal(pool)


STUCK = """\
import torch
x = torch.tensor([1.0, 2.0], requires_grad=True)
(x * 3).sum().backward()
print("before", x.grad)
torch.set_num_threads({threads})
z = torch.empty_strided((1 << 30, 1 << 30), (0, 0)).sum()
print("never")
"""


@pytest.mark.parametrize("threads", [1, 4])
def test_a_program_stuck_in_one_native_call_keeps_its_trace_so_far(pool: SyncPool, threads: int) -> None:
    """One torch call that runs for hours (a sum over 2**60 broadcast zeros) never returns to Python,
    where the deadline's handler runs: the parent's SIGKILL lost the whole trace, stdout included
    ('did not stop when asked'). On 4 threads the CPU limit comes first, and the kernel's SIGKILL
    1 s of CPU (a quarter second) after it."""
    src = STUCK.format(threads=threads)
    t = pool.run(src)
    assert t.status == "timeout" and t.error is not None
    assert "line 6, inside one call that could not be interrupted" in t.error.message and t.error.line == 6
    assert t.stdout == "before tensor([3., 3.])\n"
    assert next(n for n in t.nodes if n.name == "x").grad == [3.0, 3.0]
    assert_normal(pool)


def test_the_programs_own_signals_do_not_stop_it_early(pool: SyncPool) -> None:
    """The watchdog wakes on every signal (set_wakeup_fd); only a deadline that has passed lets it answer."""
    src = """\
import os, signal, torch
signal.signal(signal.SIGUSR1, lambda *args: None)
for _ in range(6):
    os.kill(os.getpid(), signal.SIGUSR1)
    torch.empty_strided((1 << 13, 1 << 14), (0, 0)).sum()
print("done")
"""
    t = pool.run(src)
    assert t.status == "ok", t.error
    assert t.stdout == "done\n"


LYING_OBJECTS = """\
import torch
class Fake:
    @property
    def __class__(self):
        return torch.Tensor
f = Fake()
class L(list):
    def __len__(self):
        raise ValueError("len lies")
xs = L([torch.ones(1)])
class Endless(list):
    def __iter__(self):
        while True:
            yield torch.ones(1)
ys = Endless([torch.ones(1)])
class S(str):
    def __repr__(self):
        raise RuntimeError("key repr lies")
named = {S("k"): torch.ones(1), "w": torch.ones(2)}
class BadRepr:
    def __repr__(self):
        raise RuntimeError("repr lies")
x = torch.tensor([1.0, 2.0], requires_grad=True)
(x * 2).sum().backward()
print("end", x.grad)
BadRepr()
"""


def test_objects_whose_methods_lie_do_not_fail_the_program(pool: SyncPool) -> None:
    """The tracer named a bound value through its own methods: a __class__ claiming torch.Tensor, a
    list whose __len__ raises (or __iter__ never ends), a dict key whose __repr__ raises failed (or
    hung) the program at that line, where Python runs it; a bare expression whose repr raises stopped
    the program, where a notebook shows the error and goes on."""
    t = pool.run(LYING_OBJECTS)
    stdout, env = _torch_run(LYING_OBJECTS)
    assert t.status == "ok", t.error
    assert t.stdout == stdout == "end tensor([2., 2.])\n"
    assert next(n for n in t.nodes if n.name == "x").grad == env["x"].grad.tolist()
    assert any(e.kind == "display" and e.text == "<repr() raised RuntimeError>" for e in t.events)
    assert_normal(pool)


def test_torch_compile_past_the_time_limit_says_why() -> None:
    """torch.compile compiles before it runs (35 s here): the run stops at the time limit, and the error
    says what to do (gradwalk shows eager autograd), in the student's language too."""
    require_root()
    sp = SyncPool(sandbox_settings(timeout_s=1.0, cpu_s=2))
    try:
        trace = sp.run(
            "import torch\nf = torch.compile(lambda x: (x * x).sum())\nx = torch.randn(3, requires_grad=True)\nf(x).backward()\n"
        )
    finally:
        sp.close()
    assert trace.status == "timeout" and trace.error is not None, trace.error
    assert trace.error.hint_id == "compile_time" and "without torch.compile" in (trace.error.hint or "")
    assert "去掉 torch.compile" in i18n.text("zh", f"hint.{trace.error.hint_id}")


UNPRINTABLE_ERRORS = {
    "str raises": "class E(Exception):\n    def __str__(self):\n        raise RuntimeError('no')\nraise E()\n",
    "str returns an int": "class E(Exception):\n    def __str__(self):\n        return 5\nraise E()\n",
    "an argument whose str raises": "class A:\n    def __str__(self):\n        raise RuntimeError('no')\nraise ValueError(A())\n",
}


@pytest.mark.parametrize("source", UNPRINTABLE_ERRORS.values(), ids=UNPRINTABLE_ERRORS.keys())
def test_an_exception_that_cannot_be_printed_is_still_an_error_trace(pool: SyncPool, source: str) -> None:
    """Writing the error's message raised in the tracer, the child exited without a result, and the
    API answered "killed: the program ended without producing a trace (... exited early)"."""
    t = pool.run("import torch\nx = torch.ones(2, requires_grad=True)\nprint('before')\n" + source)
    assert t.status == "error" and t.error is not None, t.error
    assert t.error.type != "killed"
    assert_normal(pool)
