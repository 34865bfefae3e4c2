"""Benchmark the API over HTTP against a real `gradwalk serve` (not a timed test).

Prints p50/p95 latency of POST /api/trace for each seed program (one client, sequential), split into
the sandbox's run and the web layer by the server's Server-Timing header, then
sustained throughput with 16 and 64 concurrent clients, each next to `GET /api/health` measured
the same way in the same run: the floor of the HTTP stack, so the ratio is what a run costs.
Targets on the 2-core reference machine: p50 <= 15 ms, >= 100 traces/s at 16 clients, no 5xx at 64
(429 with Retry-After is the right answer to overload).

Then fairness under abuse: 56 students (each from its own loopback address, so each is a client of
its own) send the seed programs with a second or so of reading between runs, first alone, then
beside 8 abusive clients sending only hostile programs (busy loops, memory and fork bombs, giant
stdout, in-memory files) back to back. Targets: the students' p95 <= 1 s and p50 <= 100 ms beside the
abusers, every student trace correct (as the seed's own), no 5xx. The fairness rows are run twice,
on a server without and with `share_identical_runs` (identical runs in flight share one run), so
that what sharing saves is never mistaken for what the scheduler does.

    .venv/bin/python scripts/bench_api.py [--url http://127.0.0.1:8000] [--duration-s 5] [--requests 60] [--abuse-s 30] [--students 56]
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import json
import os
import statistics
import subprocess
import sys
import time
import urllib.parse
from pathlib import Path

import httpx
from loadgen import Connection, load, machine_busy_s, percentile, raw_request, sequential, server_timing, start_server, tree_cpu_s

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
SEEDS = sorted((ROOT / "app" / "examples").glob("seed_*.py"))
P50_TARGET_MS = 15.0
THROUGHPUT_TARGET_PER_S = 100.0
STUDENTS, ABUSERS = 56, 8
STUDENT_P50_TARGET_MS, STUDENT_P95_TARGET_MS = 100.0, 1000.0
STUDENT_THINK_S = (0.5, 1.5)  # reading the graph between two runs, uniformly
HOSTILE = {
    "busy loop": "while True:\n    pass\n",
    "memory bomb": "hoard = []\nwhile True:\n    hoard.append(bytearray(64 << 20))\n",
    "fork bomb": "import os\nwhile True:\n    os.fork()\n",
    "giant stdout": "while True:\n    print('x' * 100_000)\n",
    "memfd bomb": "import os\nfds = []\nwhile True:\n    fd = os.memfd_create('b')\n    os.write(fd, b'x' * (64 << 20))\n    fds.append(fd)\n",
}


def latency_and_throughput(url: str, seeds: list[tuple[str, dict]], requests: int, duration_s: float) -> None:
    print(f"\nlatency, 1 client, {requests} sequential requests each (ms); 'sandbox' is the run as the server")
    print("reports it (Server-Timing), 'web layer' the rest: HTTP, routing, validation, JSON, logging (median)")
    print(f"{'request':40} {'p50':>8} {'p95':>8} {'p50 / floor':>12} {'sandbox p50':>12} {'web layer':>10}")
    floor, _ = sequential(url, "GET", "/api/health", None, requests)
    floor_p50 = percentile(floor, 0.5)
    print(f"{'GET /api/health (floor)':40} {floor_p50:8.2f} {percentile(floor, 0.95):8.2f} {1.0:12.1f}")
    all_p50 = []
    for name, body in seeds:
        lat, timings = sequential(url, "POST", "/api/trace", body, requests)
        sandbox = [t.get("sandbox", float("nan")) for t in timings]
        p50 = percentile(lat, 0.5)
        all_p50.append(p50)
        web = statistics.median(total - run for total, run in zip(lat, sandbox))
        print(
            f"{'POST /api/trace ' + name:40} {p50:8.2f} {percentile(lat, 0.95):8.2f} {p50 / floor_p50:12.1f}"
            f" {percentile(sandbox, 0.5):12.2f} {web:10.2f}"
        )
    worst = max(all_p50)
    print(f"worst seed p50 {worst:.2f} ms (target <= {P50_TARGET_MS:.0f} ms): {'met' if worst <= P50_TARGET_MS else 'MISSED'}")

    print(f"\nthroughput, {duration_s:.0f} s per row (completed 200s per second)")
    print(f"{'clients':>7} {'request':26} {'per s':>9} {'p50 ms':>8} {'p95 ms':>8} {'vs floor':>9}  statuses")
    traces = [("POST", "/api/trace", body) for _, body in seeds]
    verdicts = []
    for clients in (16, 64):
        base = asyncio.run(load(url, clients, duration_s, [("GET", "/api/health", None)]))
        run = asyncio.run(load(url, clients, duration_s, traces))
        for label, r in (("GET /api/health (floor)", base), ("POST /api/trace (seeds)", run)):
            ratio = r["per_s"] / base["per_s"] if base["per_s"] else float("nan")
            print(f"{clients:7d} {label:26} {r['per_s']:9.1f} {r['p50']:8.1f} {r['p95']:8.1f} {ratio:9.2f}  {r['statuses']}")
        server_errors = sum(n for s, n in run["statuses"].items() if isinstance(s, str) or s >= 500)
        if clients == 16:
            verdicts.append(
                f"{run['per_s']:.0f} traces/s at 16 clients (target >= {THROUGHPUT_TARGET_PER_S:.0f}): "
                f"{'met' if run['per_s'] >= THROUGHPUT_TARGET_PER_S else 'MISSED'}"
            )
        verdicts.append(
            f"{clients} clients: {server_errors} 5xx or transport errors "
            f"({'met' if server_errors == 0 else 'MISSED'}), {run['statuses'].get(429, 0)} answered 429"
        )
    print()
    for line in verdicts:
        print(line)


def _summary(body: bytes) -> tuple[str, int, int]:
    """What a correct trace of a seed shares with the seed's own: status, nodes, events (the values of
    torch.randn differ from run to run, so stdout is not compared)."""
    trace = json.loads(body)
    return trace["status"], len(trace["nodes"]), len(trace["events"])


async def _abuser(host: str, port: int, k: int, hostile: list[bytes], statuses: collections.Counter, stop: float) -> None:
    """One abusive client: hostile programs back to back until `stop`, from its own address."""
    conn = Connection(host, port, source=f"127.2.0.{k + 1}")
    i = k
    try:
        while time.perf_counter() < stop:
            try:
                status, headers = await conn.request(hostile[i % len(hostile)])
                statuses[status] += 1
                if status == 429:
                    await asyncio.sleep(float(headers.get("retry-after", "1")))
            except (OSError, asyncio.IncompleteReadError, ValueError) as e:
                statuses[type(e).__name__] += 1
                await conn.close()
            i += 1
    finally:
        await conn.close()


async def fairness(url: str, seconds: float, expected: dict[str, tuple[str, int, int]], students: int, abusers: int) -> dict:
    """Students' latencies (ms), wrong traces and statuses, beside `abusers` hostile clients, for `seconds`."""
    import random

    parsed = urllib.parse.urlsplit(url)
    host, port = parsed.hostname or "127.0.0.1", parsed.port or 80
    seeds = [(p.stem, raw_request(host, port, "POST", "/api/trace", {"source": p.read_text()})) for p in SEEDS]
    hostile = [raw_request(host, port, "POST", "/api/trace", {"source": s}) for s in HOSTILE.values()]
    out: dict = {
        "latencies": [],
        "phases": [],
        "wrong": collections.Counter(),
        "student": collections.Counter(),
        "abuser": collections.Counter(),
    }
    stop = time.perf_counter() + seconds
    rng = random.Random(7)

    async def student(k: int) -> None:
        conn = Connection(host, port, source=f"127.1.{k // 250}.{k % 250 + 1}")
        await asyncio.sleep(rng.uniform(0, STUDENT_THINK_S[1]))
        i = k
        try:
            while time.perf_counter() < stop:
                name, raw = seeds[i % len(seeds)]
                i += 1
                t0 = time.perf_counter()
                try:
                    status, headers = await conn.request(raw)
                except (OSError, asyncio.IncompleteReadError, ValueError) as e:
                    out["student"][type(e).__name__] += 1
                    await conn.close()
                    continue
                out["latencies"].append((time.perf_counter() - t0) * 1000)
                out["phases"].append(server_timing(headers.get("server-timing", "")))
                out["student"][status] += 1
                got = _summary(conn.body) if status == 200 else expected[name]
                if got != expected[name]:  # which seed, and its status (a timeout on a crowded machine is not a wrong value)
                    out["wrong"][f"{name} {got[0]}"] += 1
                await asyncio.sleep(rng.uniform(*STUDENT_THINK_S))
        finally:
            await conn.close()

    abusing = (_abuser(host, port, k, hostile, out["abuser"], stop) for k in range(abusers))
    await asyncio.gather(*(student(k) for k in range(students)), *abusing)
    return out


