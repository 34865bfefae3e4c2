"""Teachers' exports, before and after batching, side by side in one run (not a timed test).

    .venv/bin/python scripts/bench_export.py [--rounds N] [--format svg|png]

Before: today's one-at-a-time export, as `gradwalk export FILE.py --step N` did it until batching
(kept here as the baseline): a process per figure that starts a sandbox (warmed up on every example,
as the server's is), runs the program, starts Chromium, loads the offline page and draws one step.
After: `gradwalk export` itself, once for a single figure and once for every figure of the batch
(the seed programs at three steps each): the programs traced in one child process (app.local_trace)
while Chromium starts, each program loaded once and drawn at each of its steps. The single figure is
also timed with `--sandbox` (the sandbox, as every export ran before the tracing process) and with an
empty font cache (app.fontsubset: the first export after installing, or of a program with new characters),
and warm: handed to a `gradwalk export-service` started once before the rounds (torch loaded in its
sandbox's zygote, Chromium open, a page loaded ahead), a few seconds after the last export as a teacher's
would come; its CPU column is the client's alone (the service is not a child of the bench).
Every other row runs with no service to find (XDG_RUNTIME_DIR set to an empty folder).

Each is a fresh process, timed from its start to its exit (wall clock) and by the CPU time of its
whole process tree (the browser's and the zygote's included, which a busy machine does not inflate).
Rounds alternate before and after so that a noisy machine slows both alike; medians are printed.
Targets (issue 13): a single export <= 1.5 s, each further figure <= 300 ms.
`--one` times the single figure only (the 9-figure "before" is nine fresh processes: minutes on a busy machine).
"""

from __future__ import annotations

import argparse
import contextlib
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PROGRAMS = [ROOT / "app" / "examples" / f"{name}.py" for name in ("seed_3_scalar_backward", "seed_4_jacobian", "seed_5_chain")]
STEPS = [0, 5, -1]
WARM_PAUSE_S = 5.0  # between two warm exports: the service loads its next page meanwhile

# The export as it was: one process per figure, its own sandbox and its own browser.
BEFORE = """
import sys
from app import export
from app.sandbox import trace_in_sandbox
path, step, fmt, out = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4]
trace = trace_in_sandbox(open(path).read())
data = export.svg(trace, step).encode() if fmt == "svg" else export.png(trace, step)
open(out, "wb").write(data)
"""


