"""PyTorch itself as the reference answer: run a program directly and record what it did."""

from __future__ import annotations

import contextlib
import io
import math
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from app.config import THREADS

_ADDRESS = re.compile(r" at 0x[0-9a-fA-F]+")
_ROOT = Path(__file__).resolve().parent.parent
# Every example and test program: the tracer's tests hold each one's trace to torch.
PROGRAMS = (
    sorted((_ROOT / "app" / "examples").glob("*.py"))
    + sorted((_ROOT / "tests" / "programs").glob("*.py"))
    + sorted((_ROOT / "tests" / "programs" / "models").glob("*.py"))
)


def normalize(stdout: str) -> str:
    """Object addresses differ between any two runs."""
    return _ADDRESS.sub(" at 0x…", stdout)


@dataclass
class Reference:
    namespace: dict[str, Any]
    stdout: str
    error: BaseException | None
    # one entry per backward call: {id(leaf): (leaf, contribution to .grad)} or returned grads
    passes: list[dict[int, tuple[torch.Tensor, torch.Tensor]]] = field(default_factory=list)


def _leaves(roots: list[torch.Tensor]) -> list[torch.Tensor]:
    out, seen, stack = [], set(), [t.grad_fn for t in roots if t.grad_fn is not None]
    for t in roots:
        if t.grad_fn is None and t.requires_grad:
            out.append(t)
    while stack:
        f = stack.pop()
        if f is None or id(f) in seen:
            continue
        seen.add(id(f))
        if hasattr(f, "variable"):
            out.append(f.variable)
        stack.extend(c for c, _ in f.next_functions)
    return out


def run_reference(source: str) -> Reference:
    """exec the program untraced; wrap the backward APIs only to diff leaf .grad around each call."""
    ns: dict[str, Any] = {"__name__": "__main__"}
    ref = Reference(namespace=ns, stdout="", error=None)
    originals = (torch.Tensor.backward, torch.autograd.backward, torch.autograd.grad)
    depth = [0]

    def wrap(fn: Any, kind: str) -> Any:
        def inner(*args: Any, **kwargs: Any) -> Any:
            if depth[0]:
                return fn(*args, **kwargs)
            first = args[0] if args else next(iter(kwargs.values()))
            roots = [first] if isinstance(first, torch.Tensor) else list(first)
            leaves = _leaves(roots)
            before = {id(t): (None if t.grad is None else t.grad.clone()) for t in leaves}
            entry: dict[int, tuple[torch.Tensor, torch.Tensor]] = {}
            depth[0] += 1
            try:
                result = fn(*args, **kwargs)
            except BaseException:
                ref.passes.append(entry)  # a failed call is a pass too, with nothing accumulated
                raise
            finally:
                depth[0] -= 1
            if kind == "grad":
                inputs = args[1] if len(args) > 1 else kwargs["inputs"]
                inputs = [inputs] if isinstance(inputs, torch.Tensor) else list(inputs)
                for t, g in zip(inputs, result):
                    if g is not None:
                        entry[id(t)] = (t, g.detach().clone())
            else:
                for t in leaves:
                    if t.grad is not None:
                        old = before[id(t)]
                        entry[id(t)] = (t, t.grad.detach().clone() - (0 if old is None else old))
            ref.passes.append(entry)
            return result

        return inner

    out = io.StringIO()
    threads = torch.get_num_threads()
    torch.set_num_threads(THREADS)  # as the tracer runs it: the same sums, in the same order
    torch.Tensor.backward = wrap(originals[0], "backward")  # type: ignore[method-assign]
    torch.autograd.backward = wrap(originals[1], "backward")
    torch.autograd.grad = wrap(originals[2], "grad")
    try:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(io.StringIO()):
            import warnings

            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                exec(compile(source, "<program>", "exec", dont_inherit=True), ns)
    except Exception as e:  # noqa: BLE001 - the program's own failure is part of what it did
        ref.error = e
    finally:
        torch.Tensor.backward, torch.autograd.backward, torch.autograd.grad = originals  # type: ignore[method-assign]
        torch.set_num_threads(threads)
    ref.stdout = out.getvalue()
    return ref


def decode(v: Any) -> Any:
    """A trace value back to Python numbers (NaN/Infinity strings to floats)."""
    if isinstance(v, list):
        return [decode(x) for x in v]
    if isinstance(v, str):
        return {"NaN": math.nan, "Infinity": math.inf, "-Infinity": -math.inf}[v]
    return v


def assert_close(trace_value: Any, tensor: torch.Tensor, what: str) -> None:
    expected = tensor.detach().to(torch.float64) if tensor.is_floating_point() else tensor.detach()
    got = torch.tensor(decode(trace_value), dtype=expected.dtype)
    assert got.shape == expected.shape, f"{what}: shape {tuple(got.shape)} != {tuple(expected.shape)}"
    if expected.is_floating_point():
        assert torch.allclose(got, expected, rtol=1e-6, atol=1e-7, equal_nan=True), f"{what}: {got} != {expected}"
    else:
        assert torch.equal(got, expected), f"{what}: {got} != {expected}"


def step_grad(trace: Any, step: Any, output: int = 0) -> Any:
    """A backward step's gradient w.r.t. one output of its node, as a value (Step.grad refers to Trace.tensors)."""
    ref = step.grad[output]
    return None if ref is None else trace.tensors[ref].value


def sent_grad(trace: Any, step: Any, slot: int) -> Any:
    """The gradient a backward step sent to its input `slot`, as a value."""
    ref = step.grad_inputs[slot]
    return None if ref is None else trace.tensors[ref].value


def assert_close_or_stats(value: Any, stats: Any, tensor: torch.Tensor, what: str) -> None:
    """As assert_close; where the trace sends stats instead of the value (a big tensor), the stats."""
    if value is not None or stats is None:
        assert_close(value, tensor, what)
        return
    t = tensor.detach().to(torch.float64).reshape(-1)
    scale = float(t.abs().max()) if t.numel() else 0.0
    assert stats.numel == t.numel(), f"{what}: {stats.numel} elements, not {t.numel()}"
    for key, expected in (("min", t.min()), ("max", t.max()), ("mean", t.mean()), ("std", t.std())):
        got = getattr(stats, key)
        assert math.isclose(got, float(expected), rel_tol=1e-5, abs_tol=1e-6 * scale), f"{what}: {key} {got} != {float(expected)}"
