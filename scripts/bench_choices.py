"""The measured reasons behind the tracer's design choices, each beside the alternative it replaced.

    .venv/bin/python scripts/bench_choices.py [--repeat N]

The tracer's comments say why a choice was made; the figures live here, so that they are measured
again instead of going stale. Each row times the choice and its alternative alternately in one run
(medians, so a noisy machine slows both alike) and prints their ratio.
"""

from __future__ import annotations

import argparse
import contextlib
import gc
import inspect
import io
import json
import statistics
import sys
import time
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import orjson  # noqa: E402 - after sys.path.insert: runs as a script from a checkout
import torch  # noqa: E402 - as above
from torch.overrides import TorchFunctionMode  # noqa: E402 - as above

from app.tracer import display, graph, hooks, names, program, trace_json  # noqa: E402 - as above
from app.tracer.capture import untraced  # noqa: E402 - as above

torch.set_num_threads(1)  # as in the sandbox
RECURRENCE = "import torch\nW = torch.randn(4, 4, requires_grad=True)\nh = torch.zeros(4)\nfor t in range(1000):\n    h = torch.tanh(W @ h)\nh.sum().backward()\n"
FAILING = "def r(n):\n    return r(n + 1) if n < 50 else 1 / 0\nr(0)\n"
SEED_3 = (ROOT / "app" / "examples" / "seed_3_scalar_backward.py").read_text()


def pair_ms(choice: Callable[[], Any], other: Callable[[], Any], repeat: int) -> tuple[float, float]:
    """Medians of `choice` and `other`, run alternately, in milliseconds."""
    times: tuple[list[float], list[float]] = ([], [])
    for _ in range(repeat):
        for fn, out in ((choice, times[0]), (other, times[1])):
            t0 = time.perf_counter()
            fn()
            out.append((time.perf_counter() - t0) * 1000)
    return statistics.median(times[0]), statistics.median(times[1])


def many(fn: Callable[[], Any], n: int) -> Callable[[], None]:
    def run() -> None:
        for _ in range(n):
            fn()

    return run


def traced_with_gc(source: str) -> None:
    saved = gc.disable
    gc.disable = lambda: None  # trace_json turns the cyclic collector off; here it stays on
    try:
        trace_json(source)
    finally:
        gc.disable = saved


def free_after_run(source: str) -> Callable[[], None]:
    """Freeing what a run leaves (the sandbox's child never does: it answers and exits)."""
    keep: list[Any] = []
    trace_json(source, keep=keep)

    def free() -> None:
        keep.clear()

    return free


class _PassThrough(TorchFunctionMode):
    def __torch_function__(self, func: Any, types: Any, args: tuple = (), kwargs: dict | None = None) -> Any:
        return func(*args, **(kwargs or {}))


def attribute_reads(under_mode: bool) -> Callable[[], None]:
    t = torch.ones(3)

    def read() -> None:
        for _ in range(1_000):
            _ = t.shape, t.dtype, t.requires_grad

    def run() -> None:
        if under_mode:
            with _PassThrough():
                read()
        else:
            with untraced():
                read()

    return run


def node_literal() -> dict[str, Any]:
    return {
        "id": 1, "kind": "op", "op": "MulBackward0", "label": "MulBackward0", "name": None, "binding": None,
        "line": 3, "shape": [4], "dtype": "float32", "requires_grad": True, "inplace": False, "retains_grad": False,
        "value": None, "stats": None, "grad": None, "grad_stats": None,
    }  # fmt: skip


def node_copy() -> dict[str, Any]:
    node = graph._OP_NODE.copy()
    node["id"], node["op"], node["label"], node["line"], node["shape"], node["dtype"] = 1, "X", "X", 3, [4], "float32"
    return node


def exception_of(source: str) -> BaseException:
    env: dict[str, Any] = {names.BIND: lambda *a: None, names.DISPLAY: lambda line, v: v}
    try:
        exec(names.instrument(source, program.PROGRAM), env)
    except BaseException as e:  # noqa: BLE001 - the failure is what is measured
        return e
    raise AssertionError("the program did not fail")


