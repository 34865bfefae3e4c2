"""Teachers' exports, before and after batching, side by side in one run (not a timed test).

    .venv/bin/python scripts/bench_export.py [--rounds N] [--format svg|png]

Before: today's one-at-a-time export, as `gradwalk export FILE.py --step N` did it until batching
(kept here as the baseline): a process per figure that starts a sandbox (warmed up on every example,
as the server's is), runs the program, starts Chromium, loads the offline page and draws one step.
After: `gradwalk export` itself, once for a single figure and once for every figure of the batch
(the seed programs at three steps each): one sandbox (no example warm-up) started while Chromium
starts, each program loaded once and drawn at each of its steps.

Each is a fresh process, timed from its start to its exit (wall clock) and by the CPU time of its
whole process tree (the browser's and the zygote's included, which a busy machine does not inflate).
Rounds alternate before and after so that a noisy machine slows both alike; medians are printed.
Targets (issue 13): a single export <= 1.5 s, each further figure <= 300 ms.
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PROGRAMS = [ROOT / "app" / "examples" / f"{name}.py" for name in ("seed_3_scalar_backward", "seed_4_jacobian", "seed_5_chain")]
STEPS = [0, 5, -1]

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


def after(fmt: str, out: Path, programs: list[Path], steps: list[int]) -> tuple[float, float]:
    args = [sys.executable, "-m", "app.cli", "export", *map(str, programs), "--format", fmt, "--step", ",".join(map(str, steps))]
    return timed([*args, "-o", str(out / f"one.{fmt}")] if len(programs) * len(steps) == 1 else [*args, "-o", f"{out}/"])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--format", choices=["svg", "png"], default="svg")
    args = parser.parse_args()
    n = len(PROGRAMS) * len(STEPS)
    rows: dict[str, list[tuple[float, float]]] = {"before_one": [], "after_one": [], "before_all": [], "after_all": []}
    with tempfile.TemporaryDirectory(prefix="bench-export-") as tmp:
        out = Path(tmp)
        for r in range(args.rounds):
            rows["before_one"].append(before(args.format, out, [(PROGRAMS[-1], -1)]))
            rows["after_one"].append(after(args.format, out, PROGRAMS[-1:], [-1]))
            rows["after_all"].append(after(args.format, out, PROGRAMS, STEPS))
            rows["before_all"].append(before(args.format, out, [(p, s) for p in PROGRAMS for s in STEPS]))
            print(f"round {r + 1}/{args.rounds} done", file=sys.stderr)
    med = {k: (statistics.median(w for w, _ in v), statistics.median(c for _, c in v)) for k, v in rows.items()}
    load = os.getloadavg()[0]
    print(f"gradwalk export, {args.format}, {args.rounds} rounds, medians (load average {load:.1f} on {os.cpu_count()} CPUs)")
    print(f"{'':34}{'wall s':>10}{'CPU s':>10}")
    for label, key in (
        ("one figure, before (per figure)", "before_one"),
        ("one figure, after (batch of 1)", "after_one"),
        (f"{n} figures, before ({n} processes)", "before_all"),
        (f"{n} figures, after (one command)", "after_all"),
    ):
        print(f"  {label:<32}{med[key][0]:10.2f}{med[key][1]:10.2f}")
    further = [(med["after_all"][i] - med["after_one"][i]) / (n - 1) for i in (0, 1)]
    print(f"  {'each further figure, after':<32}{further[0]:10.2f}{further[1]:10.2f}")
    print(
        f"ratios (before / after): one figure {med['before_one'][0] / med['after_one'][0]:.1f}x wall, "
        f"{med['before_one'][1] / med['after_one'][1]:.1f}x CPU; {n} figures {med['before_all'][0] / med['after_all'][0]:.1f}x wall, "
        f"{med['before_all'][1] / med['after_all'][1]:.1f}x CPU"
    )


if __name__ == "__main__":
    main()
