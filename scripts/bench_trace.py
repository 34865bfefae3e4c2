"""Tracing cost, side by side in one run: the program untraced, traced + serialized, and torchviz.

    .venv/bin/python scripts/bench_trace.py [--repeat N]

For each seed program and a 1,000-step recurrence (about 5,000 nodes) it prints the median wall
time of: the program's own run (exec, no tracing), gradwalk's traced run including JSON
serialization, the same traced run without the tracer's C++ part (app/tracer/native.cpp: the
pure-Python fallback), and torchviz's make_dot on the same graph (graph building only, and with
`dot` rendering where Graphviz is installed). Targets: traced <= 3x untraced; the recurrence traced
and serialized in under 1 s.

Both runs are timed up to their result: what each leaves behind (the program's tensors and graph;
for the traced run also the tracer's records) is freed after the clock stops, as the sandbox's
child does: it sends the trace and exits without freeing anything (trace_json's `keep`).
"""

from __future__ import annotations

import argparse
import contextlib
import io
import shutil
import statistics
import sys
import time
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import torch  # noqa: E402 - after sys.path.insert: runs as a script from a checkout

from app.config import TraceSettings  # noqa: E402 - after sys.path.insert: runs as a script from a checkout
from app.tracer import native, trace_json, trace_of  # noqa: E402 - after sys.path.insert: runs as a script from a checkout

torch.set_num_threads(1)  # as in the sandbox

RECURRENCE = """import torch
torch.manual_seed(0)
W = torch.randn(4, 4, requires_grad=True)
b = torch.randn(4, requires_grad=True)
h = torch.zeros(4)
for t in range(1000):
    h = torch.tanh(W @ h + b) + 0.1 * h
loss = h.sum()
loss.backward()
"""


def programs() -> list[tuple[str, str]]:
    seeds = sorted((ROOT / "app" / "examples").glob("seed_*.py"))
    return [(p.stem, p.read_text()) for p in seeds] + [("recurrence_1000", RECURRENCE)]


def untraced(source: str) -> dict[str, Any]:
    ns: dict[str, Any] = {"__name__": "__main__"}
    with contextlib.redirect_stdout(io.StringIO()), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            exec(compile(source, "<program>", "exec", dont_inherit=True), ns)
        except Exception:  # noqa: BLE001 - a program's own error ends its untraced run, as it ends the traced one
            pass
    return ns


def traced(source: str) -> list[Any]:
    """What the sandbox's child does: the JSON's bytes, the run's objects left to the caller."""
    keep: list[Any] = []
    keep.append(trace_json(source, TraceSettings(), keep=keep))
    return keep


def traced_python(source: str) -> list[Any]:
    """As `traced`, with the pure-Python fallback of app/tracer/native.cpp."""
    compiled, native.compiled = native.compiled, None
    try:
        return traced(source)
    finally:
        native.compiled = compiled


def side_by_side_ms(a: Callable[[], Any], b: Callable[[], Any], repeat: int) -> tuple[float, float]:
    """Medians of a and b run alternately, so a noisy machine slows both alike; each is timed up to
    its result, and what it returns is freed after the clock stops."""
    times: tuple[list[float], list[float]] = ([], [])
    for _ in range(repeat):
        for fn, out in ((a, times[0]), (b, times[1])):
            t0 = time.perf_counter()
            left = fn()
            out.append((time.perf_counter() - t0) * 1000)
            del left
    return statistics.median(times[0]), statistics.median(times[1])


def median_ms(fn: Callable[[], Any], repeat: int) -> float:
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append((time.perf_counter() - t0) * 1000)
    return statistics.median(times)


def root_of(ns: dict[str, Any]) -> torch.Tensor | None:
    """The last tensor the program bound that has a grad_fn: what torchviz would be asked to draw."""
    roots = [v for v in ns.values() if isinstance(v, torch.Tensor) and v.grad_fn is not None]
    return roots[-1] if roots else None


def torchviz_ms(ns: dict[str, Any], repeat: int, render: bool) -> str:
    try:
        from torchviz import make_dot
    except ImportError:
        return "not installed"
    root = root_of(ns)
    if root is None:
        return "no graph"
    params = {k: v for k, v in ns.items() if isinstance(v, torch.Tensor) and v.requires_grad and v.grad_fn is None}

    def draw() -> None:
        dot = make_dot(root, params=params)
        if render:
            dot.pipe(format="svg")

    try:
        return f"{median_ms(draw, repeat):10.2f}"
    except RecursionError:
        return "RecursionError"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeat", type=int, default=20)
    args = parser.parse_args()
    has_dot = shutil.which("dot") is not None
    if native.compiled is None:
        sys.exit("app/tracer/_native is not built: run `make native` (the figures would be the fallback's)")
    print(f"torch {torch.__version__}, median of {args.repeat} runs, milliseconds")
    header = (
        f"{'program':<26}{'untraced':>10}{'traced':>10}{'ratio':>8}{'nodes':>7}{'µs/node':>9}"
        f"{'no C++':>9}{'ratio':>7}{'torchviz':>16}{'torchviz+dot':>16}"
    )
    print(header)
    print("-" * len(header))
    for name, source in programs():
        repeat = max(5, args.repeat // 2) if name == "recurrence_1000" else args.repeat
        traced(source)  # warm up
        base, ours = side_by_side_ms(lambda s=source: untraced(s), lambda s=source: traced(s), repeat)
        nodes = len(trace_of(source).nodes)
        per_node = f"{(ours - base) * 1000 / nodes:9.1f}" if nodes else f"{'-':>9}"
        base_py, python = side_by_side_ms(lambda s=source: untraced(s), lambda s=source: traced_python(s), max(3, repeat // 2))
        ns = untraced(source)
        viz = torchviz_ms(ns, repeat, render=False)
        viz_dot = torchviz_ms(ns, max(1, repeat // 4), render=True) if has_dot else "no dot"
        print(
            f"{name:<26}{base:10.2f}{ours:10.2f}{ours / base:7.1f}x{nodes:7d}{per_node}"
            f"{python:9.2f}{python / base_py:6.1f}x{viz:>16}{viz_dot:>16}"
        )
    print("µs/node: (traced - untraced) per node of the trace. no C++: traced by the pure-Python fallback, its ratio")
    print("against its own untraced runs. Targets: ratio <= 3x; recurrence_1000 < 1,000 ms traced.")


if __name__ == "__main__":
    main()