def rows(repeat: int) -> list[tuple[str, str, str, float, float]]:
    return run_rows(repeat) + part_rows(repeat)


def run_rows(repeat: int) -> list[tuple[str, str, str, float, float]]:
    """Choices about a whole run: what it leaves to the collector, and to the process's exit."""
    document = json.loads(trace_json(RECURRENCE))
    with contextlib.redirect_stdout(io.StringIO()):
        trace_ms = pair_ms(lambda: trace_json(RECURRENCE), lambda: traced_with_gc(RECURRENCE), max(3, repeat // 4))
    free_ms = pair_ms(free_after_run(RECURRENCE), lambda: None, 1)[0]
    return [
        (
            "trace's JSON (run.py)",
            "orjson",
            "json",
            *pair_ms(lambda: orjson.dumps(document), lambda: json.dumps(document), repeat),
        ),
        ("cyclic GC during a run (run.py)", "off", "on", *trace_ms),
        ("a run, its objects left (run.py's keep)", "left", "then freed", trace_ms[0], trace_ms[0] + free_ms),
    ]


def part_rows(repeat: int) -> list[tuple[str, str, str, float, float]]:
    """Choices on the per-op and per-event paths."""
    t = torch.tensor([[1.5, -2.25], [3.0, 4.125]], requires_grad=True) * 2
    e = exception_of(FAILING)
    params = inspect.signature(hooks._ORIGINAL["Tensor.backward"])
    x = torch.ones(2, requires_grad=True)
    fast_repr = many(lambda: display.small_tensor_repr(t), 100)
    torch_repr = many(lambda: display._TENSOR_REPR(t), 100)
    return [
        (
            "tracer's own tensor reads (capture.py)",
            "untraced()",
            "under a mode",
            *pair_ms(attribute_reads(False), attribute_reads(True), repeat),
        ),
        (
            "an op's node dict (graph.py)",
            "copy + stores",
            "16-key literal",
            *pair_ms(many(node_copy, 10_000), many(node_literal, 10_000), repeat),
        ),
        (
            "backward's arguments (hooks.py)",
            "_arguments",
            "Signature.bind",
            *pair_ms(
                many(lambda: hooks._arguments("Tensor.backward", (x,), {"retain_graph": True}), 1_000),
                many(lambda: params.bind(x, retain_graph=True), 1_000),
                repeat,
            ),
        ),  # fmt: skip
        ("a small tensor's display (display.py)", "small_tensor_repr", "torch's repr", *pair_ms(fast_repr, torch_repr, repeat)),
        (
            "a failure's program frames (program.py)",
            "traceback_frames",
            "extract_tb",
            *pair_ms(
                many(lambda: program.traceback_frames(e), 100), many(lambda: traceback.extract_tb(e.__traceback__), 100), repeat
            ),
        ),
        (
            "the program's rewrite (names.py)",
            "instrument",
            "compile alone",
            *pair_ms(
                many(lambda: names.instrument(SEED_3, program.PROGRAM), 100),
                many(lambda: compile(SEED_3, program.PROGRAM, "exec", dont_inherit=True), 100),
                repeat,
            ),
        ),  # fmt: skip
    ]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeat", type=int, default=20)
    args = parser.parse_args()
    print(f"torch {torch.__version__}, medians of {args.repeat} alternating runs, milliseconds per row's batch")
    header = f"{'what':<44}{'choice':>20}{'ms':>9}{'alternative':>17}{'ms':>9}{'ratio':>8}"
    print(header)
    print("-" * len(header))
    for what, choice, other, ours, theirs in rows(args.repeat):
        ratio = f"{theirs / ours:7.1f}x" if ours and theirs else f"{'-':>8}"
        print(f"{what:<44}{choice:>20}{ours:9.3f}{other:>17}{theirs:9.3f}{ratio}")
    print("ratio: the alternative's time over the choice's (below 1: what the choice costs, e.g. the rewrite).")


if __name__ == "__main__":
    main()
