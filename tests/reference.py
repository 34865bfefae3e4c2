"""PyTorch itself as the reference answer: run a program directly and record what it did."""

from __future__ import annotations

import contextlib
import io
import math
import re
from dataclasses import dataclass, field
from typing import Any

import torch

_ADDRESS = re.compile(r" at 0x[0-9a-fA-F]+")


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
