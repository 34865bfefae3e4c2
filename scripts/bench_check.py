"""The numeric check's cost against the plain run, both through the sandbox, side by side in one run.

    .venv/bin/python scripts/bench_check.py [--rounds N]

For each seed program (app/examples/seed_*.py) and the gallery's training loop and custom Functions
it prints the median latency of a plain traced run (SandboxPool.trace_document, as POST /api/trace
calls it) and of the same run with the check (Job(check=True), as POST /api/check), the ratio, and
how many elements the check nudged in how many runs of the program. A think time between runs lets
the pool's pre-forked children be ready, as in a classroom. Target (issue 16): the check <= 1 s for
the seed programs.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from app.config import Settings  # noqa: E402 - after sys.path.insert: runs as a script from a checkout
from app.models import Job  # noqa: E402
from app.sandbox import SandboxPool  # noqa: E402

EXAMPLES = ROOT / "app" / "examples"
PROGRAMS = [
    *sorted(EXAMPLES.glob("seed_*.py")),
    *(EXAMPLES / f"{n}.py" for n in ("training_loop", "custom_function", "mlp_step")),
]
THINK_S = 0.1
TARGET_S = 1.0


async def timed(pool: SandboxPool, source: str, job: Job | None) -> tuple[float, object]:
    started = time.perf_counter()
    document = await pool.trace_document(source, "bench", job)
    return time.perf_counter() - started, document


async def main(rounds: int) -> None:
    pool = SandboxPool(Settings(_env_file=None))  # type: ignore[call-arg]
    await pool.start()
    try:
        print(
            f"{'program':<28} {'plain p50':>10} {'check p50':>10} {'ratio':>7} {'nudged':>7} {'runs':>5}  check <= {TARGET_S:g} s"
        )
        for path in PROGRAMS:
            source = path.read_text()
            plain, checked = [], []
            trace = None
            for _ in range(rounds):
                await asyncio.sleep(THINK_S)
                plain.append((await timed(pool, source, None))[0])
                await asyncio.sleep(THINK_S)
                seconds, document = await timed(pool, source, Job(check=True))
                checked.append(seconds)
                trace = document.trace()  # type: ignore[attr-defined]
            p, c = statistics.median(plain), statistics.median(checked)
            check = trace.check if trace is not None else None
            nudged, runs = (check.elements, check.runs) if check is not None else (0, 0)
            seed = path.stem.startswith("seed_")
            verdict = ("yes" if c <= TARGET_S else "NO") if seed else "-"
            print(f"{path.stem:<28} {p * 1000:8.1f} ms {c * 1000:8.1f} ms {c / p:6.1f}x {nudged:7d} {runs:5d}  {verdict}")
    finally:
        await pool.close()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    asyncio.run(main(parser.parse_args().rounds))
