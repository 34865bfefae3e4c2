"""Tracing cost, side by side in one run: the program untraced, traced + serialized, and torchviz;
then the trace at model scale, against the tracer of an earlier commit.

    .venv/bin/python scripts/bench_trace.py [--repeat N] [--models-only] [--baseline REV]

For each seed program and a 1,000-step recurrence (about 5,000 nodes) it prints the median wall
time of: the program's own run (exec, no tracing), gradwalk's traced run including JSON
serialization, the same traced run without the tracer's C++ part (app/tracer/native.cpp: the
pure-Python fallback), and torchviz's make_dot on the same graph (graph building only, and with
`dot` rendering where Graphviz is installed). Targets: traced <= 3x untraced; the recurrence traced
and serialized in under 1 s.

Model scale (issue 11): a GPT-style model (embedding, 8 pre-norm blocks of causal self-attention
+ MLP, width 32, vocabulary 50, context 16, 3 AdamW steps), its 12-block width-128 variant, a small
ResNet (8 residual blocks, a batch of 8 CIFAR-sized images), the recurrence, and tests/programs/models'
cnn_batchnorm, encoder (nn.TransformerEncoder) and tied (weight tying, a shared module). Each runs through
the sandbox with the default settings (status, and the size of the JSON POST /api/trace returns,
raw and gzipped at the API's level), and in a fresh process for its tracing overhead (CPU time,
alternating with the untraced run); and the same through the tracer of --baseline (default: the
commit before the version-2 document), from a temporary checkout with its own C++ part built, in a
process of its own too. Targets: every model `ok`; the width-32
8-block GPT <= 4 MB raw and <= 1 MB gzipped; traced <= 3x untraced.

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


def side_by_side_ms(
    a: Callable[[], Any], b: Callable[[], Any], repeat: int, clock: Callable[[], float] = time.perf_counter
) -> tuple[float, float]:
    """Medians of a and b run alternately, so a noisy machine slows both alike; each is timed up to
    its result, and what it returns is freed after the clock stops. `clock`: wall time, or
    time.process_time (this process's CPU time: what other processes on the machine do not add to)."""
    times: tuple[list[float], list[float]] = ([], [])
    for _ in range(repeat):
        for fn, out in ((a, times[0]), (b, times[1])):
            t0 = clock()
            left = fn()
            out.append((clock() - t0) * 1000)
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


MODELS_DIR = ROOT / "tests" / "programs" / "models"


def models() -> list[tuple[str, str]]:
    gpt = (MODELS_DIR / "gpt.py").read_text()
    wide = gpt.replace("WIDTH, LAYERS, HEADS, BATCH = 50, 16, 32, 8, 4, 1", "WIDTH, LAYERS, HEADS, BATCH = 50, 16, 128, 12, 4, 1")
    assert wide != gpt, "gpt.py's constants line moved: update the 12-block variant"
    resnet = (MODELS_DIR / "resnet.py").read_text()
    issue = [("recurrence_1000", RECURRENCE), ("gpt_8x32", gpt), ("gpt_12x128", wide), ("resnet_8", resnet)]
    ours = [(name, (MODELS_DIR / f"{name}.py").read_text()) for name in ("cnn_batchnorm", "encoder", "tied")]
    return issue + ours


def sandboxed(programs: list[tuple[str, str]]) -> dict[str, tuple[str, int, int, int, str]]:
    """name -> (status, nodes, bytes, gzipped bytes, notice): through the sandbox, as POST /api/trace returns it."""
    import asyncio
    import gzip

    from app.config import Settings
    from app.main import GZIP_LEVEL
    from app.sandbox import SandboxPool

    async def go() -> dict[str, tuple[str, int, int, int, str]]:
        pool = SandboxPool(Settings(_env_file=None))  # type: ignore[call-arg]
        await pool.start()
        out = {}
        try:
            for name, source in programs:
                document = await pool.trace_document(source)  # the JSON the API returns
                data, trace = document.json, document.trace()
                out[name] = (trace.status, len(trace.nodes), len(data), len(gzip.compress(data, GZIP_LEVEL)), trace.notice or "")
        finally:
            await pool.close()
        return out

    return asyncio.run(go())


_BASELINE_RUN = """
import contextlib, gzip, io, json, statistics, sys, time, warnings
sys.path.insert(0, sys.argv[1])
import torch
torch.set_num_threads(1)
from app.config import Settings
from app.main import GZIP_LEVEL
try:
    from app.tracer import trace_json as run_bytes
except ImportError:  # before issue 10's names
    from app.tracer import run_bytes
source, repeat = sys.stdin.read(), int(sys.argv[2])
settings = Settings(_env_file=None)
limit = settings.sandbox.max_result_bytes if hasattr(settings, "sandbox") else settings.max_result_bytes
def untraced():
    ns = {"__name__": "__main__"}
    with contextlib.redirect_stdout(io.StringIO()), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        exec(compile(source, "<program>", "exec", dont_inherit=True), ns)
    return ns
times, base, data = [], [], b""
for _ in range(repeat + 1):  # alternately, in CPU time, as side_by_side_ms
    t0 = time.process_time()
    left = untraced()
    base.append((time.process_time() - t0) * 1000)
    del left
    keep = []
    t0 = time.process_time()
    data = run_bytes(source, keep=keep)
    times.append((time.process_time() - t0) * 1000)
    del keep
doc = json.loads(data)
status = "killed" if len(data) > limit else doc["status"]
traced, untraced_ms = statistics.median(times[1:]), statistics.median(base[1:])
print(json.dumps([status, len(doc["nodes"]), len(data), len(gzip.compress(data, GZIP_LEVEL)), traced, untraced_ms]))
"""


def baseline_checkout(rev: str) -> Path:
    """The tracer of `rev` in a temporary directory, its C++ part built (cached by commit)."""
    import subprocess
    import tempfile

    commit = subprocess.run(["git", "rev-parse", rev], cwd=ROOT, capture_output=True, text=True, check=True).stdout.strip()
    where = Path(tempfile.gettempdir()) / f"gradwalk-bench-{commit[:12]}"
    if not (where / ".built").exists():
        where.mkdir(exist_ok=True)
        archive = subprocess.run(
            ["git", "archive", commit, "app", "scripts/build_native.py"], cwd=ROOT, capture_output=True, check=True
        )
        subprocess.run(["tar", "-x", "-C", str(where)], input=archive.stdout, check=True)
        subprocess.run([sys.executable, str(where / "scripts" / "build_native.py")], check=True)
        (where / ".built").touch()
    return where


def default_baseline() -> str:
    """The commit before the version-2 document (or HEAD, before it exists)."""
    import subprocess

    found = subprocess.run(
        ["git", "log", "-1", "--format=%H", "-S", "TRACE_VERSION = 2", "--", "app/models.py"],
        cwd=ROOT,
        capture_output=True,
        text=True,
    ).stdout.strip()
    return f"{found}^" if found else "HEAD"


def timed_run(where: Path, source: str, repeat: int) -> list[Any]:
    """The tracer of the checkout at `where` on `source`, in a process of its own: [status, nodes, bytes,
    gzipped bytes, traced ms, untraced ms] (_BASELINE_RUN)."""
    import json
    import subprocess

    out = subprocess.run(
        [sys.executable, "-c", _BASELINE_RUN, str(where), str(repeat)], input=source, capture_output=True, text=True, check=True
    )
    return json.loads(out.stdout)


def model_scale(repeat: int, rev: str) -> None:
    programs = models()
    where = baseline_checkout(rev)
    print(
        f"\nModel scale: this checkout through the sandbox (default settings) and in a process of its own, against {rev} ({where.name})"
    )
    header = (
        f"{'program':<17}{'nodes':>6}{'status':>8}{'bytes':>12}{'gzip':>11}{'B/node':>8}"
        f"{'untraced':>10}{'traced':>9}{'ratio':>7} | {'before:':<8}{'status':>7}{'bytes':>12}{'gzip':>11}{'B/node':>8}{'traced':>9}{'ratio':>7}"
    )
    print(header)
    print("-" * len(header))
    through = sandboxed(programs)
    for name, source in programs:
        status, nodes, size, gz, notice = through[name]
        # both checkouts timed alike, each in a fresh process of its own (a long-lived one that has
        # run the sandbox and the other programs is slower, and not what the sandbox's child is)
        ours, base = timed_run(ROOT, source, repeat)[4:]
        b_status, b_nodes, b_size, b_gz, b_ms, b_base = timed_run(where, source, repeat)
        print(
            f"{name:<17}{nodes:6d}{status:>8}{size:12,d}{gz:11,d}{size // max(nodes, 1):8,d}{base:10.1f}{ours:9.1f}{ours / base:6.1f}x | "
            f"{'':<8}{b_status:>7}{b_size:12,d}{b_gz:11,d}{b_size // max(b_nodes, 1):8,d}{b_ms:9.1f}{b_ms / b_base:6.1f}x"
        )
        if notice:
            print(f"{'':<17}notice: {notice}")
    print("bytes: the JSON POST /api/trace returns; gzip: at the API's level (app.main.GZIP_LEVEL). untraced, traced:")
    print("CPU ms of a fresh process per checkout (the machine is shared: wall time is what the others do), median,")
    print("alternating; before: that commit's tracer, timed the same way (killed: larger than the sandbox's")
    print("max_result_bytes). Targets: ok; gpt_8x32 <= 4 MB, <= 1 MB gzipped; traced <= 3x untraced.")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeat", type=int, default=20)
    parser.add_argument("--models-only", action="store_true", help="only the model-scale table")
    parser.add_argument("--baseline", default=None, help="the commit whose tracer the model table compares with")
    args = parser.parse_args()
    if native.compiled is None:
        sys.exit("app/tracer/_native is not built: run `make native` (the figures would be the fallback's)")
    if not args.models_only:
        seeds_and_recurrence(args.repeat)
    model_scale(max(3, args.repeat // 4), args.baseline or default_baseline())


def seeds_and_recurrence(repeat: int) -> None:
    has_dot = shutil.which("dot") is not None
    print(f"torch {torch.__version__}, median of {repeat} runs, milliseconds")
    header = (
        f"{'program':<26}{'untraced':>10}{'traced':>10}{'ratio':>8}{'nodes':>7}{'µs/node':>9}"
        f"{'no C++':>9}{'ratio':>7}{'torchviz':>16}{'torchviz+dot':>16}"
    )
    print(header)
    print("-" * len(header))
    for name, source in programs():
        n = max(5, repeat // 2) if name == "recurrence_1000" else repeat
        traced(source)  # warm up
        base, ours = side_by_side_ms(lambda s=source: untraced(s), lambda s=source: traced(s), n)
        nodes = len(trace_of(source).nodes)
        per_node = f"{(ours - base) * 1000 / nodes:9.1f}" if nodes else f"{'-':>9}"
        base_py, python = side_by_side_ms(lambda s=source: untraced(s), lambda s=source: traced_python(s), max(3, n // 2))
        ns = untraced(source)
        viz = torchviz_ms(ns, n, render=False)
        viz_dot = torchviz_ms(ns, max(1, n // 4), render=True) if has_dot else "no dot"
        print(
            f"{name:<26}{base:10.2f}{ours:10.2f}{ours / base:7.1f}x{nodes:7d}{per_node}"
            f"{python:9.2f}{python / base_py:6.1f}x{viz:>16}{viz_dot:>16}"
        )
    print("µs/node: (traced - untraced) per node of the trace. no C++: traced by the pure-Python fallback, its ratio")
    print("against its own untraced runs. Targets: ratio <= 3x; recurrence_1000 < 1,000 ms traced.")


if __name__ == "__main__":
    main()
