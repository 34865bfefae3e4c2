"""The sandbox's cost, side by side in one run (not a timed test).

    .venv/bin/python scripts/bench_sandbox.py [--rounds N] [--seconds S]

For the seed programs (app/examples/seed_*.py) it prints p50/p95 latency through the full sandbox
(SandboxPool.run, as the API calls it), through the in-process tracer without isolation, and
through a cold `python -c` subprocess; throughput with 16 concurrent clients; and memory: the
zygote's resident size and each child's private (unshared) memory; and what the zygote's allocator
settings (policy.ENV_SET: glibc malloc on huge pages) save on each child's fork and exit, beside
Python's own allocator.

Sandboxed latency is measured twice: with a think time of 100 ms between runs (a classroom's
pace: the pool's pre-forked children are hardened and warmed up when a request comes) and back
to back (each run also waits for the next child to be forked and hardened, and finds it cold).
Throughput also prints the CPU time per run, which, unlike runs/s, does not depend on what else
the machine is doing.

Targets (issue 3, on a 2-core machine): sandboxed p50 <= 12 ms and p95 <= 25 ms; >= 100x faster
than the cold subprocess; >= 100 runs/s with no failures under 16 concurrent clients; zygote
RSS <= 400 MiB; child private memory <= 64 MiB.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from app.config import Settings  # noqa: E402 - after sys.path.insert: runs as a script from a checkout
from app.sandbox import SandboxPool, policy  # noqa: E402 - after sys.path.insert: runs as a script from a checkout

SEEDS = sorted((ROOT / "app" / "examples").glob("seed_*.py"))
THINK_S = 0.1  # a classroom's pace: the pool has time to fork, harden and warm children up
CLIENTS = 16


def pct(xs: list[float], p: float) -> float:
    xs = sorted(xs)
    return xs[min(len(xs) - 1, round(p / 100 * (len(xs) - 1)))]


def line(name: str, ms: list[float]) -> str:
    return f"  {name:<34} p50 {pct(ms, 50):8.2f} ms   p95 {pct(ms, 95):8.2f} ms   (n={len(ms)})"


def kib(pid: int, field: str, path: str = "status") -> int:
    for row in Path(f"/proc/{pid}/{path}").read_text().splitlines():
        if row.startswith(field + ":"):
            return int(row.split()[1])
    return 0


def children(pid: int) -> list[int]:
    out: list[int] = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        out += [int(c) for c in (task / "children").read_text().split()]
    return out


def private_kib(pid: int) -> int:
    try:
        return kib(pid, "Private_Clean", "smaps_rollup") + kib(pid, "Private_Dirty", "smaps_rollup")
    except OSError:
        return 0


async def sandboxed(pool: SandboxPool, sources: list[str], rounds: int, think_s: float) -> tuple[list[float], int]:
    ms, bad = [], 0
    for _ in range(rounds):
        for src in sources:
            t = time.perf_counter()
            trace = await pool.run(src)
            ms.append((time.perf_counter() - t) * 1000)
            bad += trace.status not in ("ok", "error")
            if think_s:
                await asyncio.sleep(think_s)
    return ms, bad


def cpu_s(pid: int) -> float:
    """CPU time of a process and of its reaped children (the zygote: every finished run)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return sum(int(f) for f in fields[11:15]) / os.sysconf("SC_CLK_TCK")


async def throughput(pool: SandboxPool, sources: list[str], seconds: float) -> tuple[int, int, float, float, float]:
    """Runs done and failed, wall seconds, and CPU seconds spent by the sandbox and by this process."""
    done = failed = 0
    assert pool._zygote is not None
    zygote = children(pool._zygote.proc.pid)[0]
    cpu0, own0 = cpu_s(zygote), time.process_time()
    end = time.perf_counter() + seconds

    async def client(i: int) -> None:
        nonlocal done, failed
        k = i
        while time.perf_counter() < end:
            try:
                trace = await pool.run(sources[k % len(sources)])
                failed += trace.status not in ("ok", "error")
            except Exception:  # noqa: BLE001 - QueueFull or worse: counted, not fatal
                failed += 1
            done += 1
            k += 1

    t = time.perf_counter()
    await asyncio.gather(*(client(i) for i in range(CLIENTS)))
    took = time.perf_counter() - t
    await asyncio.sleep(0.5)  # let the last children be reaped
    return done, failed, took, cpu_s(zygote) - cpu0, time.process_time() - own0


async def memory(pool: SandboxPool, sources: list[str]) -> tuple[int, int, int]:
    """(zygote RSS, largest idle child's private, largest running child's private), in KiB."""
    z = pool._zygote
    assert z is not None
    zygote = children(z.proc.pid)[0]  # P0 waits outside the pid namespace; its child is the zygote
    rss = kib(zygote, "VmRSS")
    idle = max((private_kib(c) for c in children(zygote)), default=0)
    running = 0
    for src in sources:
        task = asyncio.ensure_future(pool.run(src + "\nimport time\ntime.sleep(0.3)\n"))
        await asyncio.sleep(0.2)
        before = set(children(zygote))
        running = max([running, *(private_kib(c) for c in before)])
        await task
    return rss, idle, running


def in_process(sources: list[str], rounds: int) -> list[float]:
    from app.tracer import trace_json

    limits = Settings().trace
    for src in sources:
        trace_json(src, limits)
    ms = []
    for _ in range(rounds):
        for src in sources:
            t = time.perf_counter()
            trace_json(src, limits)
            ms.append((time.perf_counter() - t) * 1000)
    return ms