def phase_summary(phases: list[dict[str, float]]) -> str:
    """The students' Server-Timing phases: median and p95 of each (ms)."""
    parts = []
    for name in ("queue", "start", "run", "check"):
        values = [p[name] for p in phases if name in p]
        if values:
            parts.append(f"{name} {percentile(values, 0.5):.0f}/{percentile(values, 0.95):.0f}")
    return ", ".join(parts)


def report_fairness(url: str, seconds: float, students: int, server_pid: int | None) -> None:
    expected = {}
    for p in SEEDS:
        response = httpx.post(url + "/api/trace", json={"source": p.read_text()}, timeout=60)
        expected[p.stem] = _summary(response.content)
    print(
        f"\nfairness: {students} students (a seed program, then {STUDENT_THINK_S[0]}-{STUDENT_THINK_S[1]} s of reading), {seconds:.0f} s per row"
    )
    print(
        f"{'students beside':28} {'runs':>6} {'p50 ms':>8} {'p95 ms':>8} {'max ms':>8} {'wrong':>6}  statuses (students | abusers)"
    )
    verdict, alone = "", (float("nan"), float("nan"))
    usage = []
    for abusers in (0, ABUSERS):
        cpu0, busy0, t0 = tree_cpu_s(server_pid) if server_pid else 0.0, machine_busy_s(), time.perf_counter()
        r = asyncio.run(fairness(url, seconds, expected, students, abusers))
        elapsed = time.perf_counter() - t0
        server_cpu = (tree_cpu_s(server_pid) - cpu0) / elapsed if server_pid else float("nan")
        usage.append((abusers, server_cpu, (machine_busy_s() - busy0) / elapsed, os.getloadavg()[0], phase_summary(r["phases"])))
        lat = r["latencies"]
        p50, p95 = percentile(lat, 0.5), percentile(lat, 0.95)
        label = "nobody (baseline)" if abusers == 0 else f"{abusers} abusive clients"
        print(
            f"{label:28} {len(lat):6d} {p50:8.1f} {p95:8.1f} {max(lat):8.1f} {r['wrong'].total():6d}  "
            f"{dict(r['student'])} | {dict(r['abuser'])}"
        )
        if r["wrong"]:
            print(f"{'':28} wrong traces (seed and status): {dict(r['wrong'])}")
        if not abusers:
            alone = (p50, p95)
        else:
            errors = sum(n for s, n in [*r["student"].items(), *r["abuser"].items()] if isinstance(s, str) or s >= 500)
            wrong = r["wrong"].total()
            met = p50 <= STUDENT_P50_TARGET_MS and p95 <= STUDENT_P95_TARGET_MS and wrong == 0 and errors == 0
            verdict = (
                f"beside {abusers} abusive clients: students' p50 {p50:.0f} ms (target <= {STUDENT_P50_TARGET_MS:.0f}), "
                f"p95 {p95:.0f} ms (target <= {STUDENT_P95_TARGET_MS:.0f}), {wrong} wrong traces, {errors} 5xx or "
                f"transport errors: {'met' if met else 'MISSED'}; {p50 / alone[0]:.2f}x and {p95 / alone[1]:.2f}x "
                "the students' own p50 and p95 without abusers"
            )
    print("\nwhere the time went: the students' sandbox phases, median/p95 ms (Server-Timing: waiting for a slot,")
    print("for a child, the run, the check); CPU of the server and its sandbox, and of the whole machine, in cores")
    for abusers, server_cpu, machine, load_avg, phases in usage:
        label = "nobody (baseline)" if abusers == 0 else f"{abusers} abusive clients"
        print(f"{label:28} {phases}; server {server_cpu:.2f} cores, machine {machine:.2f}, load average {load_avg:.1f}")
    print(verdict)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", help="an already running server (default: start one)")
    parser.add_argument("--workers", type=int, default=1, help="uvicorn workers of the started server")
    parser.add_argument("--requests", type=int, default=60, help="sequential requests per latency row")
    parser.add_argument("--duration-s", type=float, default=5.0, help="seconds per throughput row")
    parser.add_argument("--abuse-s", type=float, default=30.0, help="seconds per fairness row (0: skip)")
    parser.add_argument(
        "--students", type=int, default=STUDENTS, help="students of the fairness rows (fewer on a machine shared with others)"
    )
    parser.add_argument("--only-abuse", action="store_true", help="only the fairness rows")
    parser.add_argument(
        "--share-identical",
        choices=("off", "on", "both"),
        default="both",
        help="share_identical_runs of the started server(s): the fairness rows without it, with it, or both (default)",
    )
    args = parser.parse_args()
    if args.url is not None:
        return bench(args, args.url, None)
    modes = ("false", "true") if args.share_identical == "both" else ("true" if args.share_identical == "on" else "false",)
    for i, mode in enumerate(modes):
        if i and not args.only_abuse:
            args.only_abuse = True  # the latency and throughput rows once, without sharing
        proc, url, workdir = start_server(args.workers, share_identical_runs=mode)
        print(f"\nserver: gradwalk serve --workers {args.workers}, share_identical_runs={mode} ({url}, log in {workdir})")
        try:
            bench(args, url, proc)
        finally:
            stop_server(proc)
    return 0