def timed(command: list[str]) -> tuple[float, float]:
    """(wall s, CPU s of the process and everything it started) of one command."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    subprocess.run(command, cwd=ROOT, check=True, capture_output=True)
    wall = time.perf_counter() - t0
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return wall, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def before(fmt: str, out: Path, figures: list[tuple[Path, int]]) -> tuple[float, float]:
    totals = [timed([sys.executable, "-c", BEFORE, str(p), str(s), fmt, str(out / f"{p.stem}-{s}.{fmt}")]) for p, s in figures]
    return sum(w for w, _ in totals), sum(c for _, c in totals)


def after(fmt: str, out: Path, programs: list[Path], steps: list[int], *extra: str) -> tuple[float, float]:
    args = [
        sys.executable,
        "-m",
        "app.cli",
        "export",
        *map(str, programs),
        "--format",
        fmt,
        "--step",
        ",".join(map(str, steps)),
        *extra,
    ]
    return timed([*args, "-o", str(out / f"one.{fmt}")] if len(programs) * len(steps) == 1 else [*args, "-o", f"{out}/"])


def warm(fmt: str, out: Path, runtime: str) -> tuple[float, float]:
    """The single figure handed to the export service listening in `runtime`, after a pause (its next page made)."""
    time.sleep(WARM_PAUSE_S)
    cold = os.environ["XDG_RUNTIME_DIR"]
    os.environ["XDG_RUNTIME_DIR"] = runtime
    try:
        return after(fmt, out, PROGRAMS[-1:], [-1])
    finally:
        os.environ["XDG_RUNTIME_DIR"] = cold


@contextlib.contextmanager
def service(runtime: str) -> Iterator[None]:
    """`gradwalk export-service` listening in `runtime`, for the block."""
    env = {**os.environ, "XDG_RUNTIME_DIR": runtime}
    proc = subprocess.Popen(
        [sys.executable, "-m", "app.cli", "export-service", "--idle", "3600"], cwd=ROOT, env=env, stdout=subprocess.PIPE
    )
    try:
        assert proc.stdout is not None
        proc.stdout.readline()  # "listening on ..."
        time.sleep(WARM_PAUSE_S)  # and its first page loaded
        yield
    finally:
        proc.terminate()
        proc.wait()
        proc.stdout.close()  # type: ignore[union-attr]  # a pipe: made above


def cold_fonts(fmt: str, out: Path) -> tuple[float, float]:
    """The single figure with an empty font cache (XDG_CACHE_HOME set to a new folder for this run)."""
    with tempfile.TemporaryDirectory(prefix="bench-fonts-") as cache:
        os.environ["XDG_CACHE_HOME"] = cache
        try:
            return after(fmt, out, PROGRAMS[-1:], [-1])
        finally:
            del os.environ["XDG_CACHE_HOME"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--format", choices=["svg", "png"], default="svg")
    parser.add_argument("--one", action="store_true", help="only the single figure's rows")
    args = parser.parse_args()
    if "XDG_CACHE_HOME" in os.environ:
        parser.error("XDG_CACHE_HOME is set: the font-cache row sets it itself")
    n = len(PROGRAMS) * len(STEPS)
    rows: dict[str, list[tuple[float, float]]] = {}
    with (
        tempfile.TemporaryDirectory(prefix="bench-export-") as tmp,
        tempfile.TemporaryDirectory(prefix="bench-run-") as nowhere,
        tempfile.TemporaryDirectory(prefix="bench-run-") as runtime,
    ):
        os.environ["XDG_RUNTIME_DIR"] = nowhere  # no export service: the cold rows
        out = Path(tmp)
        after(args.format, out, PROGRAMS[-1:], [-1])  # fills the font cache once (the rows below say which use it)
        with service(runtime):  # idle while the cold rows run (its zygote and Chromium wait)
            for r in range(args.rounds):
                runs = {
                    "before_one": lambda: before(args.format, out, [(PROGRAMS[-1], -1)]),
                    "after_one": lambda: after(args.format, out, PROGRAMS[-1:], [-1]),
                    "warm_one": lambda: warm(args.format, out, runtime),
                    "sandbox_one": lambda: after(args.format, out, PROGRAMS[-1:], [-1], "--sandbox"),
                    "fonts_one": lambda: cold_fonts(args.format, out),
                }
                if not args.one:
                    runs["after_all"] = lambda: after(args.format, out, PROGRAMS, STEPS)
                    runs["before_all"] = lambda: before(args.format, out, [(p, s) for p in PROGRAMS for s in STEPS])
                for key, run in runs.items():
                    rows.setdefault(key, []).append(run())
                print(f"round {r + 1}/{args.rounds} done", file=sys.stderr)
    show(rows, args.format, args.rounds, n)


def show(rows: dict[str, list[tuple[float, float]]], fmt: str, rounds: int, n: int) -> None:
    """The medians of every row, side by side, with the targets and the ratios."""
    med = {k: (statistics.median(w for w, _ in v), statistics.median(c for _, c in v)) for k, v in rows.items()}
    load = os.getloadavg()[0]
    print(f"gradwalk export, {fmt}, {rounds} rounds, medians (load average {load:.1f} on {os.cpu_count()} CPUs)")
    print(f"{'':44}{'wall s':>10}{'CPU s':>10}")
    labels = {
        "before_one": "one figure, before (per figure)",
        "sandbox_one": "one figure, --sandbox",
        "fonts_one": "one figure, empty font cache",
        "after_one": "one figure, cold (target <= 1.5 s)",
        "warm_one": "one figure, warm (export-service)",
        "before_all": f"{n} figures, before ({n} processes)",
        "after_all": f"{n} figures, after (one command)",
    }
    for key, label in labels.items():
        if key in med:
            print(f"  {label:<42}{med[key][0]:10.2f}{med[key][1]:10.2f}")
    one = med["after_one"][0]
    for key, label in (("after_one", "cold"), ("warm_one", "warm")):
        print(f"single export, {label}: {med[key][0]:.2f} s wall, target 1.5 s: {'met' if med[key][0] <= 1.5 else 'NOT met'}")
    print(
        f"ratios (before / after), one figure: {med['before_one'][0] / one:.1f}x wall, "
        f"{med['before_one'][1] / med['after_one'][1]:.1f}x CPU; --sandbox / cold: {med['sandbox_one'][0] / one:.1f}x wall"
    )
    if "after_all" in med:
        further = [(med["after_all"][i] - med["after_one"][i]) / (n - 1) for i in (0, 1)]
        print(f"  {'each further figure (target <= 0.3 s)':<42}{further[0]:10.2f}{further[1]:10.2f}")
        print(
            f"ratios (before / after), {n} figures: {med['before_all'][0] / med['after_all'][0]:.1f}x wall, "
            f"{med['before_all'][1] / med['after_all'][1]:.1f}x CPU"
        )


if __name__ == "__main__":
    main()