def cold(sources: list[str], runs: int) -> list[float]:
    code = "import sys; from app.tracer import trace_json; sys.stdout.buffer.write(trace_json(sys.stdin.read()))"
    ms = []
    for i in range(runs):
        t = time.perf_counter()
        subprocess.run(
            [sys.executable, "-c", code], input=sources[i % len(sources)].encode(), cwd=ROOT, capture_output=True, check=True
        )
        ms.append((time.perf_counter() - t) * 1000)
    return ms


# A zygote's heap (torch imported, the seeds traced once), then N children forked, exited and reaped;
# prints the median fork() and fork-to-reaped times in ms.
_FORK = """
import os, sys, time
from app.tracer import trace_json
for path in sys.argv[1:]:
    trace_json(open(path).read())
fork, whole = [], []
for _ in range(40):
    t = time.perf_counter()
    pid = os.fork()
    if pid == 0:
        os._exit(0)
    fork.append(time.perf_counter() - t)
    os.waitpid(pid, 0)
    whole.append(time.perf_counter() - t)
print(sorted(fork)[20] * 1000, sorted(whole)[20] * 1000)
"""


def allocator_rows() -> list[str]:
    """Fork and exit of a zygote-sized process: the zygote's environment beside Python's own allocator."""
    ours = policy.zygote_env()
    pymalloc = {k: v for k, v in ours.items() if k not in ("PYTHONMALLOC", "GLIBC_TUNABLES")}
    rows = {}
    for name, env in (("glibc malloc, huge pages (ENV_SET)", ours), ("pymalloc (Python's default)", pymalloc)):
        out = subprocess.run(
            [sys.executable, "-c", _FORK, *map(str, SEEDS)], env=env, cwd=ROOT, capture_output=True, text=True, check=True
        )
        rows[name] = [float(x) for x in out.stdout.split()]
    (a, b), (c, d) = rows.values()
    lines = [f"  {name:<36} fork {f:6.2f} ms   fork to reaped {w:6.2f} ms" for name, (f, w) in rows.items()]
    return [*lines, f"  ENV_SET: fork {c / a:.1f}x, fork to reaped {d / b:.1f}x faster (median of 40 each)"]


async def main(rounds: int, seconds: float) -> None:
    sources = [p.read_text() for p in SEEDS]
    settings = Settings()
    pool = SandboxPool(settings)
    t = time.perf_counter()
    await pool.start()
    print(
        f"sandbox: mode={pool.mode}, started in {time.perf_counter() - t:.2f} s, "
        f"max_concurrent_runs={settings.sandbox.max_concurrent_runs}, cores={os.cpu_count()}"
    )
    print("protections:", ", ".join(f"{k}={'yes' if v else 'NO'}" for k, v in pool.protections().items()))
    try:
        await sandboxed(pool, sources, 2, THINK_S)  # warm
        think, bad1 = await sandboxed(pool, sources, rounds, THINK_S)
        b2b, bad2 = await sandboxed(pool, sources, rounds, 0)
        done, failed, took, sandbox_cpu, own_cpu = await throughput(pool, sources, seconds)
        rss, idle, running = await memory(pool, sources)
    finally:
        await pool.close()
    inproc = in_process(sources, rounds)
    coldms = cold(sources, 5)
    print(f"\nlatency, {len(sources)} seed programs:")
    print(line(f"sandboxed ({THINK_S * 1000:.0f} ms think time)", think))
    print(line("sandboxed (back to back)", b2b))
    print(line("in-process tracer, no isolation", inproc))
    print(line("cold `python -c` subprocess", coldms))
    print(
        f"  sandboxed vs cold subprocess: {pct(coldms, 50) / pct(think, 50):.0f}x faster at p50 "
        f"({pct(coldms, 50) / pct(b2b, 50):.0f}x back to back); unexpected statuses: {bad1 + bad2}"
    )
    print(f"\nthroughput, {CLIENTS} concurrent clients for {took:.1f} s: {done / took:.0f} runs/s, {failed} failed")
    per_run = (sandbox_cpu + own_cpu) / max(done, 1) * 1000
    print(
        f"  CPU per run: {sandbox_cpu / max(done, 1) * 1000:.1f} ms in the sandbox (zygote and children), "
        f"{own_cpu / max(done, 1) * 1000:.1f} ms in this process: at most {(os.cpu_count() or 1) * 1000 / per_run:.0f} runs/s "
        f"on {os.cpu_count()} otherwise idle cores"
    )
    print(f"  load average at the end: {os.getloadavg()[0]:.1f} (other work on the machine lowers the runs/s above)")
    print("\nmemory:")
    print(f"  zygote resident (RSS)               {rss / 1024:8.1f} MiB   (target <= 400)")
    print(f"  idle pre-forked child, private      {idle / 1024:8.1f} MiB   (target <= 64)")
    print(f"  child running a seed, private       {running / 1024:8.1f} MiB   (target <= 64)")
    targets = {
        "sandboxed p50 <= 12 ms": pct(think, 50) <= 12,
        "sandboxed p95 <= 25 ms": pct(think, 95) <= 25,
        ">= 100x faster than a cold subprocess": pct(coldms, 50) / pct(think, 50) >= 100,
        ">= 100 runs/s with 16 clients, no failures": done / took >= 100 and failed == 0,
        "zygote RSS <= 400 MiB": rss <= 400 * 1024,
        "child private memory <= 64 MiB": max(idle, running) <= 64 * 1024,
    }
    print("\nfork and exit of a zygote-sized process (torch imported, the seeds traced):")
    print("\n".join(allocator_rows()))
    print("\ntargets:")
    for name, met in targets.items():
        print(f"  {'met    ' if met else 'NOT met'}  {name}")


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=20, help="runs of each seed program per latency series")
    ap.add_argument("--seconds", type=float, default=5.0, help="duration of the throughput test")
    args = ap.parse_args()
    asyncio.run(main(args.rounds, args.seconds))