def stop_server(proc: subprocess.Popen[bytes]) -> None:
    proc.terminate()
    try:
        proc.wait(timeout=30)
    except subprocess.TimeoutExpired:
        proc.kill()
    try:
        os.killpg(proc.pid, 9)  # the sandbox's processes, if any outlived the server
    except ProcessLookupError:
        pass


def bench(args: argparse.Namespace, url: str, proc: subprocess.Popen[bytes] | None) -> int:
    """The rows `args` ask for, against the server at `url` (`proc`, when this script started it)."""
    seeds = [(p.stem, {"source": p.read_text()}) for p in SEEDS]
    health = httpx.get(url + "/api/health", timeout=60).json()
    print(
        f"sandbox: mode={health['sandbox_mode']} protections on: "
        f"{sum(health['protections'].values())}/{len(health['protections'])}; cpus: {os.cpu_count()}; "
        f"load average: {os.getloadavg()[0]:.1f}"
    )
    for _, body in seeds:  # warm-up: zygote children, the store, connection pools
        sequential(url, "POST", "/api/trace", body, 3)
    sequential(url, "GET", "/api/health", None, 20)

    if not args.only_abuse:
        latency_and_throughput(url, seeds, args.requests, args.duration_s)
    if args.abuse_s > 0:
        report_fairness(url, args.abuse_s, args.students, proc.pid if proc is not None else None)
    return 0


if __name__ == "__main__":
    sys.exit(main())
